package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/kubeq-mcp/kubeq-mcp/approval"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
	"github.com/kubeq-mcp/kubeq-mcp/schema"
)

// The approval flow. Invariant: the only path that sends "approve" to the
// backend is judge returning approve for an accepted form whose decision is
// approve (and whose confirmation matches, for high risk), and then
// "approve" is sent at most once. Everything else — decline, cancel, deny,
// mismatch, timeout, no elicitation, any error, a bad or replayed state,
// shutdown — sends "deny". When it is unknown whether a gate is still open
// (an answer lost, an older backend without history), a blind "deny" goes
// before anything else is said on the conversation.
//
// 2026-era clients get an input_required result and call again with the
// answer and the sealed state. 2025-era clients are asked with
// elicitation/create from inside the call. mcp-go could bridge the latter
// from the input_required result too, but its bridge turns any elicitation
// failure into a JSON-RPC error without calling the handler again, which
// would leave the gate pending instead of denied, and it has no timeout.
//
// A client that shows no form is asked through the one-time approval page
// instead (approval_page.go): the page's answer is judged by the same
// approval.Judge as a form's.

const elicitationID = "approval"

// defaultDenyTimeout is Config.DenyTimeout when unset.
const defaultDenyTimeout = 30 * time.Second

// denyContext is for sending a deny: detached from ctx's cancellation (the
// client that cancels is often the one whose form just failed), bounded by
// Config.DenyTimeout, ctx's own deadline when that is sooner, and the end of
// Close's budget.
func (s *Server) denyContext(ctx context.Context) (context.Context, context.CancelFunc) {
	d := s.cfg.DenyTimeout
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl))
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
	stop := context.AfterFunc(s.hardCtx, cancel) // Close's budget is spent
	return dctx, func() { stop(); cancel() }
}

// sendDeny sends "deny" on run's conversation without recording an
// approval (the caller knows of no gate, or has recorded it), detached and
// bounded like every deny. It returns the gate the reply raised, if any.
func (s *Server) sendDeny(ctx context.Context, run *queryRun) (*kubeq.HitlRequest, error) {
	dctx, cancel := s.denyContext(ctx)
	defer cancel()
	return s.turn(dctx, run, kubeq.Turn{Question: schema.FormDeny, Conversation: run.conv, User: run.user})
}

// gates resolves the gates a turn ended at, one after another, until a
// turn ends without one. Only a human's approval leads to asking again: a
// gate raised by the reply to any denial is denied without a form, within
// the cap of every automatic deny chain.
func (s *Server) gates(ctx context.Context, run *queryRun, hitl *kubeq.HitlRequest) (*mcp.CallToolResult, error) {
	for hitl != nil {
		gate := approval.NewGate(*hitl, s.cfg.ConfirmHighRisk)
		if isModern(ctx) && clientCanElicit(ctx) {
			return s.askLater(ctx, run, gate)
		}
		if isModern(ctx) && clientCanURLElicit(ctx) {
			return s.askLaterByPage(ctx, run, gate)
		}
		v := s.askNow(ctx, run, gate)
		var (
			approved bool
			err      error
		)
		hitl, approved, err = s.decide(ctx, run, gate, v)
		if lr, ok := asDetached(err); ok {
			return s.detachedResult(ctx, lr)
		}
		if err != nil {
			return s.failure(ctx, run, err)
		}
		if !approved { // what was sent: a stop turns the human's approval into a deny
			return s.afterDenial(ctx, run, hitl)
		}
	}
	return s.result(run), nil
}

// afterDenial ends a call whose gate was denied: a gate the denial's reply
// raised is denied too, without asking the human again.
func (s *Server) afterDenial(ctx context.Context, run *queryRun, hitl *kubeq.HitlRequest) (*mcp.CallToolResult, error) {
	if hitl == nil {
		return s.result(run), nil
	}
	parts := run.parts
	err := s.denyReplies(ctx, run, hitl, schema.ReasonRepeatedAfterDenial)
	run.parts = parts // the replies to automatic denials are not the answer
	run.notices = append(run.notices, fmt.Sprintf("After the denial, KubeIntellect proposed `%s`; kubeq-mcp "+
		"denied it without asking again, so one denial is not worn down by repeated forms. Ask again "+
		"if you want a change.", hitl.Action))
	if err != nil {
		return s.failure(ctx, run, err)
	}
	return s.result(run), nil
}

