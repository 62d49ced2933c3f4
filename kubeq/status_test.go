package kubeq

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// StatusError.URL is the URL the client posted to, base path prefix
// included once, password masked, whether the answer is an error status or
// not an event stream.
func TestStatusErrorURL(t *testing.T) {
	for name, h := range map[string]http.HandlerFunc{
		"401": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"detail":"Invalid API key"}`)
		},
		"not a stream": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<html></html>")
		},
	} {
		t.Run(name, func(t *testing.T) {
			b := newBackend(t, h)
			for base, want := range map[string]string{
				b.URL:                    b.URL + chatPath,
				b.URL + "/kubeintellect": b.URL + "/kubeintellect" + chatPath,
				strings.Replace(b.URL, "http://", "http://user:"+secretPassword+"@", 1) + "/ki/": strings.Replace(b.URL, "http://", "http://user:xxxxx@", 1) + "/ki" + chatPath,
			} {
				_, err := collect(testCtx(t), newClient(t, base, WithRetryDelays()), Turn{Question: "q"})
				var se *StatusError
				require.ErrorAs(t, err, &se, "base %s", base)
				require.Equal(t, want, se.URL, "base %s", base)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A RoundTripper of the caller's (WithHTTPClient) need not set
// Response.Request; the client must not rely on it.
func TestStatusErrorWithoutResponseRequest(t *testing.T) {
	for name, resp := range map[string]func() *http.Response{
		"401": func() *http.Response {
			return &http.Response{StatusCode: http.StatusUnauthorized, Header: http.Header{},
				Body: io.NopCloser(strings.NewReader(`{"detail":"Invalid API key"}`))}
		},
		"not a stream": func() *http.Response {
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"text/html"}},
				Body: io.NopCloser(strings.NewReader("<html></html>"))}
		},
	} {
		hc := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) { return resp(), nil })}
		c := newClient(t, "http://kubeintellect.invalid/api", WithHTTPClient(hc), WithRetryDelays())
		var err error
		require.NotPanics(t, func() { _, err = collect(testCtx(t), c, Turn{Question: "q"}) }, name)
		var se *StatusError
		require.ErrorAs(t, err, &se, name)
		require.Equal(t, "http://kubeintellect.invalid/api"+chatPath, se.URL, name)
	}
}

// Lenient on Content-Type parameters, strict on the media type.
func TestEventStreamContentType(t *testing.T) {
	for ct, want := range map[string]bool{
		"":                                    true, // not said
		"text/event-stream":                   true,
		"text/event-stream; charset=utf-8":    true,
		"Text/Event-Stream":                   true,
		"text/event-stream; charset=":         true, // a bad parameter is not a bad type
		"text/event-stream; charset=utf-8; =": true,
		"text/event-stream;":                  true,
		"text/html":                           false,
		"text/html; charset=":                 false,
		"application/json":                    false,
		"text/event-stream-x":                 false,
		"/":                                   false,
	} {
		require.Equal(t, want, eventStream(ct), "Content-Type %q", ct)
	}
}
