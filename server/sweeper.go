package server

import (
	"context"
	"sync"
	"time"

	"github.com/kubeq-mcp/kubeq-mcp/schema"
)

// A 2026-era client that asked the human and never called back leaves its
// gate pending on the backend. It is denied before the next question on the
// conversation anyway; the sweeper also denies it once the approval timeout
// has passed, so a gate never lingers past the time a human had to decide
// (and a replica that never sees that conversation again cannot leave it).

// startSweeper runs the sweep loop, once per server, from the first gate
// left pending on; Close stops it.
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
					for _, conv := range s.convs.expired(time.Now()) {
						s.denyExpired(conv)
					}
				}
			}
		}()
	})
}

// denyExpired denies the gate pending on conv if it is still pending and
// past its expiry.
func (s *Server) denyExpired(conv string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.denyTimeout+5*time.Second)
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	s.denyLeftPending(ctx, conv, schema.ReasonTimedOut, func(p *pendingGate) bool {
		return !p.Expires.IsZero() && !time.Now().Before(p.Expires)
	})
}

// denyAllPending denies, at shutdown, every gate still pending: once the
// process is gone nothing would, and the backend never expires a gate.
func (s *Server) denyAllPending(ctx context.Context) {
	var wg sync.WaitGroup
	for _, conv := range s.convs.pendingIDs() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.denyLeftPending(ctx, conv, schema.ReasonError, func(*pendingGate) bool { return true })
		}()
	}
	wg.Wait()
}

// denyLeftPending denies the gate pending on conv when due says so.
func (s *Server) denyLeftPending(ctx context.Context, conv string, reason schema.Reason, due func(*pendingGate) bool) {
	release, err := s.convs.acquire(ctx, conv)
	if err != nil {
		return
	}
	defer release()
	p := s.convs.takePending(conv)
	if p == nil {
		return
	}
	if !due(p) {
		s.convs.setPending(conv, p) // answered meanwhile, or not ours to sweep
		return
	}
	actx := withClient(withTransport(ctx, p.Transport), p.ClientName, p.ClientVersion)
	run := &queryRun{conv: conv, user: p.User, started: time.Now()}
	if res := s.denyPending(actx, run, p, reason); res != nil {
		s.log.Warn("could not deny an approval left pending", "conversation", conv,
			"approval_id", p.Gate.ApprovalID, "reason", reason)
		return
	}
	s.log.Info("denied an approval left pending", "conversation", conv, "approval_id", p.Gate.ApprovalID,
		"reason", reason)
}