func isModern(ctx context.Context) bool {
	return mcp.IsModernProtocol(mcpserver.RequestProtocolVersion(ctx))
}

// askNow asks a 2025-era client with elicitation/create and waits, at most
// the approval timeout.
func (s *Server) askNow(ctx context.Context, run *queryRun, gate approval.Gate) approval.Verdict {
	if !clientCanElicit(ctx) {
		return s.askByPage(ctx, run, gate)
	}
	v := s.askByForm(ctx, gate)
	v.Via = viaForm
	return v
}

// askByForm shows gate's form with elicitation/create and judges the answer.
func (s *Server) askByForm(ctx context.Context, gate approval.Gate) approval.Verdict {
	// Progress sent so far must reach the client before the form does.
	if n := notifierFrom(ctx); n != nil {
		n.flush(ctx)
	}
	ectx, cancel := context.WithTimeout(ctx, s.cfg.ApprovalTimeout)
	defer cancel()
	res, err := s.mcp.RequestElicitation(ectx, mcp.ElicitationRequest{
		Request: mcp.Request{Method: string(mcp.MethodElicitationCreate)},
		Params:  withRelatedTask(ctx, s.form(gate)),
	})
	if err != nil {
		if errors.Is(ectx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return approval.Deny(schema.ReasonTimedOut)
		}
		s.log.Warn("approval form failed; denying", "approval_id", gate.ApprovalID, "err", err)
		return approval.Deny(schema.ReasonError)
	}
	if res == nil {
		return approval.Deny(schema.ReasonError)
	}
	// Duplicate members were made ambiguous by the transport (see
	// strictAnswers); the rest is judged strictly here.
	content, err := json.Marshal(res.Content)
	if err != nil {
		return approval.Deny(schema.ReasonError)
	}
	return approval.Judge(gate, approval.Answer{Action: string(res.Action), Content: content})
}

// answer2026 is the human's answer in a 2026-era retry, as it arrived.
func answer2026(req mcp.CallToolRequest) approval.Answer {
	resp, ok := req.Params.InputResponses[elicitationID]
	if !ok {
		return approval.Answer{}
	}
	raw, err := json.Marshal(resp) // the raw answer, kept by mcp-go until decoded
	if err != nil || approval.HasDuplicateMembers(raw) {
		return approval.Answer{}
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return approval.Answer{}
	}
	var action string
	if json.Unmarshal(m["action"], &action) != nil {
		return approval.Answer{}
	}
	return approval.Answer{Action: action, Content: m["content"]}
}

// askLater answers a 2026-era client with input_required and a sealed
// state; the client calls again with the human's answer (resumeQuery).
func (s *Server) askLater(ctx context.Context, run *queryRun, gate approval.Gate) (*mcp.CallToolResult, error) {
	return s.askLaterWith(ctx, run, gate, time.Now().Add(s.cfg.ApprovalTimeout), "", s.form(gate))
}

// askLaterWith seals the state of gate and answers with input_required
// asking params (the form, or an approval page's URL, whose parked ticket
// pageID names).
func (s *Server) askLaterWith(ctx context.Context, run *queryRun, gate approval.Gate, expires time.Time,
	pageID string, params mcp.ElicitationParams) (*mcp.CallToolResult, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return s.failAndDeny(ctx, run, gate, fmt.Errorf("approval state: %w", err))
	}
	st := approvalState{
		Nonce: hex.EncodeToString(nonce), Conversation: run.conv, User: run.user,
		ApprovalID: gate.ApprovalID, Action: gate.Action, Risk: gate.Risk, Confirm: gate.Confirm,
		Parts: run.parts, Approvals: run.approvals, Usage: run.usage, Book: run.book,
		Started: run.started, Expires: expires, PageID: pageID,
	}
	token, err := s.sealFitting(st)
	if err != nil {
		return s.failAndDeny(ctx, run, gate, err)
	}
	rec := approval.Record{Nonce: st.Nonce, Gate: gate, Sealed: true, Expires: st.Expires}
	if err := s.record(ctx, run, rec); err != nil {
		// A form nobody can keep track of must not be shown.
		return s.failAndDeny(ctx, run, gate, err)
	}
	run.fw.note("waiting for a human to approve or deny: " + gate.Action)
	return mcpserver.NewInputRequestBuilder(token).
		Elicit(elicitationID, params).
		ToolResult(), nil
}

