package server

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/kubeq-mcp/kubeq-mcp/approval"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
	"github.com/kubeq-mcp/kubeq-mcp/schema"
	"github.com/kubeq-mcp/kubeq-mcp/turns"
)

// Long investigations: a kube_query whose call stops watching before its
// backend turn ends leaves the turn running (package turns). Three things
// end a watch early:
//   - the user's explicit stop (notifications/cancelled with a reason that
//     is not a timeout): the turn is cancelled and its backend request
//     closed, as before;
//   - the client giving up (its own timeout, a dropped connection): the
//     turn runs on, driven by a goroutine of this process, and kube_answer
//     or the next kube_query on the conversation picks it up;
//   - kubeq-mcp's own call deadline (--call-deadline): the same, and the
//     call returns what came so far with status "running".
//
// While it runs detached, the run keeps the conversation's lease, so no
// question is sent on top of it, from any replica. When it ends at a gate,
// the gate is recorded as unasked, with the approval timeout as its
// deadline, and the lease is released: the next call on the conversation
// asks the human, and the sweeper denies it when nobody did in time.

// liveRun is a kube_query run whose call stopped watching it.
type liveRun struct {
	conv string
	kind turnKind // what the detached turn was sent as

	mu   sync.Mutex // guards run and acc while the driver reads the turn
	run  *queryRun
	acc  *turnAcc
	turn *turns.Turn
	cur  turns.Cursor

	dropStop func() // forgets the user's stop still watched for, once the turn ended

	done   chan struct{} // closed when the driver has finished
	result *mcp.CallToolResult
	hitl   *kubeq.HitlRequest // the gate the run waits at, recorded unasked
	ended  time.Time
}

type turnKind int

const (
	questionTurn turnKind = iota
	approveTurn
)

// detachedError ends the call's part of a run that goes on detached.
type detachedError struct{ lr *liveRun }

func (e *detachedError) Error() string {
	return "the investigation goes on after this call: call kube_answer with conversation_id " + e.lr.conv
}

func asDetached(err error) (*liveRun, bool) {
	var d *detachedError
	if errors.As(err, &d) {
		return d.lr, true
	}
	return nil, false
}

// liveRuns are the detached runs of this process, by conversation, kept
// for the answer TTL once finished (an unasked gate: until its deadline).
type liveRuns struct {
	mu    sync.Mutex
	m     map[string]*liveRun
	calls map[string]int // kube_query calls in their handler, by conversation
}

// enter counts a call in its handler on conv; leave when it returns.
func (l *liveRuns) enter(conv string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.calls == nil {
		l.calls = map[string]int{}
	}
	l.calls[conv]++
}

func (l *liveRuns) leave(conv string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.calls[conv]--; l.calls[conv] <= 0 {
		delete(l.calls, conv)
	}
}

// lookup returns conv's run, and whether a call on conv is in its handler.
func (l *liveRuns) lookup(conv string) (*liveRun, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[conv], l.calls[conv] > 0
}

// keep keeps, for kube_answer, the result of a call whose client went
// away before it came (it gave up as the turn ended).
func (s *Server) keep(ctx context.Context, run *queryRun, res *mcp.CallToolResult) {
	if ctx.Err() == nil || res == nil || run == nil || run.detached || run.conv == "" {
		return
	}
	// A copy: mcp-go decorates res (its result type, _meta) as it sends it
	// to this call, maybe while another call reads the kept one.
	lr := &liveRun{conv: run.conv, run: run, acc: &turnAcc{}, result: cloneResult(res), ended: time.Now(), done: make(chan struct{})}
	close(lr.done)
	s.live.putUnlessRunning(lr)
}

