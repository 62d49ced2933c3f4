package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

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

const elicitationID = "approval"

// denyTimeout bounds sending a deny and reading the backend's reply.
const denyTimeout = 30 * time.Second

// denyContext is for sending a deny: detached from ctx's cancellation (the
// client that cancels is often the one whose form just failed), bounded by
// denyTimeout, ctx's own deadline when that is sooner, and the end of
// Close's budget.
func (s *Server) denyContext(ctx context.Context) (context.Context, context.CancelFunc) {
	d := s.denyTimeout
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

// verdict is a decision on one gate and why.
type verdict struct {
	approve bool
	reason  schema.Reason
	comment string // what the human typed in the form's reason field, for the audit log
}

// gates resolves the gates a turn ended at, one after another, until a
// turn ends without one.
func (s *Server) gates(ctx context.Context, run *queryRun, hitl *kubeq.HitlRequest) (*mcp.CallToolResult, error) {
	for hitl != nil {
		gate := *hitl
		confirm := s.confirmFor(gate)
		if isModern(ctx) && clientCanElicit(ctx) {
			return s.askLater(ctx, run, gate, confirm)
		}
		v := s.askNow(ctx, gate, confirm)
		var err error
		hitl, err = s.decide(ctx, run, gate, v)
		if err != nil {
			return s.failure(ctx, run, err)
		}
	}
	return s.result(run), nil
}

func isModern(ctx context.Context) bool {
	return mcp.IsModernProtocol(mcpserver.RequestProtocolVersion(ctx))
}

// confirmFor is the name a human must type for gate, or "" when none.
func (s *Server) confirmFor(gate kubeq.HitlRequest) string {
	if !s.cfg.ConfirmHighRisk || !strings.EqualFold(gate.Risk, "high") {
		return ""
	}
	return confirmTarget(gate.Action)
}

// askNow asks a 2025-era client with elicitation/create and waits, at most
// the approval timeout.
func (s *Server) askNow(ctx context.Context, gate kubeq.HitlRequest, confirm string) verdict {
	if !clientCanElicit(ctx) {
		return verdict{reason: schema.ReasonElicitationUnsupported}
	}
	// Progress sent so far must reach the client before the form does.
	if n := notifierFrom(ctx); n != nil {
		n.flush(ctx)
	}
	ectx, cancel := context.WithTimeout(ctx, s.cfg.ApprovalTimeout)
	defer cancel()
	res, err := s.mcp.RequestElicitation(ectx, mcp.ElicitationRequest{
		Request: mcp.Request{Method: string(mcp.MethodElicitationCreate)},
		Params:  s.form(gate, confirm),
	})
	if err != nil {
		if errors.Is(ectx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return verdict{reason: schema.ReasonTimedOut}
		}
		s.log.Warn("approval form failed; denying", "approval_id", gate.ApprovalID, "err", err)
		return verdict{reason: schema.ReasonError}
	}
	return judge(res, confirm)
}

// askLater answers a 2026-era client with input_required and a sealed
// state; the client calls again with the human's answer (resumeQuery).
func (s *Server) askLater(ctx context.Context, run *queryRun, gate kubeq.HitlRequest, confirm string) (*mcp.CallToolResult, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return s.failAndDeny(ctx, run, gate, fmt.Errorf("approval state: %w", err))
	}
	st := approvalState{
		Nonce: hex.EncodeToString(nonce), Conversation: run.conv, User: run.user,
		ApprovalID: gate.ApprovalID, Action: gate.Action, Risk: gate.Risk, Confirm: confirm,
		Parts: run.parts, Approvals: run.approvals, Usage: run.usage, Book: run.book,
		Started: run.started, Expires: time.Now().Add(s.cfg.ApprovalTimeout),
	}
	token, err := s.sealFitting(st)
	if err != nil {
		return s.failAndDeny(ctx, run, gate, err)
	}
	name, version := clientInfo(ctx)
	s.convs.setPending(run.conv, &pendingGate{Nonce: st.Nonce, Gate: gate, User: run.user, Expires: st.Expires,
		ClientName: name, ClientVersion: version, Transport: transportFrom(ctx)})
	s.startSweeper()
	run.fw.note("waiting for a human to approve or deny: " + gate.Action)
	return mcpserver.NewInputRequestBuilder(token).
		Elicit(elicitationID, s.form(gate, confirm)).
		ToolResult(), nil
}

