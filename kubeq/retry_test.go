package kubeq

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var shortDelays = []time.Duration{20 * time.Millisecond, 40 * time.Millisecond, 60 * time.Millisecond}

func TestRetryScheduleThenTransportError(t *testing.T) {
	url := refusedURL(t)
	c := newClient(t, url, WithRetryDelays(shortDelays...))
	start := time.Now()
	evs, err := collect(testCtx(t), c, Turn{Question: "q"})
	elapsed := time.Since(start)

	require.Empty(t, evs)
	var te *TransportError
	require.ErrorAs(t, err, &te)
	require.Equal(t, 4, te.Attempts)
	require.ErrorIs(t, err, syscall.ECONNREFUSED, "the last error is kept")
	require.GreaterOrEqual(t, elapsed, 120*time.Millisecond, "waited 20+40+60 ms")
	msg := err.Error()
	require.True(t, strings.HasPrefix(msg, "cannot reach KubeIntellect at "+url+" after 4 attempts: dial tcp "), msg)
	require.Contains(t, msg, "connection refused (is it running? check KUBE_Q_URL / --url)")
}

func TestRetryRecoversAfterDrops(t *testing.T) {
	var mu sync.Mutex
	var times []time.Time
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		n := len(times)
		mu.Unlock()
		switch n {
		case 1:
			dropConnection(w) // EOF before any response
		case 2:
			panic(http.ErrAbortHandler) // a reset before any response
		default:
			serveSSE([]byte(plainTurn))(w, r)
		}
	})
	c := newClient(t, b.URL, WithRetryDelays(shortDelays...))
	evs, err := collect(testCtx(t), c, Turn{Question: "q"})
	require.NoError(t, err)
	require.Equal(t, []Event{Handshake{ProtocolVersion: "1.0", SessionID: "s"}, Token{Content: "ok"}},
		evs[:2], "events delivered once")
	require.Len(t, times, 3)
	require.GreaterOrEqual(t, times[1].Sub(times[0]), shortDelays[0])
	require.GreaterOrEqual(t, times[2].Sub(times[1]), shortDelays[1])
}

// A drop right after stream.start must not be retried: the server is
// already running the turn, and a second POST would run it again.
func TestNoRetryAfterHandshake(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		writeFlush(w, `data: {"protocol_version": "1.0", "object": "stream.start", "session_id": "s"}`+"\n\n")
		panic(http.ErrAbortHandler)
	})
	c := newClient(t, b.URL, WithRetryDelays(shortDelays...))
	evs, err := collect(testCtx(t), c, Turn{Question: "delete the pod"})
	require.Equal(t, []Event{Handshake{ProtocolVersion: "1.0", SessionID: "s"}}, evs)
	var ie *InterruptedError
	require.ErrorAs(t, err, &ie)
	require.Equal(t, 1, ie.Events)
	require.Equal(t, int32(1), b.hits.Load(), "exactly one POST")
	require.Contains(t, err.Error(), "without [DONE]")
}

// Once the backend has answered 200 it is running the turn: a break before
// the first frame, or a stream that ends with no frame at all, is an
// interrupted turn, never a second POST.
func TestNoRetryAfterResponse(t *testing.T) {
	for name, h := range map[string]http.HandlerFunc{
		"reset after headers": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		},
		"empty stream": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
		},
	} {
		t.Run(name, func(t *testing.T) {
			b := newBackend(t, h)
			c := newClient(t, b.URL, WithRetryDelays(shortDelays...))
			_, err := collect(testCtx(t), c, Turn{Question: "q"})
			var ie *InterruptedError
			require.ErrorAs(t, err, &ie, "err = %v", err)
			require.Equal(t, 0, ie.Events)
			require.Equal(t, int32(1), b.hits.Load(), "exactly one POST")
		})
	}
}

