package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/kubeq-mcp/kubeq-mcp/approval"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
	"github.com/kubeq-mcp/kubeq-mcp/schema"
)

// queryTool is kube_query's definition. Its input has user_id only when
// the operator lets the model choose the user (--allow-user-override).
func queryTool(allowUser bool) mcp.Tool {
	input, err := schema.QueryInputFor(allowUser)
	if err != nil {
		panic(err) // plain data: a programming error
	}
	return newTool("kube_query", "Ask KubeIntellect about the cluster",
		"Ask KubeIntellect, an AI SRE for Kubernetes, a question about the cluster: "+
			"why something is failing, what is running, logs, events, metrics, or a change to make. "+
			"It investigates with kubectl and monitoring, streams its progress, and returns its answer "+
			"with a conversation_id for follow-ups. Changes (delete, scale, patch, drain, ...) are "+
			"proposed by the agent and run only if the human approves them in a form; the result "+
			"lists every approval and its outcome. Investigations can take a minute or more.",
		input,
		schema.MustFor(&schema.QueryOutput{}),
		mcp.WithReadOnlyHintAnnotation(false),
		mcp.WithDestructiveHintAnnotation(true),
		mcp.WithIdempotentHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(true),
		// 2025-11-25 clients may run it as a task (mcp-go's own support,
		// server/task.go); 2026 ones get tasks through the extension.
		mcp.WithTaskSupport(mcp.TaskSupportOptional),
	)
}

func (s *Server) addQueryTool() {
	s.mcp.AddTool(queryTool(s.cfg.AllowUserOverride), s.handleQuery)
}

// queryRun is the state of one kube_query call across its turns (the
// question, then one approve or deny per gate).
type queryRun struct {
	conv      string
	user      string
	started   time.Time
	parts     []string // answer text of each turn
	approvals []schema.Approval
	usage     *schema.Usage
	notices   []string // things the result must say besides the answer
	book      answerBook
	fw        *forwarder
	held      *approval.Held // the conversation's lease, held for the whole call
	attempts  int            // failed denies of the record being reconciled

	callStart time.Time // when the call now driving the run began (the call deadline counts from it)
	stopScope string    // where this call's notifications/cancelled arrive (see cancelReasons)
	requestID string    // this call's JSON-RPC id
	detached  bool      // a turn went on without the call: the lease is the driver's
}

// watchedBy makes run the run of the call req: its deadline, and how a
// stop of it is told from a client that gave up.
func (run *queryRun) watchedBy(ctx context.Context, req mcp.CallToolRequest) {
	run.callStart = time.Now()
	run.stopScope = cancelScope(ctx)
	run.requestID = req.Header.Get(requestIDHeader)
}

// release frees the conversation's lease unless a detached turn took it.
func (run *queryRun) release() {
	if !run.detached && run.held != nil {
		run.held.Release()
	}
}

func (s *Server) handleQuery(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if req.Params.RequestState != "" || len(req.Params.InputResponses) > 0 {
		return s.resumeQuery(ctx, req)
	}
	if s.wantsTask(ctx, req) {
		return s.startTask(ctx, req)
	}
	if req.Params.Task != nil {
		if _, ok := ctx.Value(legacyTaskKey{}).(legacyTask); !ok { // notifierMiddleware sets it
			ctx = context.WithValue(ctx, legacyTaskKey{}, legacyTask{})
		}
	}
	in, err := decodeQueryInput(req.Params.Arguments, s.cfg.AllowUserOverride)
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	if kind := phraseKind(in.Question); kind != "" {
		s.log.Warn("refused a question that is a backend "+kind+" phrase", "question", in.Question)
		return mcp.NewToolResultError(fmt.Sprintf("refused: %q is one of KubeIntellect's %s phrases. "+
			"kube_query never sends approvals or denials on a model's behalf: when the agent proposes a "+
			"change, kubeq-mcp asks the human directly. Ask a question instead.", in.Question, kind)), nil
	}
	run := &queryRun{conv: in.ConversationID, user: in.UserID, started: time.Now()}
	if run.conv == "" {
		run.conv = kubeq.NewConversationID()
	}
	run.watchedBy(ctx, req)
	if t := taskFrom(ctx); t != nil {
		conv := run.conv
		t.Progress(func() string {
			if tr, ok := s.turns.Get(conv); ok {
				return tr.Snapshot().Status
			}
			return ""
		})
	}
	s.live.enter(run.conv)
	defer s.live.leave(run.conv)
	res, err := s.query(ctx, req, in, run)
	s.keep(ctx, run, res)
	return res, err
}