// failAndDeny denies gate when it could not even be asked.
func (s *Server) failAndDeny(ctx context.Context, run *queryRun, gate approval.Gate, cause error) (*mcp.CallToolResult, error) {
	s.log.Error("approval could not be asked; denying", "err", cause)
	hitl, _, err := s.decide(ctx, run, gate, approval.Deny(schema.ReasonError))
	if err != nil {
		return s.failure(ctx, run, err)
	}
	return s.afterDenial(ctx, run, hitl)
}

// resumeQuery is the second leg of a 2026-era approval.
func (s *Server) resumeQuery(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	st, err := s.sealer.open(req.Params.RequestState, time.Now())
	if errors.Is(err, errBadState) {
		s.log.Warn("refused a forged or tampered approval state")
		return mcp.NewToolResultError("refused: the approval state sent back is invalid, so nothing was " +
			"approved and nothing was sent to KubeIntellect. Ask the question again."), nil
	}
	expired := errors.Is(err, errStateExpired)
	run := &queryRun{
		conv: st.Conversation, user: st.User, started: st.Started,
		parts: st.Parts, approvals: st.Approvals, usage: st.Usage, book: st.Book,
	}
	run.watchedBy(ctx, req)
	held, herr := s.ledger.Acquire(ctx, st.Conversation)
	if herr != nil {
		return s.storeFailure(ctx, run, herr)
	}
	run.held = held
	defer run.release()
	ns, p, cerr := held.Consume(ctx, st.Nonce, st.Expires.Add(time.Minute))
	if cerr != nil {
		return s.storeFailure(ctx, run, cerr)
	}
	switch ns {
	case approval.NonceTimedOut:
		return s.lateAnswer(st), nil
	case approval.NonceUsed:
		s.log.Warn("refused a replayed approval state", "conversation", st.Conversation)
		return mcp.NewToolResultError("refused: this approval was already answered; a state can be used " +
			"once. Nothing was approved."), nil
	}
	if p != nil && p.Nonce != st.Nonce {
		// A newer gate is pending: leave it alone.
		return mcp.NewToolResultError("refused: another approval is pending on this conversation; " +
			"this answer is stale. Nothing was approved."), nil
	}
	if p == nil && expired {
		// Nothing records this gate open: it was denied when its time ran
		// out, and a deny now would reach KubeIntellect as a new question.
		s.log.Warn("refused an expired approval state with no gate recorded", "conversation", st.Conversation)
		return s.lateAnswer(st), nil
	}
	if st.PageID != "" {
		defer s.pages.forget(st.PageID) // whatever happens below, the page does not outlive this leg
	}
	gate := st.gate()
	run.fw = s.newForwarder(ctx, req) // before the verdict: waiting for a page sends progress
	defer run.fw.close()
	v := approval.Deny(schema.ReasonTimedOut)
	v.Via = viaForm
	timedOut, _ := ctx.Value(taskTimedOutKey{}).(bool)
	switch {
	case timedOut:
		// A task's form left unanswered until its time ran out: the
		// timeout's deny (page or form alike).
		if st.PageID != "" {
			v.Via = viaURL
		}
	case st.PageID != "" && expired:
		v.Via = viaURL
	case st.PageID != "":
		v = s.resumeByPage(ctx, req, gate, st.PageID, run)
	case !expired:
		v = approval.Judge(gate, answer2026(req))
		v.Via = viaForm
	}
	if p == nil {
		if res, send := s.unrecordedAnswer(ctx, run, gate, v); !send {
			return res, nil
		}
	} else if err := held.Clear(ctx); err != nil {
		return s.storeFailure(ctx, run, err)
	}

	res, err := s.decided(ctx, run, gate, v)
	// Nobody reads the result of a leg whose client gave up: keep it for
	// kube_answer, as handleQuery does for a first leg.
	s.keep(ctx, run, res)
	return res, err
}

// decided sends the verdict v on gate and runs the investigation on from
// it: resumeQuery's end.
func (s *Server) decided(ctx context.Context, run *queryRun, gate approval.Gate, v approval.Verdict) (*mcp.CallToolResult, error) {
	hitl, approved, derr := s.decide(ctx, run, gate, v)
	if lr, ok := asDetached(derr); ok {
		return s.detachedResult(ctx, lr)
	}
	if derr != nil {
		return s.failure(ctx, run, derr)
	}
	if !approved {
		return s.afterDenial(ctx, run, hitl)
	}
	return s.gates(ctx, run, hitl)
}