// An AtMostOnce turn whose request was written is not sent again, even
// though no response came: the backend may have acted on it.
func TestAtMostOnceNotResentAfterWrite(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // the backend has the whole request
		panic(http.ErrAbortHandler)
	})
	c := newClient(t, b.URL, WithRetryDelays(shortDelays...))
	_, err := collect(testCtx(t), c, Turn{Question: "approve", Conversation: "c1", AtMostOnce: true})
	var te *TransportError
	require.ErrorAs(t, err, &te, "err = %v", err)
	require.True(t, te.MaybeDelivered)
	require.Equal(t, 1, te.Attempts)
	require.Equal(t, int32(1), b.hits.Load(), "exactly one POST")
	require.Contains(t, err.Error(), "may have reached it, so it was not sent again")

	// The same failure on an ordinary turn is retried on the schedule.
	b.hits.Store(0)
	_, err = collect(testCtx(t), c, Turn{Question: "why?", Conversation: "c2"})
	require.ErrorAs(t, err, &te)
	require.False(t, te.MaybeDelivered)
	require.Equal(t, int32(4), b.hits.Load())
}

// A request that never left (nothing listening) is safe to send again,
// AtMostOnce or not.
func TestAtMostOnceRetriesWhenNothingWasSent(t *testing.T) {
	c := newClient(t, refusedURL(t), WithRetryDelays(shortDelays...))
	_, err := collect(testCtx(t), c, Turn{Question: "approve", AtMostOnce: true})
	var te *TransportError
	require.ErrorAs(t, err, &te)
	require.False(t, te.MaybeDelivered)
	require.Equal(t, 4, te.Attempts)
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
}

func TestNoRetryAfterMalformedFirstFrame(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		writeFlush(w, "data: {broken\n\n")
		panic(http.ErrAbortHandler)
	})
	c := newClient(t, b.URL, WithRetryDelays(shortDelays...))
	_, err := collect(testCtx(t), c, Turn{Question: "q"})
	var ie *InterruptedError
	require.ErrorAs(t, err, &ie)
	require.Equal(t, 0, ie.Events)
	require.Equal(t, 1, ie.DroppedFrames)
	require.Equal(t, int32(1), b.hits.Load())
}

func TestNoRetryMidStream(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		data := fixture(t, "plain_answer")
		cut := strings.Index(string(data), "**Root cause")
		writeFlush(w, string(data[:cut]))
		panic(http.ErrAbortHandler)
	})
	c := newClient(t, b.URL, WithRetryDelays(shortDelays...))
	res, err := c.Query(testCtx(t), Turn{Question: "q"})
	var ie *InterruptedError
	require.ErrorAs(t, err, &ie)
	require.Equal(t, int32(1), b.hits.Load())
	require.Len(t, res.ToolCalls, 2, "the partial result is kept")
	require.Greater(t, ie.Events, 5)
}

