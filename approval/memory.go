package approval

import (
	"context"
	"sync"
	"time"
)

// memoryStore is the store of one process.
type memoryStore struct {
	mu      sync.Mutex
	leases  map[string]lease
	records map[string]Record
	nonces  map[string]nonceEntry
	swept   time.Time // when forget last ran
	mirrors map[blobKey]mirror
}

type blobKey struct {
	kind BlobKind
	key  string
}

type mirror struct {
	blob  []byte
	until time.Time
}

type lease struct {
	owner string
	until time.Time
}

type nonceEntry struct {
	keep     time.Time
	timedOut bool
}

// NewMemoryStore is the store of one process: nothing is shared.
func NewMemoryStore() Store {
	return &memoryStore{leases: map[string]lease{}, records: map[string]Record{}, nonces: map[string]nonceEntry{},
		mirrors: map[blobKey]mirror{}}
}

func (m *memoryStore) TryLease(_ context.Context, conv, owner string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if l, ok := m.leases[conv]; ok && now.Before(l.until) {
		return false, nil
	}
	m.leases[conv] = lease{owner: owner, until: now.Add(ttl)}
	return true, nil
}

func (m *memoryStore) RenewLease(_ context.Context, conv, owner string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.holds(conv, owner) {
		return false, nil
	}
	m.leases[conv] = lease{owner: owner, until: time.Now().Add(ttl)}
	return true, nil
}

func (m *memoryStore) ReleaseLease(_ context.Context, conv, owner string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.leases[conv]; ok && l.owner == owner {
		delete(m.leases, conv)
	}
	return nil
}

// holds reports whether owner holds conv's lease now. Under mu.
func (m *memoryStore) holds(conv, owner string) bool {
	l, ok := m.leases[conv]
	return ok && l.owner == owner && time.Now().Before(l.until)
}

func (m *memoryStore) Get(_ context.Context, conv string) (*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[conv]
	if !ok {
		return nil, nil
	}
	return &r, nil
}

func (m *memoryStore) Put(_ context.Context, conv, owner string, r *Record) error {
	if r.Expires.IsZero() {
		return ErrNoDeadline
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.holds(conv, owner) {
		return ErrLeaseLost
	}
	m.records[conv] = *r
	return nil
}

func (m *memoryStore) Delete(_ context.Context, conv, owner string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.holds(conv, owner) {
		return ErrLeaseLost
	}
	delete(m.records, conv)
	return nil
}

func (m *memoryStore) ConsumeNonce(_ context.Context, conv, nonce string, keep time.Time) (NonceState, *Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forget(time.Now())
	var rec *Record
	if r, ok := m.records[conv]; ok {
		rec = &r
	}
	if e, ok := m.nonces[nonce]; ok {
		if e.timedOut {
			return NonceTimedOut, rec, nil
		}
		return NonceUsed, rec, nil
	}
	m.nonces[nonce] = nonceEntry{keep: keep}
	return NonceFresh, rec, nil
}

func (m *memoryStore) SpendNonce(_ context.Context, nonce string, keep time.Time, timedOut bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forget(time.Now())
	m.nonces[nonce] = nonceEntry{keep: keep, timedOut: timedOut}
	return nil
}

// forget drops nonces past their keep time, at most once a second (a
// scan per use would cost a call the number of gates of the last minutes).
// Under mu.
func (m *memoryStore) forget(now time.Time) {
	if now.Sub(m.swept) < time.Second {
		return
	}
	m.swept = now
	for n, e := range m.nonces {
		if now.After(e.keep) {
			delete(m.nonces, n)
		}
	}
}

func (m *memoryStore) Due(_ context.Context, now time.Time) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for conv, r := range m.records {
		if !now.Before(r.Expires) {
			out = append(out, conv)
		}
	}
	return out, nil
}

func (m *memoryStore) Conversations(context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.records))
	for conv := range m.records {
		out = append(out, conv)
	}
	return out, nil
}

func (m *memoryStore) Ping(context.Context) error { return nil }
func (m *memoryStore) Describe() string           { return "memory" }
func (m *memoryStore) Close() error               { return nil }

// size counts what the store holds, for leak tests.
func (m *memoryStore) size() (leases, records int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.leases), len(m.records)
}

func (m *memoryStore) SetBlob(_ context.Context, kind BlobKind, key string, blob []byte, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	for k, v := range m.mirrors {
		if now.After(v.until) {
			delete(m.mirrors, k)
		}
	}
	m.mirrors[blobKey{kind, key}] = mirror{blob: append([]byte(nil), blob...), until: now.Add(ttl)}
	return nil
}

func (m *memoryStore) GetBlob(_ context.Context, kind BlobKind, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.blobLocked(kind, key, time.Now()), nil
}

func (m *memoryStore) GetBlobs(_ context.Context, kind BlobKind, keys []string) ([][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	out := make([][]byte, len(keys))
	for i, key := range keys {
		out[i] = m.blobLocked(kind, key, now)
	}
	return out, nil
}

// blobLocked is a copy of (kind, key)'s blob, nil when none; under mu.
func (m *memoryStore) blobLocked(kind BlobKind, key string, now time.Time) []byte {
	v, ok := m.mirrors[blobKey{kind, key}]
	if !ok || now.After(v.until) {
		return nil
	}
	return append([]byte(nil), v.blob...)
}