// unrecordedAnswer handles an answer to a gate the ledger has no record of
// (a state issued by a replica with its own memory store, or before a
// restart), reading the backend's history. It reports whether to send the
// verdict; otherwise res is the call's result and nothing was sent.
func (s *Server) unrecordedAnswer(ctx context.Context, run *queryRun, gate approval.Gate, v approval.Verdict) (res *mcp.CallToolResult, send bool) {
	state, bg, err := s.cfg.Backend.GateState(ctx, run.conv)
	if err != nil {
		s.log.Debug("backend history unavailable", "conversation", run.conv, "err", err)
	}
	same := state == kubeq.GatePending && approval.NewGate(bg, false).Same(gate)
	switch {
	case same:
		return nil, true
	case state == kubeq.GateNone && !v.Approves(gate):
		run.approvals = append(run.approvals, schema.Approval{ApprovalID: gate.ApprovalID, Action: gate.Action,
			Risk: gate.Risk, Decision: schema.Denied, Reason: v.Reason})
		s.audit.record(ctx, run.conv, run.user, run.approvals[len(run.approvals)-1], v.Comment, v.Via)
		run.notices = append(run.notices, "KubeIntellect's history shows no approval pending on this "+
			"conversation any more, so nothing was sent.")
		return s.result(run), false
	case !v.Approves(gate) && state == kubeq.GateUnknown:
		return nil, true // a deny, blind: the safe side when nothing can tell
	}
	// Not sent: "approve" could answer a newer gate, and a deny on a newer
	// gate would decide it unseen. Whatever is pending is denied before the
	// next question here, or by the sweeper.
	rec := approval.Record{Blind: true, Expires: time.Now()}
	if state == kubeq.GatePending {
		rec = approval.Record{Gate: approval.NewGate(bg, false), Expires: time.Now()}
	}
	if state != kubeq.GateNone {
		_ = s.record(ctx, run, rec)
	}
	return mcp.NewToolResultError("refused: kubeq-mcp cannot confirm that this approval is still the one " +
		"pending on KubeIntellect (it was issued by another kubeq-mcp or before a restart, and the " +
		"backend's history does not show it); nothing was approved. Ask the question again."), false
}

// lateAnswer is the result for a human who answered after the gate was
// denied for running out of time: what the call had, and that denial.
func (s *Server) lateAnswer(st approvalState) *mcp.CallToolResult {
	run := &queryRun{conv: st.Conversation, user: st.User, started: st.Started,
		parts: st.Parts, approvals: st.Approvals, usage: st.Usage, book: st.Book}
	run.approvals = append(run.approvals, schema.Approval{ApprovalID: st.ApprovalID, Action: st.Action,
		Risk: st.Risk, Decision: schema.Denied, Reason: schema.ReasonTimedOut})
	run.notices = append(run.notices, "The answer came after the approval timeout; the action had "+
		"already been denied, and it did not run. Nothing was sent to KubeIntellect.")
	return s.result(run)
}

