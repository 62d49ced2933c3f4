package approval

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Ledger owns, per conversation, the turn lease, the gate record and the
// used nonces, together, in a Store. A record can be read or changed only
// through the Held of a lease: nothing else touches them.
type Ledger struct {
	store   Store
	replica string // this process, in records it writes
	opts    Options
	seq     atomic.Uint64

	mu      sync.Mutex
	waiters map[string]chan struct{} // closed when this process releases conv's lease
}

// Options tune a ledger; zero values take the defaults.
type Options struct {
	LeaseTTL    time.Duration // a lease not renewed for this long is free; 30s
	Poll        time.Duration // how often a waiter retries a lease held by another replica; 50ms
	CallTimeout time.Duration // bounds every store call; 3s
	Replica     string        // this process's name in records; random when ""
}

// NewLedger makes a ledger over store.
func NewLedger(store Store, o Options) *Ledger {
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 30 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 50 * time.Millisecond
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 3 * time.Second
	}
	if o.Replica == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		o.Replica = hex.EncodeToString(b)
	}
	return &Ledger{store: store, replica: o.Replica, opts: o, waiters: map[string]chan struct{}{}}
}

// Replica is this process's name in the records it writes.
func (l *Ledger) Replica() string { return l.replica }

// Shared reports whether other processes may share the store.
func (l *Ledger) Shared() bool { _, mem := l.store.(*memoryStore); return !mem }

// Describe names the store, without any password.
func (l *Ledger) Describe() string { return l.store.Describe() }

// bounded is a store call's context: detached from ctx's cancellation (a
// record must be written even when the call that learned it is gone) and
// bounded by CallTimeout. The memory store never waits and never reads its
// context, so it is given ctx as is: a timer per store call would be all
// cost (a question makes several).
func (l *Ledger) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, mem := l.store.(*memoryStore); mem {
		return ctx, func() {}
	}
	return context.WithTimeout(context.WithoutCancel(ctx), l.opts.CallTimeout)
}

func storeErr(op string, err error) error {
	if err == nil || err == ErrLeaseLost || err == ErrNoDeadline {
		return err
	}
	return fmt.Errorf("%w: %s: %w", ErrStore, op, err)
}

