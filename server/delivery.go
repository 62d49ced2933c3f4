package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
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
type deliveryTracker struct {
	mu      sync.Mutex
	waiters map[*delivery]struct{}
}

func newDeliveryTracker() *deliveryTracker {
	return &deliveryTracker{waiters: make(map[*delivery]struct{})}
}

// delivery is one expected write.
type delivery struct {
	marker []byte
	seen   chan struct{}
}

// expect registers marker before the notification that contains it is sent,
// so a write that races the registration cannot be missed.
func (t *deliveryTracker) expect(marker []byte) *delivery {
	d := &delivery{marker: marker, seen: make(chan struct{})}
	t.mu.Lock()
	t.waiters[d] = struct{}{}
	t.mu.Unlock()
	return d
}

// forget drops an expectation that will not be waited for.
func (t *deliveryTracker) forget(d *delivery) {
	if d == nil {
		return
	}
	t.mu.Lock()
	delete(t.waiters, d)
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

// observe is called with every chunk written to a client stream.
func (t *deliveryTracker) observe(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for d := range t.waiters {
		if bytes.Contains(p, d.marker) {
			close(d.seen)
			delete(t.waiters, d)
		}
	}
}

// writer wraps w so that every write is observed after it succeeded.
func (t *deliveryTracker) writer(w io.Writer) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		n, err := w.Write(p)
		if err == nil {
			t.observe(p)
		}
		return n, err
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// trackedResponseWriter observes what the streamable HTTP transport writes.
// It keeps http.Flusher working, which the transport needs to stream.
type trackedResponseWriter struct {
	http.ResponseWriter
	t *deliveryTracker
}

func (w *trackedResponseWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	if err == nil {
		w.t.observe(p)
	}
	return n, err
}

func (w *trackedResponseWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *trackedResponseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
