// Package turns runs KubeIntellect turns apart from the MCP calls that
// start them.
//
// KubeIntellect cancels an investigation when its stream client goes away,
// and MCP clients give up on a tool call long before some investigations
// end (Zed and the Copilot CLI after about a minute, Claude Desktop after
// five). So a turn's backend stream is read by a runner that belongs to
// kubeq-mcp, keyed by conversation, and a call only watches it: from the
// start, or from where an earlier call stopped watching. A call that ends
// leaves its turn running; only an explicit Cancel stops it.
//
// A turn keeps what a later watcher needs: the answer text (up to a cap)
// and every other event, in order, except progress events past a bound
// (the oldest are let go; see maxProgressEvents). Tokens are kept as one
// text, not one event each, so a long answer costs its bytes and little
// more. A finished
// turn is kept for the answer TTL, then dropped. At most MaxDetached turns
// run with nobody watching; past that the oldest detached one is cancelled.
package turns

import (
	"context"
	"errors"
	"iter"
	"log/slog"
	"sync"
	"time"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
)

// Stream opens a turn's backend stream; the runner reads it to its end.
type Stream func(ctx context.Context) iter.Seq2[kubeq.Event, error]

// ErrBusy is returned by Start when the conversation has a turn running:
// turns on one conversation are serialised, never sent on top of each other.
var ErrBusy = errors.New("a turn is already running on this conversation")

// ErrCancelled ends a turn stopped by Cancel (an explicit cancellation by
// the user, the detached cap, or shutdown).
var ErrCancelled = errors.New("the turn was cancelled")

// Options tune a Registry; zero values take the defaults.
type Options struct {
	AnswerTTL      time.Duration // how long a finished turn is kept; 30m
	MaxDetached    int           // running turns nobody watches; 100
	MaxAnswerBytes int           // answer text kept per turn; 8 MiB
	Logger         *slog.Logger
}

// Registry holds the turns of this process, one per conversation (the
// latest).
type Registry struct {
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	byConv map[string]*Turn
	closed bool
	stop   chan struct{}
	wg     sync.WaitGroup
}

// New makes a registry and starts its janitor; Close stops both.
func New(o Options) *Registry {
	if o.AnswerTTL <= 0 {
		o.AnswerTTL = 30 * time.Minute
	}
	if o.MaxDetached <= 0 {
		o.MaxDetached = 100
	}
	if o.MaxAnswerBytes <= 0 {
		o.MaxAnswerBytes = 8 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Registry{opts: o, log: o.Logger, byConv: map[string]*Turn{}, stop: make(chan struct{})}
	r.wg.Go(r.janitor)
	return r
}

// Start runs stream as conv's turn. The turn belongs to the registry, not
// to ctx: ctx's values are not kept and its end does not stop the turn.
// The caller is its first watcher (see Watcher).
func (r *Registry) Start(conv string, stream Stream) (*Turn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrCancelled
	}
	if old := r.byConv[conv]; old != nil && !old.Done() {
		return nil, ErrBusy
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	t := &Turn{reg: r, conv: conv, cancel: cancel, started: time.Now(), watchers: 1, ended: make(chan struct{}),
		entries: make([]entry, 0, 16)} // a short turn's events, without regrowing
	r.byConv[conv] = t
	r.wg.Go(func() { t.run(ctx, stream) })
	return t, nil
}

// Get returns conv's latest turn, running or finished within the TTL.
func (r *Registry) Get(conv string) (*Turn, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.byConv[conv]
	return t, ok
}

// Forget drops conv's turn t once it has ended and its watchers have
// taken what they need of it, so its text is not kept twice.
func (r *Registry) Forget(conv string, t *Turn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byConv[conv] == t && t.Done() {
		delete(r.byConv, conv)
	}
}

// Close cancels every running turn and waits for their runners, at most
// until ctx ends.
func (r *Registry) Close(ctx context.Context) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	close(r.stop)
	for _, t := range r.byConv {
		t.cancel(ErrCancelled)
	}
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// Running counts the turns still reading their stream, and those among
// them that nobody watches.
func (r *Registry) Running() (running, detached int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.byConv {
		t.mu.Lock()
		if !t.done {
			running++
			if t.watchers == 0 {
				detached++
			}
		}
		t.mu.Unlock()
	}
	return running, detached
}

// janitor drops finished turns past the TTL.
func (r *Registry) janitor() {
	tick := time.NewTicker(min(max(r.opts.AnswerTTL/4, time.Millisecond), time.Minute))
	defer tick.Stop()
	for {
		select {
		case <-r.stop:
			return
		case now := <-tick.C:
			r.expire(now)
		}
	}
}

func (r *Registry) expire(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for conv, t := range r.byConv {
		if t.expired(now, r.opts.AnswerTTL) {
			delete(r.byConv, conv)
		}
	}
}

// detached is called when t loses its last watcher: past the cap, the
// oldest detached turn is cancelled.
func (r *Registry) detached() {
	r.mu.Lock()
	var (
		oldest   *Turn
		oldestAt time.Time
		n        int
	)
	for _, t := range r.byConv {
		t.mu.Lock()
		if !t.done && t.watchers == 0 {
			n++
			if oldest == nil || t.detachedAt.Before(oldestAt) {
				oldest, oldestAt = t, t.detachedAt
			}
		}
		t.mu.Unlock()
	}
	r.mu.Unlock()
	if n > r.opts.MaxDetached && oldest != nil {
		r.log.Warn("too many turns running with nobody watching: cancelled the oldest",
			"conversation", oldest.conv, "max_detached", r.opts.MaxDetached)
		oldest.cancel(ErrDetachedCap)
	}
}

// ErrDetachedCap ends a turn cancelled because more than MaxDetached turns
// ran with nobody watching.
var ErrDetachedCap = errors.New("the turn was cancelled: too many turns were running with nobody watching (--max-detached)")
