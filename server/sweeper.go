package server

import (
	"context"
	"sync"
	"time"

	"github.com/kubeq-mcp/kubeq-mcp/approval"
	"github.com/kubeq-mcp/kubeq-mcp/schema"
)

// A 2026-era client that asked the human and never called back leaves its
// gate pending on the backend. It is denied before the next question on the
// conversation anyway; the sweeper also denies it once the approval timeout
// has passed, so a gate never lingers past the time a human had to decide
// (and a replica that never sees that conversation again cannot leave it).

// startSweeper runs the sweep loop, once per server, from the first gate
// left pending on (or from the start, with a shared store: other replicas'
// records are this one's to sweep too); Close stops it.
func (s *Server) startSweeper() {
	// Under mu, so Add cannot race Close's Wait: Close sets closing first.
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return
	}
	s.sweepOnce.Do(func() {
		every := min(max(s.cfg.ApprovalTimeout/2, 50*time.Millisecond), 30*time.Second)
		s.sweepWG.Add(1)
		go func() {
			defer s.sweepWG.Done()
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-s.stop:
					return
				case <-t.C:
					s.sweep()
				}
			}
		}()
	})
}

// sweep denies every record that is due.
func (s *Server) sweep() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := context.AfterFunc(s.hardCtx, cancel)
	defer stop()
	due, err := s.ledger.Due(ctx, time.Now())
	if err != nil {
		s.log.Warn("sweeper cannot read the approval store", "store", s.ledger.Describe(), "err", err)
		return
	}
	for _, conv := range due {
		select {
		case <-s.stop:
			return
		default:
		}
		s.denyExpired(conv)
	}
}

// denyExpired denies the gate recorded on conv if it is still there and
// due. The lease is the claim: when another call or replica holds it, that
// one resolves the gate, and exactly one replica sends the deny.
func (s *Server) denyExpired(conv string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DenyTimeout+5*time.Second)
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	held, err := s.ledger.TryAcquire(ctx, conv)
	if err != nil || held == nil {
		return
	}
	defer held.Release()
	s.denyHeld(ctx, held, true, func(p *approval.Record) bool { return !time.Now().Before(p.Expires) })
}

// denyAllPending denies, at shutdown, every gate still recorded: once the
// process is gone nothing would, and the backend never expires a gate.
// Only with the memory store: a shared store keeps the records for the
// other replicas, whose sweepers deny them when due, and a sealed form can
// still be answered through them.
func (s *Server) denyAllPending(ctx context.Context, convs []string) {
	var wg sync.WaitGroup
	for _, conv := range convs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			held, err := s.ledger.Acquire(ctx, conv)
			if err != nil {
				return
			}
			defer held.Release()
			s.denyHeld(ctx, held, false, func(*approval.Record) bool { return true })
		}()
	}
	wg.Wait()
}

// denyHeld denies the gate recorded on held's conversation when due says
// so. sweeping: the deadline passed (a form nobody answered in time is
// timed out); otherwise the process is stopping.
func (s *Server) denyHeld(ctx context.Context, held *approval.Held, sweeping bool, due func(*approval.Record) bool) {
	conv := held.Conv()
	p, err := held.Pending(ctx)
	if err != nil || p == nil || !due(p) {
		return // answered meanwhile, or not due
	}
	if err := held.Clear(ctx); err != nil {
		return
	}
	reason := schema.ReasonError
	if sweeping && p.Nonce != "" && p.Attempts == 0 {
		reason = schema.ReasonTimedOut // a form nobody answered in time
	}
	actx := withClient(withTransport(ctx, p.Transport), p.ClientName, p.ClientVersion)
	run := &queryRun{conv: conv, user: p.User, started: time.Now(), held: held}
	if res := s.denyPending(actx, run, p, reason); res != nil {
		s.log.Warn("could not deny an approval left pending", "conversation", conv,
			"approval_id", p.Gate.ApprovalID, "reason", reason)
		return
	}
	s.log.Info("denied an approval left pending", "conversation", conv, "approval_id", p.Gate.ApprovalID,
		"reason", reason)
}