// decide records the verdict on gate, sends exactly "approve" or "deny" on
// the same conversation and streams the backend's reply, which may end at
// another gate. "approve" goes out only for a verdict that approves this
// very gate, and only when the backend's history, when it can be read,
// shows this gate pending.
func (s *Server) decide(ctx context.Context, run *queryRun, gate approval.Gate, v approval.Verdict) (hitl *kubeq.HitlRequest, approved bool, err error) {
	approve := v.Approves(gate)
	if approve && s.stopped(ctx, run) {
		// The stop came after the human approved, before the approval was
		// sent: the stop wins, and the gate is denied (never left open).
		approve, v = false, approval.Verdict{Reason: schema.ReasonUserCancelled, Comment: v.Comment, Via: v.Via}
		run.notices = append(run.notices, fmt.Sprintf("The human approved `%s`, but the call was stopped "+
			"before the approval was sent, so kubeq-mcp denied it: it did not run.", gate.Action))
	}
	if approve && !s.pendingHere(ctx, run, gate) {
		approve, v = false, approval.Verdict{Reason: schema.ReasonError, Via: v.Via}
		run.approvals = append(run.approvals, schema.Approval{ApprovalID: gate.ApprovalID, Action: gate.Action,
			Risk: gate.Risk, Decision: schema.Denied, Reason: schema.ReasonError})
		s.audit.record(ctx, run.conv, run.user, run.approvals[len(run.approvals)-1], "approved, but not pending at KubeIntellect", v.Via)
		run.notices = append(run.notices, fmt.Sprintf("The human approved `%s`, but KubeIntellect's history "+
			"shows another approval, or none, pending on this conversation, so kubeq-mcp did not send the "+
			"approval: it did not run. Ask again.", gate.Action))
		return nil, false, nil
	}
	a := schema.Approval{ApprovalID: gate.ApprovalID, Action: gate.Action, Risk: gate.Risk,
		Decision: schema.Denied, Reason: v.Reason}
	answer := schema.FormDeny
	if approve {
		a.Decision, answer = schema.Approved, schema.FormApprove
	}
	run.approvals = append(run.approvals, a)
	s.audit.record(ctx, run.conv, run.user, a, v.Comment, v.Via)
	run.fw.note(strings.TrimSuffix(approvalSentence(a), " Nothing was run.") + " ")

	tctx := ctx
	if !approve {
		// A deny must arrive even when the call is cancelled meanwhile (the
		// client that cancels is often the one whose form just failed): it
		// runs detached from the call, bounded on its own.
		var cancel context.CancelFunc
		tctx, cancel = s.denyContext(ctx)
		defer cancel()
	}
	// "approve" is sent at most once: sent again after a lost answer, it
	// would answer whatever gate the first one led to. What it starts
	// outlives the call (liveTurn); a deny is bounded on its own.
	t := kubeq.Turn{Question: answer, Conversation: run.conv, User: run.user, AtMostOnce: approve}
	if approve {
		hitl, err = s.liveTurn(tctx, run, t, approveTurn)
	} else {
		hitl, err = s.turn(tctx, run, t)
	}
	_, detached := asDetached(err)
	switch {
	case err == nil, detached:
	case !approve && approval.Classify(err) != approval.Delivered:
		// The deny may not have arrived: deny again before the next
		// question, or when the sweeper retries it.
		_ = s.record(ctx, run, approval.Record{Gate: gate, Attempts: run.attempts + 1})
	case approve:
		s.approveFailed(ctx, run, gate, err)
	}
	return hitl, approve, err
}

// pendingHere reports whether the backend's history, when it can be read,
// shows gate pending on run's conversation. A history that cannot be read
// does not refuse (the ledger's record stands); one that shows another
// gate, or none, does: "approve" would start a new turn or answer a gate
// nobody saw. Another gate it shows is recorded, to be denied.
func (s *Server) pendingHere(ctx context.Context, run *queryRun, gate approval.Gate) bool {
	// Read apart from the call's end: a call that gave up still sends the
	// human's approval (its turn goes on), and must not take a read cut
	// short by its own end for a history that cannot be read.
	hctx, cancel := s.denyContext(ctx)
	defer cancel()
	state, bg, err := s.cfg.Backend.GateState(hctx, run.conv)
	if err != nil {
		s.log.Debug("backend history unavailable", "conversation", run.conv, "err", err)
	}
	switch state {
	case kubeq.GatePending:
		if approval.NewGate(bg, false).Same(gate) {
			return true
		}
		s.log.Warn("refused an approval: another gate is pending at KubeIntellect", "conversation", run.conv,
			"approved", gate.ApprovalID, "pending", bg.ApprovalID)
		_ = s.record(ctx, run, approval.Record{Gate: approval.NewGate(bg, false), Expires: time.Now()})
		return false
	case kubeq.GateNone:
		s.log.Warn("refused an approval: no gate is pending at KubeIntellect", "conversation", run.conv,
			"approved", gate.ApprovalID)
		return false
	}
	return true
}