// cloneResult is a copy of res that mcp-go may decorate as it sends it
// (it sets the result type and adds to _meta) without touching res: a kept
// result is sent to every call that asks for it, maybe at the same time.
func cloneResult(res *mcp.CallToolResult) *mcp.CallToolResult {
	if res == nil {
		return nil
	}
	c := *res
	if res.Meta != nil {
		m := *res.Meta
		m.AdditionalFields = maps.Clone(res.Meta.AdditionalFields)
		c.Meta = &m
	}
	c.Content = slices.Clone(res.Content)
	return &c
}

// putUnlessRunning keeps lr unless conv has a run still going (a call that
// took the lease as this one let it go may have left its turn running):
// a stale result must not hide it.
func (l *liveRuns) putUnlessRunning(lr *liveRun) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur := l.m[lr.conv]; cur != nil && !cur.finished() {
		return
	}
	l.putLocked(lr)
}

// maxKeptRuns bounds the runs kept: past it, the oldest finished one is
// dropped, so a flood of calls cannot grow memory for the answer TTL.
const maxKeptRuns = 1000

func (l *liveRuns) put(lr *liveRun) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.putLocked(lr)
}

func (l *liveRuns) putLocked(lr *liveRun) {
	if l.m == nil {
		l.m = map[string]*liveRun{}
	}
	l.m[lr.conv] = lr
	for len(l.m) > maxKeptRuns || l.keptBytes() > maxKeptBytes {
		var oldest *liveRun
		for _, r := range l.m {
			select {
			case <-r.done:
				if r != lr && r.hitl == nil && (oldest == nil || r.ended.Before(oldest.ended)) {
					oldest = r
				}
			default:
			}
		}
		if oldest == nil {
			return
		}
		delete(l.m, oldest.conv)
	}
}

// maxKeptBytes bounds the answer text of the finished runs kept.
const maxKeptBytes = 64 << 20

// keptBytes is the answer text of the finished runs kept; l.mu is held.
func (l *liveRuns) keptBytes() int {
	n := 0
	for _, r := range l.m {
		if r.result != nil {
			for _, c := range r.result.Content {
				if tc, ok := c.(mcp.TextContent); ok {
					n += len(tc.Text)
				}
			}
		}
	}
	return n
}

func (l *liveRuns) get(conv string) *liveRun {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[conv]
}

// take removes conv's run when it is lr.
func (l *liveRuns) take(conv string, lr *liveRun) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m[conv] != lr {
		return false
	}
	delete(l.m, conv)
	return true
}

// expire drops finished runs older than ttl, and unasked gates past
// approval (the sweeper denies those).
func (l *liveRuns) expire(now time.Time, ttl, approval time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for conv, lr := range l.m {
		select {
		case <-lr.done:
		default:
			continue
		}
		keep := ttl
		if lr.hitl != nil {
			keep = approval
		}
		if now.Sub(lr.ended) > keep {
			delete(l.m, conv)
		}
	}
}

