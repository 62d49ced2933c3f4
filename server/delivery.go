package server

import (
	"bytes"
	"context"
	"io"
	"sync"
	"time"
)

// deliveryTracker lets a tool handler wait until a notification it sent has
// really been written to the client's stream, on stdio.
//
// mcp-go's stdio transport queues notifications on a channel that another
// goroutine writes, while the tool's response is written directly, so the
// response can overtake the last notifications and the client drops them as
// belonging to a finished call. The stdio writer is wrapped by the tracker,
// so a handler can wait for the bytes of its last notification to pass
// before it returns: ordering by observation, not by a sleep.
//
// Streamable HTTP needs none of this since mcp-go v1.6.0, which writes a
// call's notifications on its own POST stream ahead of the response
// (measured in the note of the upgrade; internal/e2etest checks it).
type deliveryTracker struct {
	mu      sync.Mutex
	waiters map[string]map[*delivery]struct{}
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