// approveFailed keeps a gate whose approval did not get through from
// staying open. When the approve surely never arrived, the gate is still
// pending: deny it now, or before the next question if that fails too.
// When it may have arrived, whatever is pending is denied (blind) before
// the next question.
func (s *Server) approveFailed(ctx context.Context, run *queryRun, gate approval.Gate, cause error) {
	switch approval.Classify(cause) {
	case approval.Delivered:
		return
	case approval.Unknown:
		_ = s.record(ctx, run, approval.Record{Blind: true})
		run.notices = append(run.notices, fmt.Sprintf("The approval of `%s` may not have reached "+
			"KubeIntellect; whatever is pending on this conversation is denied before the next question "+
			"(or by kubeq-mcp's sweeper).", gate.Action))
		return
	}
	// The human approved, but the action will not run: the record says so,
	// and the audit log gets the denial as a line of its own.
	if n := len(run.approvals); n > 0 && run.approvals[n-1].ApprovalID == gate.ApprovalID {
		a := run.approvals[n-1]
		a.Decision, a.Reason = schema.Denied, schema.ReasonError
		run.approvals[n-1] = a
		s.audit.record(ctx, run.conv, run.user, a, "", "")
	}
	parts := run.parts
	hitl, err := s.sendDeny(ctx, run)
	run.parts = parts // the deny's reply is not part of the answer
	if err != nil {
		if approval.Classify(err) != approval.Delivered {
			_ = s.record(ctx, run, approval.Record{Gate: gate, Attempts: run.attempts + 1})
		}
		run.notices = append(run.notices, fmt.Sprintf("The approval of `%s` did not reach KubeIntellect, "+
			"and neither did the denial sent after it; it is denied before the next question on this "+
			"conversation. It did not run.", gate.Action))
		return
	}
	if err := s.denyReplies(ctx, run, hitl, schema.ReasonError); err != nil {
		// decide or denyReplies recorded the gate still open, if any.
		run.parts = parts
		run.notices = append(run.notices, fmt.Sprintf("The approval of `%s` did not reach KubeIntellect, "+
			"so kubeq-mcp denied it instead: it did not run. KubeIntellect then asked for another approval, "+
			"which could not be denied yet; it is denied before the next question on this conversation.",
			gate.Action))
		return
	}
	run.parts = parts
	s.log.Warn("the approval did not reach KubeIntellect; denied the gate instead",
		"conversation", run.conv, "approval_id", gate.ApprovalID, "err", cause)
	run.notices = append(run.notices, fmt.Sprintf("The approval of `%s` did not reach KubeIntellect, "+
		"so kubeq-mcp denied it instead: it did not run. Ask again to retry.", gate.Action))
}

// denyPending denies a gate an earlier call left pending before anything
// else is said on the conversation (reconcile: questions, the sweeper and
// shutdown all come here). It returns a result only when the deny could
// not be delivered, in which case the new question must not be sent.
func (s *Server) denyPending(ctx context.Context, run *queryRun, p *approval.Record, reason schema.Reason) *mcp.CallToolResult {
	run.attempts = p.Attempts
	if p.User != "" && run.user == "" {
		run.user = p.User
	}
	if p.Blind {
		// Ask the history first: a deny where nothing is pending reaches a
		// current backend as a new question.
		state, bg, err := s.cfg.Backend.GateState(ctx, run.conv)
		if err != nil {
			s.log.Debug("backend history unavailable", "conversation", run.conv, "err", err)
		}
		switch state {
		case kubeq.GateNone:
			s.log.Info("nothing pending after all: no precautionary denial", "conversation", run.conv)
			return nil
		case kubeq.GatePending:
			p = &approval.Record{Gate: approval.NewGate(bg, false), User: p.User, Attempts: p.Attempts}
		default:
			return s.denyBlind(ctx, run)
		}
	}
	if p.Nonce != "" {
		// A client coming back later with this gate's state finds it answered.
		if err := s.ledger.SpendNonce(ctx, p.Nonce, p.Expires.Add(time.Minute), reason == schema.ReasonTimedOut); err != nil {
			s.log.Warn("could not mark an approval state used", "conversation", run.conv, "err", err)
		}
	}
	hitl, _, err := s.decide(ctx, run, p.Gate, approval.Deny(reason))
	// The reply to the deny is about the old gate, not the new question.
	run.parts = nil
	if err != nil {
		res, _ := s.failure(ctx, run, fmt.Errorf("denying the approval left pending on this conversation: %w", err))
		return res
	}
	if err := s.denyReplies(ctx, run, hitl, reason); err != nil {
		res, _ := s.failure(ctx, run, err)
		return res
	}
	run.notices = append(run.notices, fmt.Sprintf("An approval left pending on this conversation "+
		"(`%s`) was denied before your question was sent; it did not run.", p.Gate.Action))
	return nil
}