// failAndDeny denies gate when it could not even be asked.
func (s *Server) failAndDeny(ctx context.Context, run *queryRun, gate kubeq.HitlRequest, cause error) (*mcp.CallToolResult, error) {
	s.log.Error("approval could not be asked; denying", "err", cause)
	hitl, err := s.decide(ctx, run, gate, verdict{reason: schema.ReasonError})
	if err != nil {
		return s.failure(ctx, run, err)
	}
	return s.gates(ctx, run, hitl)
}

// resumeQuery is the second leg of a 2026-era approval.
func (s *Server) resumeQuery(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	st, err := s.sealer.open(req.Params.RequestState, time.Now())
	if errors.Is(err, errBadState) {
		s.log.Warn("refused a forged or tampered approval state")
		return mcp.NewToolResultError("refused: the approval state sent back is invalid, so nothing was " +
			"approved and nothing was sent to KubeIntellect. Ask the question again."), nil
	}
	if !s.replays.first(st.Nonce, st.Expires) {
		if s.replays.wasTimedOut(st.Nonce) {
			return s.lateAnswer(st), nil
		}
		s.log.Warn("refused a replayed approval state", "conversation", st.Conversation)
		return mcp.NewToolResultError("refused: this approval was already answered; a state can be used " +
			"once. Nothing was approved."), nil
	}
	release, aerr := s.convs.acquire(ctx, st.Conversation)
	if aerr != nil {
		return nil, aerr
	}
	defer release()
	p := s.convs.takePending(st.Conversation)
	if p != nil && p.Nonce != st.Nonce {
		s.convs.setPending(st.Conversation, p) // a newer gate is pending: leave it alone
		return mcp.NewToolResultError("refused: another approval is pending on this conversation; " +
			"this answer is stale. Nothing was approved."), nil
	}
	v := verdict{reason: schema.ReasonTimedOut}
	if err == nil { // not expired
		v = judge(mcpserver.ElicitationResponse(req.Params.InputResponses, elicitationID), st.Confirm)
	}
	if p == nil && v.approve && !s.stillPendingAtBackend(ctx, st) {
		// Not sent: "approve" could answer a newer gate. Whatever is
		// pending is denied before the next question here, or at shutdown.
		s.convs.setPending(st.Conversation, &pendingGate{Blind: true})
		return mcp.NewToolResultError("refused: kubeq-mcp cannot confirm that this approval is still the one " +
			"pending on KubeIntellect (it was issued by another kubeq-mcp or before a restart, and the " +
			"backend's history does not show it); nothing was approved. Ask the question again."), nil
	}
	run := &queryRun{
		conv: st.Conversation, user: st.User, started: st.Started,
		parts: st.Parts, approvals: st.Approvals, usage: st.Usage, book: st.Book,
	}
	run.fw = s.newForwarder(ctx, req)
	defer run.fw.close()
	gate := kubeq.HitlRequest{ApprovalID: st.ApprovalID, Action: st.Action, Risk: st.Risk}

	hitl, derr := s.decide(ctx, run, gate, v)
	if derr != nil {
		return s.failure(ctx, run, derr)
	}
	return s.gates(ctx, run, hitl)
}

// lateAnswer is the result for a human who answered after the gate was
// denied for running out of time: what the call had, and that denial.
func (s *Server) lateAnswer(st approvalState) *mcp.CallToolResult {
	run := &queryRun{conv: st.Conversation, user: st.User, started: st.Started,
		parts: st.Parts, approvals: st.Approvals, usage: st.Usage, book: st.Book}
	run.approvals = append(run.approvals, schema.Approval{ApprovalID: st.ApprovalID, Action: st.Action,
		Risk: st.Risk, Decision: schema.Denied, Reason: schema.ReasonTimedOut})
	run.notices = append(run.notices, "The answer came after the approval timeout; the action had "+
		"already been denied, and it did not run.")
	return s.result(run)
}

