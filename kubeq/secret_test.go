package kubeq

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	secretKey      = "kq-SECRET-7f3a9c"
	secretPassword = "pw-SECRET-b1"
)

// No error, health reason, log line or URL may carry the API key or a
// password from the URL, whatever fails.
func TestSecretsNeverLeak(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var texts []string
	check := func(what string, s string) {
		texts = append(texts, what+": "+s)
	}

	handlers := map[string]http.HandlerFunc{
		"401 echoing the key": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(401)
			_, _ = io.WriteString(w, `{"detail":"Invalid API key `+strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")+`"}`)
		},
		"500": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			_, _ = io.WriteString(w, r.Header.Get("Authorization"))
		},
		"interrupted": func(w http.ResponseWriter, r *http.Request) {
			writeFlush(w, handshake)
			panic(http.ErrAbortHandler)
		},
		"fatal":     serveSSE(fixture(t, "fatal_error")),
		"malformed": serveSSE([]byte(handshake + "data: {" + secretKey + "\n\n")),
	}
	for name, h := range handlers {
		b := newBackend(t, h)
		url := strings.Replace(b.URL, "http://", "http://user:"+secretPassword+"@", 1)
		c := newClient(t, url, WithAPIKey(secretKey), WithRetryDelays(time.Millisecond), WithLogger(logger))
		_, err := c.Query(testCtx(t), Turn{Question: "q"})
		require.Error(t, err, name)
		check(name, err.Error())
		check(name+" URL()", c.URL())
		check(name+" health", c.Health(testCtx(t)).Reason)
	}

	refused := strings.Replace(refusedURL(t), "http://", "http://user:"+secretPassword+"@", 1)
	c := newClient(t, refused, WithAPIKey(secretKey), WithRetryDelays(time.Millisecond), WithLogger(logger))
	_, err := c.Query(testCtx(t), Turn{Question: "q"})
	require.Error(t, err)
	check("refused", err.Error())
	check("refused health", c.Health(testCtx(t)).Reason)
	_, err = c.Query(testCtx(t), Turn{Question: "q", Conversation: "bad\n" + secretKey})
	check("invalid turn", err.Error())

	b, _ := hangingBackend(t, handshake)
	c = newClient(t, b.URL, WithAPIKey(secretKey), WithTimeout(50*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = c.Query(ctx, Turn{Question: "q"})
	check("cancelled", err.Error())

	_, err = New("http://x", WithAPIKey(secretKey+"\n"))
	check("bad key", err.Error())
	_, err = New("http://user:" + secretPassword + "@x/?q")
	check("bad URL", err.Error())

	require.NotEmpty(t, logs.String(), "retries were logged")
	texts = append(texts, "logs: "+logs.String())
	for _, text := range texts {
		require.NotContains(t, text, secretKey)
		require.NotContains(t, text, secretPassword)
	}
}

// New's errors say what is wrong with a URL without quoting its password,
// however malformed the URL is.
func TestNewURLErrorsHideThePassword(t *testing.T) {
	for in, want := range map[string]string{
		"http://user:" + secretPassword + "@host:notaport":  `invalid port ":notaport"`,
		"http://user:" + secretPassword + "%zz@host":        "user info",
		"http://user:" + secretPassword + "?x@host":         "user info",
		"http://user:p/" + secretPassword + "@host":         "user info",
		"http://user:" + secretPassword + "@host/?q":        "no query",
		"http://user:" + secretPassword + "@host/#f":        "no query or fragment",
		"ftp://user:" + secretPassword + "@host":            "want http(s)",
		"http:user:" + secretPassword + "@host":             "want http(s)",
		"http://user:" + secretPassword + "@ho st":          "invalid character",
		"http://user:" + secretPassword + "@host\x7f":       "control character",
		"http://user:" + secretPassword + "@host:80:80/api": "port",
		"http://" + secretPassword + "@host:notaport":       "port", // a token as the user name
		"http://host/?token=" + secretPassword:              "no query",
	} {
		_, err := New(in)
		require.Error(t, err, "url %q", in)
		require.NotContains(t, err.Error(), secretPassword, "url %q", in)
		require.Contains(t, err.Error(), want, "url %q", in)
		var ue *url.Error
		require.False(t, errors.As(err, &ue), "url %q: a wrapped *url.Error quotes the raw URL", in)
	}
}

// A token given as the URL's user name (https://TOKEN@host) is masked like
// a password in every message that names the backend.
func TestUserNameTokenNeverInErrors(t *testing.T) {
	withToken := strings.Replace(refusedURL(t), "http://", "http://"+secretPassword+"@", 1)
	c := newClient(t, withToken, WithRetryDelays())
	_, err := collect(testCtx(t), c, Turn{Question: "q"})
	require.Error(t, err)
	require.NotContains(t, err.Error(), secretPassword)
	require.NotContains(t, c.URL(), secretPassword)
	require.Contains(t, c.URL(), "xxxxx@127.0.0.1")
}

// A redirect's Location is shown capped at maxRedirectShown bytes; the key
// in it goes before the cap, which would otherwise cut it into a start no
// longer matched, in the turn's error and in the health reason alike.
func TestRedirectNeverShowsAStartOfTheKey(t *testing.T) {
	const prefix = "https://login.example/"
	path := strings.Repeat("p", maxRedirectShown-len(prefix)-10) // the cap falls 10 bytes into the key
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", prefix+path+secretKey+"/next")
		w.WriteHeader(http.StatusFound)
	})
	c := newClient(t, b.URL, WithAPIKey(secretKey), WithRetryDelays())
	_, err := c.Query(testCtx(t), Turn{Question: "q"})
	var se *StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusFound, se.StatusCode)
	reason := c.Health(testCtx(t)).Reason
	for _, text := range []string{se.Redirect, err.Error(), reason} {
		require.Contains(t, text, prefix+path+"[redac", "the Location, cut at the cap")
		require.NotContains(t, text, secretKey[:4])
	}
}