// query runs kube_query's question on run's conversation.
func (s *Server) query(ctx context.Context, req mcp.CallToolRequest, in schema.QueryInput, run *queryRun) (*mcp.CallToolResult, error) {
	held, err := s.acquire(ctx, run)
	if err != nil {
		if lr, ok := asDetached(err); ok {
			return s.stillRunning(ctx, lr, "Your question was not sent: the previous investigation on this "+
				"conversation is still running, and questions on one conversation go one at a time.")
		}
		return s.storeFailure(ctx, run, err)
	}
	run.held = held
	defer run.release()
	p, err := held.Take(ctx)
	if err != nil {
		// Whether a gate is pending cannot be known: send nothing.
		return s.storeFailure(ctx, run, err)
	}
	run.fw = s.newForwarder(ctx, req)
	defer run.fw.close()

	if p != nil && p.Unasked {
		if lr := s.live.get(run.conv); lr != nil && lr.awaits(p.Gate) {
			// A gate raised while no call watched: this call asks the
			// human, and the question waits for the next call.
			return s.adopt(ctx, lr, run, "Your question was not sent: an action on this conversation was "+
				"waiting for approval, and it was asked first. Ask your question again.")
		}
	}
	if p == nil && in.ConversationID != "" && !s.ledgerVouches(ctx, run.conv) {
		p = s.pendingAtBackend(ctx, run.conv)
		if ctx.Err() != nil {
			// Cancelled while checking: the question will not be sent, so
			// neither is a denial meant to go before it (a blind one, from
			// reads the cancellation cut short). Nothing was sent, no
			// record was taken: the next question checks again.
			return nil, ctx.Err()
		}
	}
	s.served.add(run.conv)
	if p != nil {
		if res := s.denyPending(ctx, run, p, schema.ReasonPendingResolved); res != nil {
			return res, nil
		}
	}
	// On a backend not known to be current, a question sent twice could
	// land on a gate the first copy raised, and an older backend takes it
	// as an approval: send it at most once there.
	hitl, err := s.liveTurn(ctx, run, kubeq.Turn{
		Question: in.Question, Conversation: run.conv, Namespace: in.Namespace, User: run.user,
		AtMostOnce: !s.strictBackend(ctx),
	}, questionTurn)
	if lr, ok := asDetached(err); ok {
		return s.detachedResult(ctx, lr)
	}
	if err != nil {
		s.uncertainQuestion(ctx, run, err)
		return s.failure(ctx, run, err)
	}
	return s.gates(ctx, run, hitl)
}

// Argument checks of kube_query, the same the input schema states. They
// are done here rather than by mcp-go's schema validation, whose messages
// print Go structs ("&{Properties:[bogus]}") a model cannot act on.
var (
	conversationIDRe = regexp.MustCompile(schema.ConversationIDPattern)
	namespaceRe      = regexp.MustCompile(schema.NamespacePattern)
	userIDRe         = regexp.MustCompile(schema.UserIDPattern)
)

// plainConversationID accepts the conversation ids kubeq-mcp hands out
// (letters, digits and '-'), a part of what ConversationIDPattern accepts:
// what it refuses still goes to the regexp.
func plainConversationID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' && i > 0:
		default:
			return false
		}
	}
	return true
}

// errUserFixed refuses a user_id the server does not let the model choose.
var errUserFixed = errors.New("invalid arguments: user_id: this server sends its configured user " +
	"(--user-id) to KubeIntellect and does not let the caller choose another; omit user_id " +
	"(the operator can allow it with --allow-user-override)")