// maxDenyChain bounds how many gates raised by replies to denials are
// denied in a row, so a backend that keeps asking cannot hold a call.
const maxDenyChain = 5

// denyReplies denies hitl, a gate the reply to a denial raised, and any
// gate the reply to that raises, up to maxDenyChain. A gate still open
// after that is recorded as pending and reported as an error, so the
// caller sends nothing on top of it.
func (s *Server) denyReplies(ctx context.Context, run *queryRun, hitl *kubeq.HitlRequest, reason schema.Reason) error {
	for range maxDenyChain {
		if hitl == nil {
			return nil
		}
		next, _, err := s.decide(ctx, run, approval.NewGate(*hitl, false), approval.Deny(reason))
		run.parts = nil // replies to denials are not the answer
		if err != nil {
			return err
		}
		hitl = next
	}
	if hitl != nil {
		// Denied later, after a backoff: a backend that re-proposes after
		// every denial must not keep the sweeper busy.
		_ = s.record(ctx, run, approval.Record{Gate: approval.NewGate(*hitl, false), Attempts: run.attempts + 1})
		return fmt.Errorf("KubeIntellect asked for another approval after %d denials in a row (`%s`); "+
			"it is left pending and denied before the next question on this conversation, "+
			"so nothing else was sent", maxDenyChain, hitl.Action)
	}
	return nil
}

// denyBlind sends "deny" on a conversation where a gate may be pending,
// unseen. A gate its reply raises is denied too. Only what is known is
// recorded: no approval entry for a gate nobody saw.
func (s *Server) denyBlind(ctx context.Context, run *queryRun) *mcp.CallToolResult {
	hitl, err := s.sendDeny(ctx, run)
	run.parts = nil
	if err != nil {
		if approval.Classify(err) != approval.Delivered {
			_ = s.record(ctx, run, approval.Record{Blind: true, Attempts: run.attempts + 1}) // try again
		}
		res, _ := s.failure(ctx, run, fmt.Errorf("sending a precautionary denial first: %w", err))
		return res
	}
	if err := s.denyReplies(ctx, run, hitl, schema.ReasonPendingResolved); err != nil {
		res, _ := s.failure(ctx, run, err)
		return res
	}
	run.notices = append(run.notices, "kubeq-mcp could not tell whether an approval was pending on this "+
		"conversation, and KubeIntellect would take the question as its answer, so kubeq-mcp sent a "+
		"denial first; if one was pending, it did not run.")
	return nil
}

// record writes rec as run's conversation's record, under its lease. A
// record without a deadline is a failed deny: it is due for a retry after
// a backoff. The user and the client are kept for the deny sent later.
func (s *Server) record(ctx context.Context, run *queryRun, rec approval.Record) error {
	if rec.Expires.IsZero() {
		rec.Expires = time.Now().Add(s.denyRetryAfter(rec.Attempts))
	}
	if rec.User == "" {
		rec.User = run.user
	}
	if rec.ClientName == "" {
		rec.ClientName, rec.ClientVersion = clientInfo(ctx)
		rec.Transport = transportFrom(ctx)
	}
	if run.held == nil {
		return fmt.Errorf("no lease held on conversation %s", run.conv) // cannot happen: every run holds one
	}
	if err := run.held.Set(ctx, &rec); err != nil {
		s.log.Error("could not record a gate that is or may be pending", "conversation", run.conv,
			"approval_id", rec.Gate.ApprovalID, "store", s.ledger.Describe(), "err", err)
		run.notices = append(run.notices, "kubeq-mcp could not record in its approval store ("+
			s.ledger.Describe()+") that an approval is or may be pending on this conversation; "+
			"before the next question it asks KubeIntellect's history instead.")
		return err
	}
	s.startSweeper()
	return nil
}

// denyRetryAfter is when a deny that failed is tried again: the approval
// timeout (at least 1s, at most 30s), doubled for every failed attempt,
// at most 10 minutes.
func (s *Server) denyRetryAfter(attempts int) time.Duration {
	d := min(max(s.cfg.ApprovalTimeout, time.Second), 30*time.Second)
	for range min(attempts, 10) {
		d *= 2
	}
	return min(d, 10*time.Minute)
}