// liveTurn sends t as a turn that outlives the call: it returns like turn,
// or a *detachedError when the call stopped watching (its client gave up,
// or the call deadline passed) and the turn went on.
func (s *Server) liveTurn(ctx context.Context, run *queryRun, t kubeq.Turn, kind turnKind) (*kubeq.HitlRequest, error) {
	s.log.Debug("sending a turn to KubeIntellect", "conversation", t.Conversation)
	tr, err := s.turns.Start(run.conv, func(c context.Context) iter.Seq2[kubeq.Event, error] {
		return s.cfg.Backend.Stream(c, t)
	})
	if err != nil {
		return nil, fmt.Errorf("start the turn: %w", err)
	}
	acc := &turnAcc{}
	wctx, cancel := s.watchContext(ctx, run)
	defer cancel()
	// Follow: the events reach the forwarder on the runner's goroutine, with
	// no hand-off to this one (take and event never block).
	cur, werr := tr.Follow(wctx, turns.Cursor{}, func(ev kubeq.Event) {
		if s.take(run, acc, ev) {
			run.fw.event(ev)
		}
	})
	if werr == nil {
		tr.Detach()
		return s.settleTurn(ctx, run, acc, tr)
	}
	if s.stopped(ctx, run) {
		// The user's stop (tasks/cancel too: a task's context ends only by
		// its cancel, its TTL or shutdown), or the server's: close the
		// backend request, as a call always did.
		if kind == approveTurn && cur == (turns.Cursor{}) {
			// An approve decided before the stop came: nothing of its
			// reply has come back, so it may still be on its way. Closed
			// now, nobody could tell whether the change runs; let it
			// reach the backend first (its first event says it did),
			// bounded like a deny, then stop.
			dctx, dcancel := s.denyContext(ctx)
			first, arrived := context.WithCancel(dctx)
			cur, _ = tr.Follow(first, cur, func(ev kubeq.Event) {
				s.take(run, acc, ev)
				arrived()
			})
			arrived()
			dcancel()
		}
		tr.Cancel(turns.ErrCancelled)
		tr.Detach()
		wait, stop := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer stop()
		_ = tr.Wait(wait)
		s.turns.Forget(run.conv, tr)
		return s.endTurn(ctx, run, acc, ctx.Err())
	}
	lr := &liveRun{conv: run.conv, kind: kind, run: run, acc: acc, turn: tr, cur: cur, done: make(chan struct{})}
	run.detached = true // the lease is the driver's now
	run.fw = nil        // nobody to forward to
	s.live.put(lr)
	// The user's stop may still come (a client that closes its stream
	// before it says why): it cancels the turn then.
	lr.dropStop = s.cancels.onStop(run.stopScope, run.requestID, func() { tr.Cancel(turns.ErrCancelled) })
	tr.Detach()
	s.mirror(lr)
	s.drivers.Add(1)
	go s.drive(lr)
	s.log.Info("the call stopped watching; the turn goes on", "conversation", run.conv,
		"deadline_passed", ctx.Err() == nil)
	return nil, &detachedError{lr: lr}
}

// watchContext bounds how long a call watches its turns: the call
// deadline, counted from when the call began.
func (s *Server) watchContext(ctx context.Context, run *queryRun) (context.Context, context.CancelFunc) {
	d := s.callDeadline(ctx)
	if d <= 0 || run.callStart.IsZero() || inTask(ctx) { // a task is polled: no deadline
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, run.callStart.Add(d))
}

// drive reads a detached turn to its end and settles the run: a result
// kept for kube_answer, or a gate recorded unasked for the next call.
func (s *Server) drive(lr *liveRun) {
	defer s.drivers.Done()
	ctx := context.Background()
	var mirrored time.Time
	_, _ = lr.turn.Watch(ctx, lr.cur, func(ev kubeq.Event) {
		lr.mu.Lock()
		s.take(lr.run, lr.acc, ev)
		lr.mu.Unlock()
		// Other replicas read the run from the store: at most one write a
		// second, so a token flood is not a store flood.
		if time.Since(mirrored) >= mirrorEvery {
			mirrored = time.Now()
			s.mirror(lr)
		}
	})
	lr.mu.Lock()
	defer lr.mu.Unlock()
	run := lr.run
	hitl, err := s.settleTurn(ctx, run, lr.acc, lr.turn)
	switch {
	case err != nil:
		if lr.kind == questionTurn {
			s.uncertainQuestion(ctx, run, err)
		} else {
			s.approveFailed(ctx, run, approval.NewGate(*lastGate(run), s.cfg.ConfirmHighRisk), err)
		}
		lr.result, _ = s.failure(ctx, run, err)
	case hitl != nil:
		gate := approval.NewGate(*hitl, s.cfg.ConfirmHighRisk)
		rec := approval.Record{Gate: gate, Unasked: true, Expires: time.Now().Add(s.cfg.ApprovalTimeout)}
		if rerr := s.record(ctx, run, rec); rerr != nil {
			// A gate nobody can keep track of is denied at once.
			res, _ := s.failAndDeny(ctx, run, gate, rerr)
			lr.result = res
			break
		}
		lr.hitl = hitl
		s.log.Info("a detached turn waits at an approval gate; the next call on the conversation asks the human",
			"conversation", run.conv, "action", hitl.Action)
	default:
		lr.result = s.result(run)
	}
	lr.ended = time.Now()
	lr.dropStop()
	// Settled before the lease goes: a call waiting for it (in acquire)
	// then finds the run done, and an unasked gate asked, not denied.
	held := run.held
	close(lr.done)
	held.Release()
	s.mirrorSettled(lr)
}