// decodeQueryInput checks kube_query's arguments as its input schema states
// them, saying plainly which one is wrong and what is allowed. user_id is
// one of them only when allowUser is set.
func decodeQueryInput(args any, allowUser bool) (schema.QueryInput, error) {
	var in schema.QueryInput
	names := []string{"question", "conversation_id", "namespace"}
	if allowUser {
		names = append(names, "user_id")
	}
	m, err := stringArgs(args, "kube_query", names...)
	if err != nil {
		if !allowUser && hasArg(args, "user_id") {
			return in, errUserFixed
		}
		return in, err
	}
	q, ok := m["question"]
	if !ok {
		return in, errors.New("invalid arguments: question: required")
	}
	in = schema.QueryInput{Question: q, ConversationID: m["conversation_id"], Namespace: m["namespace"], UserID: m["user_id"]}
	// Blank as the backend's strip() sees it, U+001C–U+001F included: on an
	// older backend an empty message approves a pending gate.
	if kubeq.Blank(in.Question) {
		return in, errors.New("invalid arguments: question: must not be empty or only whitespace")
	}
	// Characters, as JSON Schema's maxLength counts them.
	if n := utf8.RuneCountInString(in.Question); n > schema.MaxQuestionLength {
		return in, fmt.Errorf("invalid arguments: question: %d characters is over the limit of %d",
			n, schema.MaxQuestionLength)
	}
	for _, c := range []struct {
		name, value, what string
		re                *regexp.Regexp
	}{
		{"conversation_id", in.ConversationID, "a conversation_id returned by kube_query " +
			"(letters, digits, '.', '_', ':' or '-', at most 128 characters)", conversationIDRe},
		{"namespace", in.Namespace, "a Kubernetes namespace name " +
			"(lowercase letters, digits and '-', at most 63 characters)", namespaceRe},
		{"user_id", in.UserID, "letters, digits, '.', '_', '@', ':' or '-', at most 128 characters", userIDRe},
	} {
		if c.value != "" && !(c.re == conversationIDRe && plainConversationID(c.value)) && // the usual id, without the regexp
			!c.re.MatchString(c.value) { // "" is as good as omitted: models send it
			return in, fmt.Errorf("invalid arguments: %s %q: must be %s", c.name, oneLine(c.value, 80), c.what)
		}
	}
	return in, nil
}

// stringArgs reads a tool's arguments: a JSON object whose members are
// all strings, named exactly as the tool's schema names them
// (additionalProperties is false there, and names are case-sensitive).
func stringArgs(args any, tool string, names ...string) (map[string]string, error) {
	obj, err := rawArgs(args, tool, names...)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(obj))
	for k, v := range obj {
		s, ok := v.(string)
		if !ok {
			return nil, notAString(obj)
		}
		out[k] = s
	}
	return out, nil
}

// notAString names the first argument, in name order, that is not a
// string (in that order so the same call always gets the same error).
func notAString(obj map[string]any) error {
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if _, ok := obj[k].(string); !ok {
			return fmt.Errorf("invalid arguments: %s must be a string, not %s", k, jsonType(obj[k]))
		}
	}
	return nil
}

// rawArgs reads a tool's arguments: a JSON object whose members are named
// exactly as the tool's schema names them (additionalProperties is false
// there, and names are case-sensitive).
func rawArgs(args any, tool string, names ...string) (map[string]any, error) {
	if raw, ok := args.(json.RawMessage); ok {
		args = nil
		if len(bytes.TrimSpace(raw)) > 0 {
			if err := json.Unmarshal(raw, &args); err != nil {
				return nil, fmt.Errorf("invalid arguments: %w", err)
			}
		}
	}
	if args == nil {
		return map[string]any{}, nil
	}
	obj, ok := args.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("invalid arguments: %s takes an object of named arguments, not %s", tool, jsonType(args))
	}
	for k := range obj {
		if !slices.Contains(names, k) {
			return nil, unknownArg(obj, tool, names)
		}
	}
	return obj, nil
}