func TestNoRetryOnHTTPStatus(t *testing.T) {
	cases := []struct {
		status int
		header map[string]string
		body   string
		detail string
		hint   string
		wantRA time.Duration
	}{
		{401, nil, `{"detail":"Invalid API key"}`, "Invalid API key", "(no API key set; set KUBE_Q_API_KEY or --api-key)", 0},
		{401, nil, `{"detail":"Authorization: Bearer <api_key> required"}`, "Authorization: Bearer <api_key> required", "KUBE_Q_API_KEY", 0},
		{422, nil, `{"detail":[{"type":"string_type","loc":["body","messages",0,"content"],"msg":"Input should be a valid string","input":[1]},{"type":"missing","loc":["body","model"],"msg":"Field required"}]}`,
			"Input should be a valid string; Field required", "rejected", 0},
		{422, nil, `{"detail":"Only stream=true is supported"}`, "Only stream=true is supported", "rejected", 0},
		{429, map[string]string{"Retry-After": "7", "X-RateLimit-Limit": "120", "X-RateLimit-Remaining": "0"},
			`{"detail":"Rate limit exceeded: 120 requests/minute per API key (burst 30). Retry after 7s."}`,
			"Rate limit exceeded: 120 requests/minute per API key (burst 30). Retry after 7s.", "retry after 7s", 7 * time.Second},
		{500, nil, "Internal Server Error", "Internal Server Error", "server error", 0},
		{503, nil, "", "", "HTTP 503: Service Unavailable (server error", 0},
		{404, nil, `{"detail":"Not Found"}`, "Not Found", "KUBE_Q_URL", 0},
	}
	for _, tc := range cases {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			})
			c := newClient(t, b.URL, WithRetryDelays(shortDelays...))
			_, err := collect(testCtx(t), c, Turn{Question: "q"})
			var se *StatusError
			require.ErrorAs(t, err, &se)
			require.Equal(t, int32(1), b.hits.Load(), "never retried")
			require.Equal(t, tc.status, se.StatusCode)
			require.Equal(t, tc.detail, se.Detail)
			require.Equal(t, tc.wantRA, se.RetryAfter)
			require.Equal(t, b.URL+"/v1/chat/completions", se.URL)
			require.Contains(t, err.Error(), tc.hint)
		})
	}
}

func TestStatusErrorMessage(t *testing.T) {
	err := &StatusError{URL: "http://x/v1/chat/completions", StatusCode: 401, Detail: "Invalid API key"}
	require.Equal(t, "KubeIntellect at http://x/v1/chat/completions answered HTTP 401: Invalid API key (no API key set; set KUBE_Q_API_KEY or --api-key)", err.Error())
	err.KeySent = true
	require.Equal(t, "KubeIntellect at http://x/v1/chat/completions answered HTTP 401: Invalid API key (the API key was rejected; check KUBE_Q_API_KEY or --api-key)", err.Error())
}

// A 401 to a request that carried a key says the key was rejected, not to
// set one.
func TestUnauthorizedWithKeySaysRejected(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"detail":"Invalid API key"}`))
	})
	_, err := collect(testCtx(t), newClient(t, b.URL, WithAPIKey("wrong-key-1"), WithRetryDelays(shortDelays...)), Turn{Question: "q"})
	require.ErrorContains(t, err, "the API key was rejected")
	require.NotContains(t, err.Error(), "wrong-key-1")
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	require.Equal(t, 30*time.Second, retryAfter("30", now))
	require.Equal(t, 90*time.Second, retryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now))
	require.Zero(t, retryAfter("", now))
	require.Zero(t, retryAfter("-3", now))
	require.Zero(t, retryAfter("soon", now))
	require.Zero(t, retryAfter(now.Add(-time.Minute).Format(http.TimeFormat), now))
}

func TestRetryWaitHonoursContext(t *testing.T) {
	c := newClient(t, refusedURL(t), WithRetryDelays(time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := collect(ctx, c, Turn{Question: "q"})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 5*time.Second)
	var te *TransportError
	require.False(t, errors.As(err, &te))
}

func TestAnswerThatIsNotAStream(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<html>Welcome to nginx!</html>"))
	})
	c := newClient(t, b.URL, WithRetryDelays(shortDelays...))
	_, err := collect(testCtx(t), c, Turn{Question: "q"})
	var se *StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, 200, se.StatusCode)
	require.Equal(t, int32(1), b.hits.Load(), "not retried")
	require.Equal(t, "KubeIntellect at "+b.URL+"/v1/chat/completions answered HTTP 200: expected an event stream, got text/html; charset=utf-8 (is this a KubeIntellect URL? check KUBE_Q_URL / --url)", err.Error())

	// A missing Content-Type is read as a stream.
	b = newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil // no sniffing either
		_, _ = w.Write([]byte(plainTurn))
	})
	_, err = collect(testCtx(t), newClient(t, b.URL), Turn{Question: "q"})
	require.NoError(t, err)
}