// settleTurn closes a turn read to its end: answer text the runner did
// not keep (past its cap) still counts as received, and the runner lets
// the turn go.
func (s *Server) settleTurn(ctx context.Context, run *queryRun, acc *turnAcc, tr *turns.Turn) (*kubeq.HitlRequest, error) {
	if dropped := tr.Dropped(); dropped > 0 {
		run.book.Got += int64(dropped)
	}
	s.turns.Forget(run.conv, tr)
	return s.endTurn(ctx, run, acc, tr.Err())
}

// lastGate is the gate the run's last approval answered (an approve turn's).
func lastGate(run *queryRun) *kubeq.HitlRequest {
	a := run.approvals[len(run.approvals)-1]
	return &kubeq.HitlRequest{ApprovalID: a.ApprovalID, Action: a.Action, Risk: a.Risk}
}

// running is the result of a call that stopped watching at its deadline:
// the answer so far, the latest step, and how to get the rest.
func (s *Server) running(lr *liveRun) *mcp.CallToolResult {
	so, status, done := lr.soFar()
	if done != nil {
		return done
	}
	return s.runningResult(so, status)
}

// soFar is the run as it stands: its parts with the current turn's text,
// and its latest step; or its result, when the driver has settled it.
func (lr *liveRun) soFar() (*queryRun, string, *mcp.CallToolResult) {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	// The driver may have settled the run while this call waited for the
	// lock: then its turn's text is in run.parts already, and a result
	// may be there whole.
	settled := lr.finished()
	if settled && lr.result != nil {
		return nil, "", cloneResult(lr.result)
	}
	run := lr.run
	parts := append([]string(nil), run.parts...)
	if !settled {
		parts = append(parts, lr.acc.answer.String())
	}
	// The result is encoded after lr.mu is let go, while the driver goes on
	// adding usage and correcting approvals: it gets copies.
	so := &queryRun{conv: run.conv, user: run.user, parts: parts,
		approvals: append([]schema.Approval{}, run.approvals...), notices: append([]string(nil), run.notices...),
		started: run.started}
	if run.usage != nil {
		u := *run.usage
		so.usage = &u
	}
	var status string
	if lr.turn != nil {
		status = lr.turn.Snapshot().Status
	}
	if lr.hitl != nil {
		status = "waiting for approval: " + lr.hitl.Action
	}
	return so, status, nil
}

// runningResult is the result of a run still going: the answer so far,
// the latest step, and how to get the rest.
func (s *Server) runningResult(so *queryRun, status string) *mcp.CallToolResult {
	approvals := so.approvals
	if approvals == nil {
		approvals = []schema.Approval{}
	}
	out := schema.QueryOutput{
		Answer: so.answer(), ConversationID: so.conv, Approvals: approvals, Usage: so.usage,
		ElapsedMS: time.Since(so.started).Milliseconds(), Status: schema.StatusRunning, LatestStatus: status,
	}
	var b strings.Builder
	b.WriteString(s.text(so, out.Answer))
	b.WriteString("\n\nThe investigation is still running")
	if status != "" {
		b.WriteString(" (latest: " + status + ")")
	}
	b.WriteString(". The answer above is what came so far. Call kube_answer with conversation_id " + so.conv +
		" (and wait_seconds) to get the rest.")
	return mcp.NewToolResultStructured(out, b.String())
}

