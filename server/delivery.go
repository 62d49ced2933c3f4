package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// deliveryTracker lets a tool handler wait until a notification it sent has
// really been written to the client's stream.
//
// mcp-go queues notifications on a channel that another goroutine writes,
// while the tool's response is written directly. On stdio the response can
// overtake the last notifications; on streamable HTTP the per-request
// forwarder can take a notification off the channel, find the request done
// and drop it (mcp-go PR #969). Either way the client loses or rejects the
// last progress of a call. Every writer the transports write to is wrapped
// by the tracker, so a handler can wait for the bytes of its last
// notification to pass before it returns: ordering by observation, not by
// a sleep.
//
// Waiters are kept per stream key (the MCP session on HTTP, the request
// when it has no session, the process on stdio): a write is checked only
// against the calls whose notifications can travel on its stream, so the
// cost of a write does not grow with the calls in flight elsewhere.
type deliveryTracker struct {
	mu      sync.Mutex
	waiters map[string]map[*delivery]struct{}
	seq     atomic.Int64 // for per-request keys
}

func newDeliveryTracker() *deliveryTracker {
	return &deliveryTracker{waiters: make(map[string]map[*delivery]struct{})}
}

// delivery is one expected write.
type delivery struct {
	key    string
	marker []byte
	seen   chan struct{}
}

// expect registers marker, to be written on a stream of key, before the
// notification that contains it is sent, so a write that races the
// registration cannot be missed.
func (t *deliveryTracker) expect(key string, marker []byte) *delivery {
	d := &delivery{key: key, marker: marker, seen: make(chan struct{})}
	t.mu.Lock()
	m := t.waiters[key]
	if m == nil {
		m = make(map[*delivery]struct{})
		t.waiters[key] = m
	}
	m[d] = struct{}{}
	t.mu.Unlock()
	return d
}

// drop removes d; the caller holds t.mu.
func (t *deliveryTracker) drop(d *delivery) {
	if m := t.waiters[d.key]; m != nil {
		delete(m, d)
		if len(m) == 0 {
			delete(t.waiters, d.key)
		}
	}
}

// forget drops an expectation that will not be waited for.
func (t *deliveryTracker) forget(d *delivery) {
	if d == nil {
		return
	}
	t.mu.Lock()
	t.drop(d)
	t.mu.Unlock()
}

// wait blocks until d's marker was written, ctx ends or limit passes. It
// reports whether the write was seen.
func (t *deliveryTracker) wait(ctx context.Context, d *delivery, limit time.Duration) bool {
	if d == nil {
		return true
	}
	defer t.forget(d)
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-d.seen:
		return true
	case <-ctx.Done():
		return false
	case <-timer.C:
		return false
	}
}

// observe is called with every chunk written to a client stream of key.
func (t *deliveryTracker) observe(key string, p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for d := range t.waiters[key] {
		if bytes.Contains(p, d.marker) {
			close(d.seen)
			t.drop(d)
		}
	}
}

// writer wraps w, a stream of key, so that every write is observed after
// it succeeded.
func (t *deliveryTracker) writer(key string, w io.Writer) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		n, err := w.Write(p)
		if err == nil {
			t.observe(key, p)
		}
		return n, err
	})
}

// requestKey is a stream key for an HTTP request without a session.
func (t *deliveryTracker) requestKey() string {
	return "request-" + strconv.FormatInt(t.seq.Add(1), 10)
}

type streamKey struct{}

// withStreamKey records in ctx which stream key the call's notifications
// travel under.
func withStreamKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, streamKey{}, key)
}

func streamKeyFrom(ctx context.Context) string {
	k, _ := ctx.Value(streamKey{}).(string)
	return k
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// trackedResponseWriter observes what the streamable HTTP transport writes.
// It keeps http.Flusher working, which the transport needs to stream.
type trackedResponseWriter struct {
	http.ResponseWriter
	t   *deliveryTracker
	key string
}

func (w *trackedResponseWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	if err == nil {
		w.t.observe(w.key, p)
	}
	return n, err
}

func (w *trackedResponseWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *trackedResponseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
