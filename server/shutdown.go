package server

import (
	"context"
	"sync"
	"time"
)

// Shutdown in order: stop taking calls and cancel those in flight (an open
// approval form becomes a denial), wait for them and the sweeper, then
// deny every gate still pending. All of it within Config.ShutdownBudget: once
// the budget is spent, denials still being sent are cut off too, so Close
// ends in time for an orchestrator's grace period.

// defaultShutdownBudget is Config.ShutdownBudget when unset.
const defaultShutdownBudget = 10 * time.Second

// inflightCalls counts tool calls being handled, and refuses new ones once
// closed.
type inflightCalls struct {
	mu     sync.Mutex
	n      int
	closed bool
	idle   chan struct{} // closed when n drops to 0 after close
}

// enter reports whether a call may start; it must leave when it returns.
func (f *inflightCalls) enter() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.n++
	return true
}

func (f *inflightCalls) leave() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.n == 0 && f.idle != nil {
		close(f.idle)
		f.idle = nil
	}
}

// closeAndWait refuses new calls and waits until those in flight have
// returned, or ctx ends.
func (f *inflightCalls) closeAndWait(ctx context.Context) {
	f.mu.Lock()
	f.closed = true
	if f.n == 0 {
		f.mu.Unlock()
		return
	}
	if f.idle == nil {
		f.idle = make(chan struct{})
	}
	idle := f.idle
	f.mu.Unlock()
	select {
	case <-idle:
	case <-ctx.Done():
	}
}

// shutdown runs once, from Close.
func (s *Server) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownBudget)
	defer cancel()
	stopHard := context.AfterFunc(ctx, s.hardStop) // the budget is spent: cut off denials
	defer stopHard()
	defer s.hardStop()

	s.mu.Lock()
	s.closing = true // no sweeper starts from now on
	s.mu.Unlock()
	close(s.stop)
	s.cancelCalls()
	// Turns end with the process: their backend requests are closed, and
	// the drivers of detached ones settle them (a gate is recorded, to be
	// denied below) before the leases are released.
	s.turns.Close(ctx)
	dctx, dcancel := context.WithTimeout(ctx, s.cfg.ShutdownBudget/4)
	waitGroup(dctx, &s.drivers)
	dcancel()
	// Calls get half the budget, so one stuck call cannot keep the gates
	// of other conversations from being denied.
	wctx, wcancel := context.WithTimeout(ctx, s.cfg.ShutdownBudget/2)
	s.inflight.closeAndWait(wctx)
	wcancel()
	s.sweepWG.Wait()
	defer func() { _ = s.ledger.Close() }()
	if s.ledger.Shared() {
		// The records stay for the other replicas: a sealed form can still
		// be answered through them, and their sweepers deny what is due.
		// The leases this process held were released as its calls ended.
		return
	}
	// A denial's reply can raise another gate, recorded again: repeat
	// until none is left or the budget is spent.
	for range maxShutdownPasses {
		convs, err := s.ledger.Conversations(ctx)
		if err != nil || len(convs) == 0 || ctx.Err() != nil {
			return
		}
		s.denyAllPending(ctx, convs)
	}
}

// maxShutdownPasses bounds the rounds of denials at shutdown.
const maxShutdownPasses = 10

// callContext ties a tool call to the server's life: it ends when the
// server starts shutting down.
func (s *Server) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.callsCtx, cancel)
	return ctx, func() { stop(); cancel() }
}

// waitGroup waits for wg, at most until ctx ends.
func waitGroup(ctx context.Context, wg *sync.WaitGroup) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