// unknownArg names the first argument, in name order, that the tool does
// not take, and the ones it does.
func unknownArg(obj map[string]any, tool string, names []string) error {
	takes := tool + " takes no arguments"
	if len(names) > 0 {
		takes = tool + " takes " + strings.Join(names, ", ")
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if !slices.Contains(names, k) {
			return fmt.Errorf("invalid arguments: unknown argument %q; %s", k, takes)
		}
	}
	return nil
}

// hasArg reports whether args, an object, has a member called name.
func hasArg(args any, name string) bool {
	if raw, ok := args.(json.RawMessage); ok {
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			return false
		}
		_, ok := m[name]
		return ok
	}
	m, ok := args.(map[string]any)
	if !ok {
		return false
	}
	_, ok = m[name]
	return ok
}

// jsonType names the JSON type of a decoded value.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64, json.Number, int, int64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// turn streams one backend turn, forwarding progress and collecting the
// answer. It returns the gate the turn ended at, if any. The turn ends
// with ctx: denies run this way (see liveTurn for questions and approvals).
func (s *Server) turn(ctx context.Context, run *queryRun, t kubeq.Turn) (*kubeq.HitlRequest, error) {
	acc := &turnAcc{}
	s.log.Debug("sending a turn to KubeIntellect", "conversation", t.Conversation)
	for ev, err := range s.cfg.Backend.Stream(ctx, t) {
		if err != nil {
			return s.endTurn(ctx, run, acc, err)
		}
		if s.take(run, acc, ev) {
			run.fw.event(ev)
		}
	}
	return s.endTurn(ctx, run, acc, nil)
}

// turnAcc is what a run has gathered of one backend turn, whichever
// watcher read its events (the call, or the driver of a detached turn).
type turnAcc struct {
	answer strings.Builder
	hitl   *kubeq.HitlRequest
	fatal  *kubeq.Error
}

// take adds one backend event to the run, and reports whether it is
// progress to forward (answer text past --max-answer-bytes is not).
func (s *Server) take(run *queryRun, acc *turnAcc, ev kubeq.Event) (forward bool) {
	switch e := ev.(type) {
	case kubeq.Token:
		return s.keepToken(run, &acc.answer, e.Content)
	case kubeq.HitlRequest:
		acc.hitl = &e
		// The backend's prompt tells a chat user to type yes or /approve;
		// through MCP the human answers a form instead, so say that.
		if e.Prompt != "" && strings.HasSuffix(acc.answer.String(), e.Prompt) {
			kept := strings.TrimSuffix(acc.answer.String(), e.Prompt)
			acc.answer.Reset()
			acc.answer.WriteString(kept)
			// Whether a form could be shown is not known yet: the
			// approvals record says what happened.
			acc.answer.WriteString(fmt.Sprintf("\n\n_KubeIntellect asked for approval to run `%s` (risk %s). "+
				"Only the human at the MCP client can approve it; the outcome follows._", e.Action, e.Risk))
		}
	case kubeq.Usage:
		run.addUsage(e)
	case kubeq.Error:
		if e.Fatal {
			acc.fatal = &e
		}
	case kubeq.End:
		if e.DroppedFrames > 0 {
			run.notices = append(run.notices, fmt.Sprintf(
				"This answer may be incomplete: %d unreadable frame(s) from KubeIntellect were skipped.",
				e.DroppedFrames))
		}
	}
	return true
}

// endTurn closes what acc gathered into run: the answer part, and the gate
// the turn ended at. A gate raised in a reply whose stream then broke is
// kept, never dropped: it is denied before the next question, or by the
// sweeper.
func (s *Server) endTurn(ctx context.Context, run *queryRun, acc *turnAcc, err error) (*kubeq.HitlRequest, error) {
	if err != nil {
		if acc.answer.Len() > 0 {
			run.parts = append(run.parts, acc.answer.String())
		}
		if acc.hitl != nil {
			_ = s.record(ctx, run, approval.Record{Gate: approval.NewGate(*acc.hitl, false), Expires: time.Now()})
		}
		return nil, err
	}
	if acc.fatal != nil {
		// The backend says a fatal error voids the partial answer.
		return nil, &kubeq.FatalError{Message: acc.fatal.Message}
	}
	run.parts = append(run.parts, acc.answer.String())
	return acc.hitl, nil
}

