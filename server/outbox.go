package server

import (
	"context"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// An outbox holds at most outboxMessages progress messages, and at most
// outboxBytes of them; past either, new ones are dropped and counted.
const (
	outboxMessages = 32
	outboxBytes    = 256 << 10
)

// outbox sends one call's progress from a goroutine of its own, so that a
// client that stops reading its stream never stalls the call, nor the
// backend turn it is reading: since mcp-go v1.6.0 a notification for a
// POST stream waits until that stream's writer takes it. Progress waits
// here, in order and bounded, and the excess is dropped: progress is a
// view, the result is the record.
type outbox struct {
	n     *notifier
	ctx   context.Context
	token mcp.ProgressToken

	mu      sync.Mutex
	queue   []string
	bytes   int
	sending bool          // a sender goroutine is running
	direct  int           // messages sent without it (directSends)
	empty   chan struct{} // closed when the sender has sent everything
}

// directSends is how many progress messages of a call are handed to
// mcp-go from the caller's goroutine, with no sender goroutine. mcp-go
// v1.6.0 queues the notifications of a call on its POST stream in a
// channel of 100, fed only by that call, and elsewhere (stdio, the GET
// stream) drops what does not fit at once: so the first 100 cannot wait
// for the client, whether it reads or not. Past this many, a call's
// progress goes through the sender goroutine.
const directSends = 64

// put queues msg; it reports false when the outbox is full.
func (o *outbox) put(msg string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.sending && o.direct < directSends {
		// Nothing queued ahead of it: sent now, in order with the rest
		// (o.mu is held), without a goroutine per message.
		o.direct++
		_ = o.n.sendProgress(o.ctx, o.token, msg)
		return true
	}
	if len(o.queue) >= outboxMessages || o.bytes+len(msg) > outboxBytes {
		return false
	}
	o.queue = append(o.queue, msg)
	o.bytes += len(msg)
	if !o.sending {
		o.sending = true
		o.empty = make(chan struct{})
		go o.run()
	}
	return true
}

// run sends until the queue is empty. A send blocked on a stalled stream
// ends when the call's context does, so run always ends.
func (o *outbox) run() {
	for {
		o.mu.Lock()
		if len(o.queue) == 0 {
			o.sending = false
			close(o.empty)
			o.mu.Unlock()
			return
		}
		msg := o.queue[0]
		o.queue[0] = ""
		o.queue = o.queue[1:]
		o.bytes -= len(msg)
		o.mu.Unlock()
		_ = o.n.sendProgress(o.ctx, o.token, msg)
	}
}

// wait blocks until everything queued was handed to the transport, ctx
// ends or limit passes; it reports whether the outbox emptied.
func (o *outbox) wait(ctx context.Context, limit time.Duration) bool {
	o.mu.Lock()
	if !o.sending {
		o.mu.Unlock()
		return true
	}
	empty := o.empty
	o.mu.Unlock()
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-empty:
		return true
	case <-ctx.Done():
		return false
	case <-t.C:
		return false
	}
}

// queueProgress sends a progress message through the call's outbox,
// dropping and counting it when the outbox is full.
func (n *notifier) queueProgress(ctx context.Context, token mcp.ProgressToken, msg string) {
	n.mu.Lock()
	if n.out == nil {
		n.out = &outbox{n: n, ctx: ctx, token: token}
	}
	o := n.out
	n.mu.Unlock()
	if o.put(msg) {
		return
	}
	n.mu.Lock()
	n.dropped++
	n.mu.Unlock()
	n.s.counters.droppedNotifications.Add(1)
}

// drainOutbox waits, within Config.FlushTimeout, for queued progress to be
// handed to the transport, so that it goes ahead of what follows (a form,
// the result).
func (n *notifier) drainOutbox(ctx context.Context) {
	n.mu.Lock()
	o := n.out
	n.mu.Unlock()
	if o != nil && !o.wait(ctx, n.s.cfg.FlushTimeout) {
		n.s.counters.unflushedNotifications.Add(1)
		n.s.log.Debug("progress still queued for a client that is not reading", "timeout", n.s.cfg.FlushTimeout)
	}
}