// judge reads the human's answer. Only an accepted form with decision
// approve (and the right confirmation, when one is asked) approves.
func judge(res *mcp.ElicitationResult, confirm string) verdict {
	if res == nil {
		return verdict{reason: schema.ReasonError}
	}
	switch res.Action {
	case mcp.ElicitationResponseActionDecline:
		return verdict{reason: schema.ReasonUserDeclined}
	case mcp.ElicitationResponseActionCancel:
		return verdict{reason: schema.ReasonUserCancelled}
	case mcp.ElicitationResponseActionAccept:
	default:
		return verdict{reason: schema.ReasonError}
	}
	content, ok := res.Content.(map[string]any)
	if !ok {
		return verdict{reason: schema.ReasonError}
	}
	// The form promises the reason is recorded: kept to one line and
	// bounded, it goes to the audit log only.
	comment, _ := content["reason"].(string)
	comment = oneLine(comment, maxAuditComment)
	decision, _ := content["decision"].(string)
	switch decision {
	case schema.FormDeny:
		return verdict{reason: schema.ReasonUserDenied, comment: comment}
	case schema.FormApprove:
		if confirm != "" {
			typed, _ := content["confirm"].(string)
			if strings.TrimSpace(typed) != confirm {
				return verdict{reason: schema.ReasonConfirmationMismatch, comment: comment}
			}
		}
		return verdict{approve: true, reason: schema.ReasonUserApproved, comment: comment}
	default:
		return verdict{reason: schema.ReasonError, comment: comment}
	}
}

// decide records the verdict on gate, sends exactly "approve" or "deny" on
// the same conversation and streams the backend's reply, which may end at
// another gate.
func (s *Server) decide(ctx context.Context, run *queryRun, gate kubeq.HitlRequest, v verdict) (*kubeq.HitlRequest, error) {
	a := schema.Approval{ApprovalID: gate.ApprovalID, Action: gate.Action, Risk: gate.Risk,
		Decision: schema.Denied, Reason: v.reason}
	answer := schema.FormDeny
	if v.approve {
		a.Decision, answer = schema.Approved, schema.FormApprove
	}
	run.approvals = append(run.approvals, a)
	s.audit.record(ctx, run.conv, run.user, a, v.comment)
	run.fw.note(strings.TrimSuffix(approvalSentence(a), " Nothing was run.") + " ")

	tctx := ctx
	if !v.approve {
		// A deny must arrive even when the call is cancelled meanwhile (the
		// client that cancels is often the one whose form just failed): it
		// runs detached from the call, bounded on its own.
		var cancel context.CancelFunc
		tctx, cancel = s.denyContext(ctx)
		defer cancel()
	}
	// "approve" is sent at most once: sent again after a lost answer, it
	// would answer whatever gate the first one led to.
	hitl, err := s.turn(tctx, run, kubeq.Turn{Question: answer, Conversation: run.conv, User: run.user,
		AtMostOnce: v.approve})
	switch {
	case err == nil:
	case !v.approve && !surelyDelivered(err):
		// The deny may not have arrived: deny again before the next question.
		s.convs.setPending(run.conv, &pendingGate{Gate: gate})
	case v.approve:
		s.approveFailed(ctx, run, gate, err)
	}
	return hitl, err
}

// surelyDelivered reports whether err came after the backend had the
// message (its reply broke off or reported a failure). Anything else may
// mean it never arrived.
func surelyDelivered(err error) bool {
	var ie *kubeq.InterruptedError
	var fe *kubeq.FatalError
	return errors.As(err, &ie) || errors.As(err, &fe)
}

// surelyUndelivered reports whether err proves the message never reached
// the backend's agent: the backend refused it with a status of its own, or
// it was never written. A 502, 503 or 504 can come from a gateway that
// passed the request on before it gave up, so those prove nothing.
func surelyUndelivered(err error) bool {
	var st *kubeq.StatusError
	var tr *kubeq.TransportError
	switch {
	case errors.As(err, &st):
		return st.StatusCode < 500 || st.StatusCode == http.StatusInternalServerError
	case errors.As(err, &tr):
		return !tr.MaybeDelivered
	}
	return false
}