func (r *queryRun) addUsage(u kubeq.Usage) {
	if r.usage == nil {
		r.usage = &schema.Usage{}
	}
	r.usage.PromptTokens += u.PromptTokens
	r.usage.CompletionTokens += u.CompletionTokens
	r.usage.TotalTokens += u.TotalTokens
	r.usage.LLMCalls += u.LLMCalls
}

// ranApproved reports whether a change the human approved was sent.
func (r *queryRun) ranApproved() bool {
	for _, a := range r.approvals {
		if a.Decision == schema.Approved {
			return true
		}
	}
	return false
}

func (r *queryRun) answer() string {
	parts := make([]string, 0, len(r.parts)+2)
	for _, p := range r.parts {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(append(parts, r.book.notes()...), "\n\n")
}

// result is the successful end of a call.
func (s *Server) result(run *queryRun) *mcp.CallToolResult {
	approvals := run.approvals
	if approvals == nil {
		approvals = []schema.Approval{}
	}
	out := schema.QueryOutput{
		Answer:         run.answer(),
		ConversationID: run.conv,
		Approvals:      approvals,
		Usage:          run.usage,
		ElapsedMS:      time.Since(run.started).Milliseconds(),
		Status:         schema.StatusComplete,
	}
	return mcp.NewToolResultStructured(out, s.text(run, out.Answer))
}

// text is the human-readable content: the answer, then what became of each
// gate, then notices.
func (s *Server) text(run *queryRun, answer string) string {
	var b strings.Builder
	b.Grow(len(answer) + len("\n\nconversation_id: ") + len(run.conv)) // most answers: no gates, no notices
	if s.cfg.Demo {
		b.WriteString(demoLabel + "\n\n")
	}
	b.WriteString(answer)
	for _, a := range run.approvals {
		b.WriteString("\n\n")
		b.WriteString(approvalSentence(a))
	}
	for _, n := range run.notices {
		b.WriteString("\n\n")
		b.WriteString(n)
	}
	b.WriteString("\n\nconversation_id: ")
	b.WriteString(run.conv)
	return b.String()
}

// failure turns a backend failure into a tool error a person can act on,
// keeping whatever answer arrived before it.
func (s *Server) failure(ctx context.Context, run *queryRun, err error) (*mcp.CallToolResult, error) {
	if ctx.Err() != nil {
		if taskFrom(ctx) != nil && run.ranApproved() {
			// A task stopped after an approved change ran: its client
			// must learn that it ran (runTask completes the task with this).
			run.notices = append(run.notices, "The task was cancelled after the approved change was sent to "+
				"KubeIntellect; the rest of the investigation was stopped.")
			return s.result(run), nil
		}
		// The call was cancelled: nobody is waiting for a result.
		return nil, ctx.Err()
	}
	var msg strings.Builder
	if s.cfg.Demo {
		msg.WriteString(demoLabel + "\n\n")
	}
	msg.WriteString("KubeIntellect request failed: " + err.Error())
	var interrupted *kubeq.InterruptedError
	if errors.As(err, &interrupted) {
		msg.WriteString("\n\nThe answer was cut off; it was not retried, so nothing ran twice.")
	}
	if !s.cfg.Demo && refusedOnLoopback(err, s.cfg.Backend.URL()) {
		msg.WriteString("\n\nNo KubeIntellect at " + s.cfg.Backend.URL() + "; to try kubeq-mcp without one, " +
			"start it with --demo (a simulated backend).")
	}
	if a := run.answer(); a != "" {
		msg.WriteString("\n\nPartial answer received before the failure:\n\n" + a)
	}
	for _, a := range run.approvals {
		msg.WriteString("\n\n" + approvalSentence(a))
	}
	for _, n := range run.notices {
		msg.WriteString("\n\n" + n)
	}
	msg.WriteString("\n\nconversation_id: " + run.conv)
	s.log.Warn("kube_query failed", "conversation", run.conv, "err", err)
	return mcp.NewToolResultError(msg.String()), nil
}

// refusedOnLoopback: the backend's port on this machine refused the
// connection, which almost always means no KubeIntellect runs here (a
// first-time user with the default URL).
func refusedOnLoopback(err error, base string) bool {
	var te *kubeq.TransportError
	if !errors.As(err, &te) || !errors.Is(te.Err, syscall.ECONNREFUSED) {
		return false
	}
	u, perr := url.Parse(base)
	if perr != nil {
		return false
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

func approvalSentence(a schema.Approval) string {
	if a.Decision == schema.Approved {
		return fmt.Sprintf("Approval %s: the human APPROVED `%s` (risk %s); it was sent to KubeIntellect to run.",
			a.ApprovalID, a.Action, a.Risk)
	}
	return fmt.Sprintf("Approval %s: `%s` (risk %s) was DENIED (%s): %s Nothing was run.",
		a.ApprovalID, a.Action, a.Risk, a.Reason, reasonText(a.Reason))
}

func reasonText(r schema.Reason) string {
	switch r {
	case schema.ReasonUserDenied:
		return "the human chose deny."
	case schema.ReasonUserDeclined:
		return "the human declined the approval form."
	case schema.ReasonUserCancelled:
		return "the human cancelled the approval form."
	case schema.ReasonConfirmationMismatch:
		return "the confirmation typed did not match the target's name."
	case schema.ReasonTimedOut:
		return "no answer came before the approval timeout."
	case schema.ReasonElicitationUnsupported:
		return "this MCP client cannot show approval forms, and only a human may approve."
	case schema.ReasonPendingResolved:
		return "it was left pending by an earlier call and was denied before the new question."
	case schema.ReasonRepeatedAfterDenial:
		return "KubeIntellect proposed it right after a denial, and a denial is not asked again."
	default:
		return "the approval could not be completed, and denial is the default."
	}
}

// uncertainQuestion remembers that a question whose fate is unknown (it
// may have reached the backend, which may have stopped at a gate nobody
// saw) may have left a gate open. On a backend not known to be current,
// which would take the next message as its approval, a denial is sent
// before the next question, or at shutdown. A current backend cancels the
// turn when its stream is dropped, and takes any next message but an
// approval phrase as a denial, so there it would only cost a turn.
func (s *Server) uncertainQuestion(ctx context.Context, run *queryRun, err error) {
	if approval.Classify(err) == approval.NotDelivered {
		return
	}
	if strict, known := s.knownEra(); known && strict {
		return
	}
	if r, _ := run.held.Pending(ctx); r != nil {
		return // the turn recorded the gate it raised before it broke
	}
	_ = s.record(ctx, run, approval.Record{Blind: true})
}

// pendingAtBackend asks the backend's history whether a gate is pending on
// a conversation this process holds no record of: one left by another
// replica or by this process before a restart. Any message sent on top of
// it would answer it, and older backends take anything but a denial as an
// approval. When the history cannot tell, the question goes ahead.
func (s *Server) pendingAtBackend(ctx context.Context, conv string) *approval.Record {
	state, gate, err := s.cfg.Backend.GateState(ctx, conv)
	if err != nil {
		s.log.Debug("backend history unavailable", "conversation", conv, "err", err)
	}
	if state == kubeq.GateUnknown && !s.strictBackend(ctx) {
		// An older backend approves a pending gate with any message but a
		// denial, and its history cannot say whether one is pending; a
		// backend whose era is unknown right now counts as older. Deny
		// blind first. Without a gate, the deny is a question of its own,
		// answered and discarded.
		s.log.Info("KubeIntellect is older or unknown and has no history for this conversation: sending a denial first",
			"conversation", conv)
		return &approval.Record{Blind: true}
	}
	if state != kubeq.GatePending {
		return nil
	}
	s.log.Warn("a gate this process did not raise is pending on the conversation; denying it first",
		"conversation", conv, "approval_id", gate.ApprovalID)
	return &approval.Record{Gate: approval.NewGate(gate, false)}
}
