package server

import (
	"context"
	"sync"
)

// servedSet remembers the conversations this process has sent a turn on
// since it started. For them the ledger knows every gate that is or may
// be pending (each one this process saw raised, or could not rule out, is
// recorded), so a question needs no read of KubeIntellect's history
// first: one backend round trip instead of two. It is bounded: a
// conversation that falls out is looked up again, which is only slower.
//
// The assumption (README, "One round trip per question"): a conversation
// is driven through kubeq-mcp. A gate raised by another client typing into
// the same KubeIntellect session (kq), or left by a replica that died
// mid-turn, is not known here; on a current backend a question then goes
// on top of that gate, which the backend never approves by a question. So
// the ledger vouches only for a backend known to be current: an older one
// takes any message but a denial as the approval, and there the era check
// still denies blind first.
type servedSet struct {
	mu    sync.Mutex
	set   map[string]struct{}
	order []string // oldest first, for eviction
	max   int
}

const maxServed = 100_000

func newServedSet(max int) *servedSet {
	return &servedSet{set: make(map[string]struct{}), max: max}
}

func (s *servedSet) add(conv string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.set[conv]; ok {
		return
	}
	if len(s.order) >= s.max {
		delete(s.set, s.order[0])
		s.order = s.order[1:]
	}
	s.set[conv] = struct{}{}
	s.order = append(s.order, conv)
}

func (s *servedSet) has(conv string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.set[conv]
	return ok
}

// ledgerVouches reports whether the ledger knows enough of what is pending
// on conv to send a question without reading the backend's history: a
// shared store holds every gate any replica raised; this process's memory,
// every gate of a conversation it has served. Only on a backend known to
// be current, where a gate the ledger missed is never approved by a
// question.
func (s *Server) ledgerVouches(ctx context.Context, conv string) bool {
	return (s.ledger.Shared() || s.served.has(conv)) && s.strictBackend(ctx)
}