// storeFailure is the result when the approval store cannot be used:
// nothing was sent, and the message says what to check.
func (s *Server) storeFailure(ctx context.Context, run *queryRun, err error) (*mcp.CallToolResult, error) {
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	s.log.Error("approval store unavailable; nothing sent", "conversation", run.conv, "store", s.ledger.Describe(), "err", err)
	return mcp.NewToolResultError(fmt.Sprintf("refused: kubeq-mcp cannot use its approval store (%s), so it "+
		"sent nothing to KubeIntellect on this conversation: no question and no approval. Check that the "+
		"store is running and reachable from kubeq-mcp (--store / KUBEQ_MCP_STORE), then ask again; "+
		"kube_health reports the store's state. (%v)\n\nconversation_id: %s", s.ledger.Describe(), err, run.conv)), nil
}

// backendEra is what the backend's health answer says about its approval
// rules, and when it was learned.
type backendEra struct {
	strict  bool // current KubeIntellect ("arm" in /healthz): only approval phrases approve
	learned time.Time
	failed  time.Time // when /healthz last could not be read
}

// eraRetry is how long a failed health read stands before it is tried
// again; meanwhile the era counts as unknown.
const eraRetry = 30 * time.Second

// defaultEraTTL is Config.EraTTL when unset: how long a health answer
// about the era is trusted.
const defaultEraTTL = 5 * time.Minute

// strictBackend reports whether the backend is known to be a current
// KubeIntellect, which answers a pending gate with anything but an approval
// phrase as a denial. An older one (no "arm" in its health answer) takes
// any message but a denial as an approval; a backend whose health cannot be
// read now counts as older, so every decision that depends on it fails
// safe. The health call runs outside the lock and bounded by ctx.
func (s *Server) strictBackend(ctx context.Context) bool {
	if strict, ok := s.knownEra(); ok {
		return strict
	}
	s.eraMu.Lock()
	failedRecently := !s.era.failed.IsZero() && time.Since(s.era.failed) < eraRetry
	s.eraMu.Unlock()
	if failedRecently {
		return false // unknown, and asking again so soon would only add the wait to every call
	}
	h := s.cfg.Backend.Health(ctx)
	s.eraMu.Lock()
	defer s.eraMu.Unlock()
	if !h.OK {
		if ctx.Err() == nil { // the backend's failure, not the call's own end
			s.era.failed = time.Now()
		}
		return false // unknown
	}
	s.era = backendEra{strict: h.Arm != "", learned: time.Now()}
	if h.Arm == "" {
		s.log.Warn("KubeIntellect looks like an older (V2) server: any reply but a denial approves a pending gate there",
			"version", h.Version)
	}
	return h.Arm != ""
}

// knownEra is the cached answer, when fresh.
func (s *Server) knownEra() (strict, ok bool) {
	s.eraMu.Lock()
	defer s.eraMu.Unlock()
	if s.era.learned.IsZero() || time.Since(s.era.learned) > s.cfg.EraTTL {
		return false, false
	}
	return s.era.strict, true
}

// form is the elicitation for gate. When a confirmation is asked, the
// form says exactly what to type.
func (s *Server) form(gate approval.Gate) mcp.ElicitationParams {
	var b strings.Builder
	b.WriteString("KubeIntellect wants to run a command on your cluster and needs your approval.\n\n")
	risk := strings.ToUpper(gate.Risk)
	if risk == "" {
		risk = "UNKNOWN"
	}
	fmt.Fprintf(&b, "Command: %s\nRisk: %s\n", gate.Action, risk)
	if gate.YAML != "" {
		b.WriteString("YAML to apply:\n" + gate.YAML + "\n")
	}
	fmt.Fprintf(&b, "Approval id: %s\n\n", gate.ApprovalID)
	b.WriteString("Approve: the command runs now, exactly as shown. Deny: it does not run.")
	if gate.Confirm != "" {
		fmt.Fprintf(&b, "\nThis action is high or unknown risk: to approve, type %q in the confirmation field "+
			"(not needed to deny)", gate.Confirm)
		switch {
		case strings.HasSuffix(gate.Confirm, "/all"):
			b.WriteString(" (it changes everything the command selects, not one named object).")
		case strings.Contains(gate.Confirm, " "):
			b.WriteString(" (every target it names, separated by spaces).")
		default:
			b.WriteString(".")
		}
	}
	if s.cfg.Demo {
		b.WriteString("\n\n" + demoLabel)
	}
	return mcp.ElicitationParams{Message: b.String(), RequestedSchema: schema.ApprovalForm(gate.Confirm)}
}