// Acquire waits for conv's lease, until ctx ends. Call Release on the
// result exactly once.
func (l *Ledger) Acquire(ctx context.Context, conv string) (*Held, error) {
	for {
		wake := l.waiter(conv) // before trying, so a release in between is not missed
		h, err := l.TryAcquire(ctx, conv)
		if err != nil || h != nil {
			return h, err
		}
		t := time.NewTimer(l.opts.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("waiting for the previous turn on conversation %s: %w", conv, ctx.Err())
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// TryAcquire takes conv's lease when it is free, and returns nil when
// another holds it.
func (l *Ledger) TryAcquire(ctx context.Context, conv string) (*Held, error) {
	token := fmt.Sprintf("%s:%d", l.replica, l.seq.Add(1))
	sctx, cancel := l.bounded(ctx)
	ok, err := l.store.TryLease(sctx, conv, token, l.opts.LeaseTTL)
	cancel()
	if err != nil {
		return nil, storeErr("take the conversation's lease", err)
	}
	if !ok {
		return nil, nil
	}
	h := &Held{l: l, conv: conv, token: token, done: make(chan struct{})}
	h.mu.Lock()
	h.timer = time.AfterFunc(l.opts.LeaseTTL/3, h.renew)
	h.mu.Unlock()
	return h, nil
}

// waiter is the channel closed when this process next releases conv.
func (l *Ledger) waiter(conv string) chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.waiters[conv]
	if w == nil {
		w = make(chan struct{})
		l.waiters[conv] = w
	}
	return w
}

func (l *Ledger) wake(conv string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w := l.waiters[conv]; w != nil {
		close(w)
		delete(l.waiters, conv)
	}
}

// Due lists the conversations whose record is due at now.
func (l *Ledger) Due(ctx context.Context, now time.Time) ([]string, error) {
	sctx, cancel := l.bounded(ctx)
	defer cancel()
	out, err := l.store.Due(sctx, now)
	return out, storeErr("list due records", err)
}

// Conversations lists every conversation with a record.
func (l *Ledger) Conversations(ctx context.Context) ([]string, error) {
	sctx, cancel := l.bounded(ctx)
	defer cancel()
	out, err := l.store.Conversations(sctx)
	return out, storeErr("list records", err)
}

// SpendNonce uses up a nonce without a lease: a sealed state that can no
// longer be acted on (its gate was denied) stays refused.
func (l *Ledger) SpendNonce(ctx context.Context, nonce string, keep time.Time, timedOut bool) error {
	sctx, cancel := l.bounded(ctx)
	defer cancel()
	return storeErr("use up a nonce", l.store.SpendNonce(sctx, nonce, keep, timedOut))
}

// Ping checks the store.
func (l *Ledger) Ping(ctx context.Context) error {
	sctx, cancel := l.bounded(ctx)
	defer cancel()
	return storeErr("ping", l.store.Ping(sctx))
}

// Close closes the store.
func (l *Ledger) Close() error { return l.store.Close() }

// Held is a held lease on one conversation: the only way to read or change
// its record.
type Held struct {
	l     *Ledger
	conv  string
	token string
	lost  atomic.Bool
	once  sync.Once
	done  chan struct{}

	mu    sync.Mutex
	timer *time.Timer // the next renewal: a timer, not a goroutine per lease
}

// Conv is the conversation held.
func (h *Held) Conv() string { return h.conv }

// renew keeps the lease while it is held: it renews it, then sets the
// timer for the next renewal, until Release.
func (h *Held) renew() {
	select {
	case <-h.done:
		return
	default:
	}
	ctx, cancel := h.l.bounded(context.Background())
	ok, err := h.l.store.RenewLease(ctx, h.conv, h.token, h.l.opts.LeaseTTL)
	cancel()
	if err == nil && !ok {
		h.lost.Store(true) // writes fail from now on: the store refuses them
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.done:
	default:
		h.timer.Reset(h.l.opts.LeaseTTL / 3)
	}
}

// Lost reports whether the lease was found taken by another.
func (h *Held) Lost() bool { return h.lost.Load() }

// Pending reads the conversation's record, nil when none.
func (h *Held) Pending(ctx context.Context) (*Record, error) {
	sctx, cancel := h.l.bounded(ctx)
	defer cancel()
	r, err := h.l.store.Get(sctx, h.conv)
	return r, storeErr("read the conversation's record", err)
}

// Set writes the conversation's record. A record must have a deadline.
func (h *Held) Set(ctx context.Context, r *Record) error {
	if r.Expires.IsZero() {
		return ErrNoDeadline
	}
	rec := *r
	rec.Owner = h.l.replica
	sctx, cancel := h.l.bounded(ctx)
	defer cancel()
	return storeErr("write the conversation's record", h.l.store.Put(sctx, h.conv, h.token, &rec))
}

// Clear removes the conversation's record.
func (h *Held) Clear(ctx context.Context) error {
	sctx, cancel := h.l.bounded(ctx)
	defer cancel()
	return storeErr("clear the conversation's record", h.l.store.Delete(sctx, h.conv, h.token))
}

// Take reads and removes the conversation's record.
func (h *Held) Take(ctx context.Context) (*Record, error) {
	r, err := h.Pending(ctx)
	if err != nil || r == nil {
		return r, err
	}
	return r, h.Clear(ctx)
}

// Consume uses up nonce (kept until keep) and returns its state before and
// the conversation's record, read in the same step: two replicas can never
// both act on one form.
func (h *Held) Consume(ctx context.Context, nonce string, keep time.Time) (NonceState, *Record, error) {
	sctx, cancel := h.l.bounded(ctx)
	defer cancel()
	st, r, err := h.l.store.ConsumeNonce(sctx, h.conv, nonce, keep)
	return st, r, storeErr("use up the approval's nonce", err)
}

// Release frees the lease. Safe to call more than once.
func (h *Held) Release() {
	h.once.Do(func() {
		h.mu.Lock()
		close(h.done)
		h.timer.Stop()
		h.mu.Unlock()
		ctx, cancel := h.l.bounded(context.Background())
		_ = h.l.store.ReleaseLease(ctx, h.conv, h.token) // on failure the lease expires by itself
		cancel()
		h.l.wake(h.conv)
	})
}

// Tracked counts what a memory ledger holds (leases, records, waiters),
// for leak tests; 0 for a shared store.
func (l *Ledger) Tracked() int {
	l.mu.Lock()
	n := len(l.waiters)
	l.mu.Unlock()
	if m, ok := l.store.(*memoryStore); ok {
		leases, records := m.size()
		n += leases + records
	}
	return n
}

// SetMirror keeps blob about conv for other replicas for ttl (bounded like
// every store call; no lease needed: only the replica running conv's
// detached turn writes it).
func (l *Ledger) SetMirror(ctx context.Context, conv string, blob []byte, ttl time.Duration) error {
	ctx, cancel := l.bounded(ctx)
	defer cancel()
	return l.SetBlob(ctx, BlobRun, conv, blob, ttl)
}

// GetMirror reads what SetMirror kept about conv, nil when none.
func (l *Ledger) GetMirror(ctx context.Context, conv string) ([]byte, error) {
	return l.GetBlob(ctx, BlobRun, conv)
}

// SetBlob keeps blob under (kind, key) for other replicas for ttl,
// bounded like every store call.
func (l *Ledger) SetBlob(ctx context.Context, kind BlobKind, key string, blob []byte, ttl time.Duration) error {
	ctx, cancel := l.bounded(ctx)
	defer cancel()
	return storeErr(string(kind), l.store.SetBlob(ctx, kind, key, blob, ttl))
}

// GetBlobs reads several keys of kind at once, bounded like every store
// call: the i-th blob is keys[i]'s, nil when none.
func (l *Ledger) GetBlobs(ctx context.Context, kind BlobKind, keys []string) ([][]byte, error) {
	ctx, cancel := l.bounded(ctx)
	defer cancel()
	b, err := l.store.GetBlobs(ctx, kind, keys)
	return b, storeErr(string(kind), err)
}

// GetBlob reads what SetBlob kept under (kind, key), nil when none.
func (l *Ledger) GetBlob(ctx context.Context, kind BlobKind, key string) ([]byte, error) {
	ctx, cancel := l.bounded(ctx)
	defer cancel()
	b, err := l.store.GetBlob(ctx, kind, key)
	return b, storeErr(string(kind), err)
}