// approveFailed keeps a gate whose approval did not get through from
// staying open. When the approve surely never arrived, the gate is still
// pending: deny it now, or before the next question if that fails too.
// When it may have arrived, whatever is pending is denied (blind) before
// the next question.
func (s *Server) approveFailed(ctx context.Context, run *queryRun, gate kubeq.HitlRequest, cause error) {
	if !surelyUndelivered(cause) {
		if !surelyDelivered(cause) {
			s.convs.setPending(run.conv, &pendingGate{Blind: true})
			run.notices = append(run.notices, fmt.Sprintf("The approval of `%s` may not have reached "+
				"KubeIntellect; whatever is pending on this conversation is denied before the next question "+
				"(or when kubeq-mcp stops).", gate.Action))
		}
		return
	}
	// The human approved, but the action will not run: the record says so,
	// and the audit log gets the denial as a line of its own.
	if n := len(run.approvals); n > 0 && run.approvals[n-1].ApprovalID == gate.ApprovalID {
		a := run.approvals[n-1]
		a.Decision, a.Reason = schema.Denied, schema.ReasonError
		run.approvals[n-1] = a
		s.audit.record(ctx, run.conv, run.user, a, "")
	}
	parts := run.parts
	hitl, err := s.sendDeny(ctx, run)
	run.parts = parts // the deny's reply is not part of the answer
	if err != nil {
		if !surelyDelivered(err) {
			s.convs.setPending(run.conv, &pendingGate{Gate: gate})
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
// else is said on the conversation. It returns a result only when the deny
// could not be delivered, in which case the new question must not be sent.
func (s *Server) denyPending(ctx context.Context, run *queryRun, p *pendingGate, reason schema.Reason) *mcp.CallToolResult {
	if p.Blind {
		return s.denyBlind(ctx, run)
	}
	if p.Nonce != "" {
		// A client coming back later with this gate's state finds it answered.
		if reason == schema.ReasonTimedOut {
			s.replays.expire(p.Nonce, p.Expires)
		} else {
			s.replays.first(p.Nonce, p.Expires)
		}
	}
	hitl, err := s.decide(ctx, run, p.Gate, verdict{reason: reason})
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
		next, err := s.decide(ctx, run, *hitl, verdict{reason: reason})
		run.parts = nil // replies to denials are not the answer
		if err != nil {
			return err
		}
		hitl = next
	}
	if hitl != nil {
		s.convs.setPending(run.conv, &pendingGate{Gate: *hitl})
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
		if !surelyDelivered(err) {
			s.convs.setPending(run.conv, &pendingGate{Blind: true}) // try again next time
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

// eraTTL is how long a health answer about the era is trusted: a backend
// can be replaced by an older one while kubeq-mcp runs.
const eraTTL = 5 * time.Minute

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
	if s.era.learned.IsZero() || time.Since(s.era.learned) > eraTTL {
		return false, false
	}
	return s.era.strict, true
}

// form is the elicitation for gate.
func (s *Server) form(gate kubeq.HitlRequest, confirm string) mcp.ElicitationParams {
	var b strings.Builder
	b.WriteString("KubeIntellect wants to run a command on your cluster and needs your approval.\n\n")
	fmt.Fprintf(&b, "Command: %s\nRisk: %s\n", gate.Action, strings.ToUpper(gate.Risk))
	if gate.YAML != "" {
		b.WriteString("YAML to apply:\n" + gate.YAML + "\n")
	}
	fmt.Fprintf(&b, "Approval id: %s\n\n", gate.ApprovalID)
	b.WriteString("Approve: the command runs now, exactly as shown. Deny: it does not run.")
	if confirm != "" {
		fmt.Fprintf(&b, "\nThis is a high-risk action: to approve, type %q in the confirmation field "+
			"(not needed to deny).", confirm)
	}
	if s.cfg.Demo {
		b.WriteString("\n\n" + demoLabel)
	}
	return mcp.ElicitationParams{Message: b.String(), RequestedSchema: schema.ApprovalForm(confirm)}
}

// stillPendingAtBackend checks, for a state this process has no record of
// (it was issued by another replica or before a restart), that the
// backend's history shows that same gate pending: sending "approve" when it
// does not would start a new turn, or answer a newer gate.
func (s *Server) stillPendingAtBackend(ctx context.Context, st approvalState) bool {
	state, gate, err := s.cfg.Backend.GateState(ctx, st.Conversation)
	if err != nil {
		s.log.Debug("backend history unavailable", "conversation", st.Conversation, "err", err)
	}
	switch state {
	case kubeq.GatePending:
		if gate.ApprovalID != "" {
			return gate.ApprovalID == st.ApprovalID
		}
		return gate.Action == st.Action
	default:
		// Without history the pending gate may be a newer one (the agent
		// went on after this one was approved elsewhere), and "approve"
		// would answer it: refuse. Nothing is sent, so the gate, if it is
		// still this one, is denied before the next question.
		return false
	}
}
