package kubeq

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Small local backends for fault tests. They are real HTTP servers on
// loopback; the rich fake lives in kubeqtest.

// backend serves h and counts the requests that reached it.
type backend struct {
	*httptest.Server
	hits atomic.Int32
}

func newBackend(t *testing.T, h http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(b.Close)
	return b
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name+".sse"))
	require.NoError(t, err)
	return data
}

// serveSSE answers 200 with the given stream.
func serveSSE(data []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		_, _ = w.Write(data)
	}
}

// writeFlush writes s and pushes it to the client now, as an event stream.
func writeFlush(w http.ResponseWriter, s string) {
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	}
	_, _ = w.Write([]byte(s))
	w.(http.Flusher).Flush()
}

// dropConnection closes the TCP connection without any response.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

// refusedURL is a loopback URL where nothing listens.
func refusedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + l.Addr().String()
	require.NoError(t, l.Close())
	return url
}

func newClient(t *testing.T, url string, opts ...Option) *Client {
	t.Helper()
	c, err := New(url, opts...)
	require.NoError(t, err)
	t.Cleanup(c.hc.CloseIdleConnections)
	return c
}

// collect runs a turn to its end.
func collect(ctx context.Context, c *Client, turn Turn) ([]Event, error) {
	var evs []Event
	for ev, err := range c.Stream(ctx, turn) {
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

const plainTurn = `data: {"protocol_version": "1.0", "object": "stream.start", "session_id": "s"}

data: {"id": "chatcmpl-000000000000", "object": "chat.completion.chunk", "created": 1, "model": "kubeintellect", "choices": [{"index": 0, "delta": {"content": "ok", "role": "assistant"}, "finish_reason": null}]}

data: [DONE]

`