// finished reports whether lr's driver has settled it (or lr is a kept
// result, which has no turn).
func (lr *liveRun) finished() bool {
	select {
	case <-lr.done:
		return true
	default:
		return false
	}
}

// awaits reports whether lr waits at gate (the same action id).
func (lr *liveRun) awaits(gate approval.Gate) bool {
	select {
	case <-lr.done:
	default:
		return false
	}
	return lr.hitl != nil && lr.hitl.ApprovalID == gate.ApprovalID && lr.hitl.Action == gate.Action
}

// acquire takes the conversation's lease for run, waiting at most until
// the call deadline for a turn that runs on without a call.
func (s *Server) acquire(ctx context.Context, run *queryRun) (*approval.Held, error) {
	// A free lease is taken at once, as Acquire would first: no deadline
	// (and its timer) to set up for the usual case.
	if held, err := s.ledger.TryAcquire(ctx, run.conv); err != nil || held != nil {
		return held, err
	}
	wctx, cancel := s.watchContext(ctx, run)
	defer cancel()
	held, err := s.ledger.Acquire(wctx, run.conv)
	if err != nil && ctx.Err() == nil && wctx.Err() != nil {
		// Only a run still going is "still running": a finished one (a
		// kept result, a gate waiting) has let the lease go, so another
		// call holds it.
		if lr := s.live.get(run.conv); lr != nil && !lr.finished() {
			return nil, &detachedError{lr: lr}
		}
		return nil, fmt.Errorf("another turn on this conversation (on another replica) was still running at the call deadline: %w", err)
	}
	return held, err
}

// detachedResult ends a call whose run went on without it.
func (s *Server) detachedResult(ctx context.Context, lr *liveRun) (*mcp.CallToolResult, error) {
	if ctx.Err() != nil {
		return nil, ctx.Err() // the client gave up: nobody reads a result
	}
	return s.running(lr), nil
}

// stillRunning is running(lr) with a notice.
func (s *Server) stillRunning(ctx context.Context, lr *liveRun, notice string) (*mcp.CallToolResult, error) {
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	res := *s.running(lr) // a copy: it may be the run's kept result
	res.Content = append([]mcp.Content(nil), res.Content...)
	if tc, ok := res.Content[0].(mcp.TextContent); ok {
		tc.Text = notice + "\n\n" + tc.Text
		res.Content[0] = tc
	}
	return &res, nil
}

// adopt makes the call of run (holding the conversation's lease, the
// unasked record taken) drive lr on from its gate: the human is asked,
// and the run goes on as kube_query's would have.
func (s *Server) adopt(ctx context.Context, lr *liveRun, call *queryRun, notice string) (*mcp.CallToolResult, error) {
	if !s.live.take(lr.conv, lr) {
		return mcp.NewToolResultError("this conversation's waiting approval was just taken up by another call; " +
			"call kube_answer again for its outcome"), nil
	}
	lr.mu.Lock()
	run := lr.run
	lr.mu.Unlock()
	run.held, run.fw = call.held, call.fw
	run.callStart, run.stopScope, run.requestID = call.callStart, call.stopScope, call.requestID
	run.detached = false
	call.detached = true // the lease is released by run, whichever way it ends
	defer run.release()
	if notice != "" {
		run.notices = append(run.notices, notice)
	}
	res, err := s.gates(ctx, run, lr.hitl)
	// The run is this call's now, not the caller's (call.detached): when
	// the client gave up meanwhile, keep its result here, as handleQuery
	// does for its own run.
	s.keep(ctx, run, res)
	return res, err
}

// expireLiveRuns drops finished runs past the answer TTL until Close.
func (s *Server) expireLiveRuns() {
	tick := time.NewTicker(min(max(s.cfg.AnswerTTL/4, time.Millisecond), time.Minute))
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-tick.C:
			s.live.expire(now, s.cfg.AnswerTTL, s.cfg.ApprovalTimeout)
		}
	}
}
