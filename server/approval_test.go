package server

// Tests of the approval flow (issue 4) through the go-sdk client, over HTTP
// and stdio, in both protocol eras, against the fake backend.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// The gates the approval tests raise, and what the backend says after them.
const (
	podQuestion   = "delete the crashing pod web-1"
	podCommand    = "kubectl delete pod web-1 -n shop"
	podTarget     = "web-1"
	scaleQuestion = "scale web to 3 replicas"
	scaleCommand  = "kubectl scale deployment web --replicas=3 -n shop"
	applyQuestion = "apply the fixed config map"
	applyCommand  = "kubectl apply -n shop -f -"
	applyYAML     = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  DB_URL: postgres://db:5432/shop\n"
	afterApprove  = "Deleted as approved: the ReplicaSet started a replacement."
	afterDeny     = "Understood: I left it alone."
)

// gate is a gate whose continuations say which way it went.
func gate(command, actionID string) kubeqtest.Gate {
	return kubeqtest.Gate{
		Command: command, ActionID: actionID,
		OnApprove: kubeqtest.Script{kubeqtest.Tokens(afterApprove)},
		OnDeny:    kubeqtest.Script{kubeqtest.Tokens(afterDeny)},
	}
}

// answer is one reply of the simulated human to one approval form.
type answer func(ctx context.Context, h *human, p *sdk.ElicitParams) (*sdk.ElicitResult, error)

func accept(decision, confirm string) answer {
	return func(context.Context, *human, *sdk.ElicitParams) (*sdk.ElicitResult, error) {
		content := map[string]any{"decision": decision, "reason": "tested"}
		if confirm != "" {
			content["confirm"] = confirm
		}
		return &sdk.ElicitResult{Action: "accept", Content: content}, nil
	}
}

func declineForm(context.Context, *human, *sdk.ElicitParams) (*sdk.ElicitResult, error) {
	return &sdk.ElicitResult{Action: "decline"}, nil
}

func cancelForm(context.Context, *human, *sdk.ElicitParams) (*sdk.ElicitResult, error) {
	return &sdk.ElicitResult{Action: "cancel"}, nil
}

var errFormBroke = errors.New("the client's form window crashed")

func failForm(context.Context, *human, *sdk.ElicitParams) (*sdk.ElicitResult, error) {
	return nil, errFormBroke
}

// hangForm never answers: it returns when the request's context ends, the
// test ends, or after a bound.
func hangForm(ctx context.Context, h *human, _ *sdk.ElicitParams) (*sdk.ElicitResult, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-h.stopped:
		return nil, errors.New("test over")
	case <-time.After(10 * time.Second):
		return nil, errors.New("hung for 10s")
	}
}

// lateApprove answers approve after d: too late when d exceeds the approval
// timeout.
func lateApprove(d time.Duration, confirm string) answer {
	return func(ctx context.Context, h *human, p *sdk.ElicitParams) (*sdk.ElicitResult, error) {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return accept("approve", confirm)(ctx, h, p)
	}
}

// human is the person at the client: it answers the forms it is shown with
// its answers in order (the last one repeats) and keeps every form.
type human struct {
	answers []answer
	stopped chan struct{}
	stop    func()

	mu    sync.Mutex
	forms []*sdk.ElicitParams
}

func newHuman(t *testing.T, answers ...answer) *human {
	h := &human{answers: answers, stopped: make(chan struct{})}
	var once sync.Once
	h.stop = func() { once.Do(func() { close(h.stopped) }) }
	t.Cleanup(h.stop)
	return h
}

func (h *human) elicit(ctx context.Context, req *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
	h.mu.Lock()
	h.forms = append(h.forms, req.Params)
	i := len(h.forms) - 1
	h.mu.Unlock()
	if i >= len(h.answers) {
		i = len(h.answers) - 1
	}
	return h.answers[i](ctx, h, req.Params)
}

func (h *human) shown() []*sdk.ElicitParams {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*sdk.ElicitParams(nil), h.forms...)
}

// connectOpts opens a go-sdk client with full control of its options (the
// shared connect cannot turn multi-round-trip handling off). The session
// closes, and hanging forms return, when the test ends.
func (f *fixture) connectOpts(transport, version string, opts *sdk.ClientOptions) *sdk.ClientSession {
	f.t.Helper()
	return f.dial(&sdk.Implementation{Name: "kubeq-mcp-approval-test", Version: "7.1"}, opts, transport, version, &wireLog{})
}

// connectHuman connects a client whose forms h answers (nil h: a client
// without the elicitation capability). mrtr=false turns off the go-sdk's
// automatic handling of input_required, so the test sees the state.
func (f *fixture) connectHuman(transport, version string, h *human, mrtr bool) *sdk.ClientSession {
	opts := &sdk.ClientOptions{}
	if h != nil {
		opts.ElicitationHandler = h.elicit
	}
	if !mrtr {
		opts.MultiRoundTrip = &sdk.MultiRoundTripOptions{Disabled: true}
	}
	cs := f.connectOpts(transport, version, opts)
	if h != nil {
		f.t.Cleanup(h.stop) // runs before the session closes
	}
	return cs
}

// query calls kube_query with a bound and returns the result or the error.
func query(ctx context.Context, cs *sdk.ClientSession, args map[string]any) (*sdk.CallToolResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return cs.CallTool(ctx, &sdk.CallToolParams{Name: "kube_query", Arguments: args})
}

// approvalsOf returns the approvals[] of a successful result.
func approvalsOf(t *testing.T, res *sdk.CallToolResult) []map[string]any {
	t.Helper()
	raw, ok := structured(t, res)["approvals"].([]any)
	require.True(t, ok, "approvals must be a list")
	out := make([]map[string]any, len(raw))
	for i, a := range raw {
		out[i], ok = a.(map[string]any)
		require.True(t, ok)
	}
	return out
}

// wantApproval is one expected approvals[] entry.
func wantApproval(id, action, risk, decision, reason string) map[string]any {
	return map[string]any{"approval_id": id, "action": action, "risk": risk, "decision": decision, "reason": reason}
}

// isApprovalWord reports whether the backend would read msg as an approval
// in strict mode.
func isApprovalWord(msg string) bool {
	return kubeqtest.Approves(kubeqtest.HITLStrict, msg)
}

// assertNeverApproved fails when the backend received any approval or
// auto-approve phrase, auto_approve, or recorded an approved decision.
func assertNeverApproved(t *testing.T, b *kubeqtest.Server) {
	t.Helper()
	for _, r := range b.ChatRequests() {
		assert.Falsef(t, isApprovalWord(r.Message), "the backend received the approval phrase %q", r.Message)
		assert.False(t, r.HasAutoApprove, "auto_approve is never sent")
	}
	for _, p := range append(kubeqtest.ApprovalPhrases(), kubeqtest.AutoApprovePhrases()...) {
		assert.Zerof(t, b.Received(p), "the backend received %q", p)
	}
	for _, d := range b.Decisions() {
		assert.Falsef(t, d.Approved, "the backend approved %s (%q)", d.Command, d.Message)
	}
}

// assertOnlyApprove fails when anything but the exact word "approve" was
// read by the backend as an approval.
func assertOnlyApprove(t *testing.T, b *kubeqtest.Server) {
	t.Helper()
	for _, r := range b.ChatRequests() {
		if r.Message != "approve" {
			assert.Falsef(t, isApprovalWord(r.Message), "the backend received the approval phrase %q", r.Message)
		}
		assert.False(t, r.HasAutoApprove, "auto_approve is never sent")
	}
	for _, d := range b.Decisions() {
		if d.Approved {
			assert.Equal(t, "approve", d.Message)
			assert.False(t, d.Auto)
		}
	}
}

// assertForm checks what the human was shown for a gate.
func assertForm(t *testing.T, p *sdk.ElicitParams, command, risk, id, yaml, confirm string) {
	t.Helper()
	assert.Contains(t, p.Message, command, "the form shows the exact command")
	assert.Contains(t, strings.ToLower(p.Message), "risk: "+risk, "the form shows the risk")
	assert.Contains(t, p.Message, id, "the form shows the approval id")
	if yaml != "" {
		assert.Contains(t, p.Message, yaml, "the form shows the YAML to apply")
	} else {
		assert.NotContains(t, p.Message, "YAML")
	}
	sch, ok := p.RequestedSchema.(map[string]any)
	require.Truef(t, ok, "requestedSchema is %T", p.RequestedSchema)
	props, _ := sch["properties"].(map[string]any)
	req, _ := sch["required"].([]any)
	assert.Contains(t, props, "decision")
	assert.Contains(t, req, "decision")
	if confirm == "" {
		assert.NotContains(t, props, "confirm", "no confirmation field unless high risk")
		assert.NotContains(t, req, "confirm")
		return
	}
	assert.Contains(t, props, "confirm")
	assert.NotContains(t, req, "confirm", "a client that enforces required fields must not make the human type the name to deny")
	assert.Contains(t, p.Message, `"`+confirm+`"`, "the form says what to type")
	assert.Contains(t, p.Message, "not needed to deny", "the form says the name is needed only to approve")
}

// syncBuffer is an io.Writer safe for the concurrent audit writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := strings.TrimSpace(b.buf.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// each runs test once per transport and protocol era.
func each(t *testing.T, test func(t *testing.T, tr, version string)) {
	for _, tr := range transports {
		for _, era := range eras {
			t.Run(tr+"/"+era.name, func(t *testing.T) { test(t, tr, era.version) })
		}
	}
}

func TestApprovalApproveSendsExactlyApprove(t *testing.T) {
	each(t, func(t *testing.T, tr, version string) {
		f := newFixture(t, nil)
		f.backend.Handle(podQuestion, kubeqtest.Script{kubeqtest.Tokens("web-1 is wedged."), gate(podCommand, "act-pod")})
		h := newHuman(t, accept("approve", podTarget))
		cs := f.connectHuman(tr, version, h, true)

		res, err := query(context.Background(), cs, map[string]any{"question": podQuestion})
		require.NoError(t, err)
		require.False(t, res.IsError, textOf(res))
		out := structured(t, res)
		conv, _ := out["conversation_id"].(string)
		require.NotEmpty(t, conv)
		assert.Contains(t, out["answer"], "web-1 is wedged.")
		assert.Contains(t, out["answer"], afterApprove, "the answer holds the post-approval text")
		assert.NotContains(t, out["answer"], afterDeny)
		assert.Equal(t, []map[string]any{wantApproval("act-pod", podCommand, "high", "approved", "user_approved")},
			approvalsOf(t, res))
		assert.Contains(t, textOf(res), "APPROVED")

		// Exactly "approve", on the same X-Session-ID, right after the question.
		assert.Equal(t, []string{podQuestion, "approve"}, f.backend.MessagesFor(conv))
		for _, r := range f.backend.ChatRequests() {
			assert.Equal(t, conv, r.SessionHeader)
		}
		d := f.backend.Decisions()
		require.Len(t, d, 1)
		assert.True(t, d[0].Approved)
		assert.Equal(t, "approve", d[0].Message)
		assert.Equal(t, conv, d[0].Session)
		assertOnlyApprove(t, f.backend)

		forms := h.shown()
		require.Len(t, forms, 1)
		assertForm(t, forms[0], podCommand, "high", "act-pod", "", podTarget)
	})
}

func TestApprovalEveryOtherAnswerDenies(t *testing.T) {
	cases := []struct {
		name   string
		answer answer
		reason string
	}{
		{"decline", declineForm, "user_declined"},
		{"cancel", cancelForm, "user_cancelled"},
		{"deny", accept("deny", podTarget), "user_denied"},
		// The confirmation is not required by the form: a deny without it is
		// a plain deny, an approve without it is not an approval.
		{"deny-without-confirm", accept("deny", ""), "user_denied"},
		{"approve-without-confirm", accept("approve", ""), "confirmation_mismatch"},
		{"wrong-confirm", accept("approve", "web-2"), "confirmation_mismatch"},
		{"confirm-other-case", accept("approve", "WEB-1"), "confirmation_mismatch"},
		{"confirm-approve-word", accept("approve", "approve"), "confirmation_mismatch"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			each(t, func(t *testing.T, tr, version string) {
				f := newFixture(t, nil)
				f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
				h := newHuman(t, c.answer)
				cs := f.connectHuman(tr, version, h, true)

				res, err := query(context.Background(), cs, map[string]any{"question": podQuestion})
				require.NoError(t, err)
				require.False(t, res.IsError, textOf(res))
				out := structured(t, res)
				conv := out["conversation_id"].(string)
				assert.Contains(t, out["answer"], afterDeny, "the backend's reply to the deny is streamed")
				assert.NotContains(t, out["answer"], afterApprove)
				assert.Equal(t, []map[string]any{wantApproval("act-pod", podCommand, "high", "denied", c.reason)},
					approvalsOf(t, res))
				assert.Contains(t, textOf(res), "DENIED")
				assert.Contains(t, textOf(res), "Nothing was run")

				assert.Equal(t, []string{podQuestion, "deny"}, f.backend.MessagesFor(conv))
				d := f.backend.Decisions()
				require.Len(t, d, 1)
				assert.Equal(t, "deny", d[0].Message)
				assertNeverApproved(t, f.backend)
				forms := h.shown()
				require.Len(t, forms, 1)
				assertForm(t, forms[0], podCommand, "high", "act-pod", "", podTarget)
			})
		})
	}
}

// A 2025-era client whose form fails answers the elicitation with an
// error: the gate is denied in the call.
func TestApprovalClientErrorDenies2025(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			f := newFixture(t, nil)
			f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
			cs := f.connectHuman(tr, "2025-11-25", newHuman(t, failForm), true)
			res, err := query(context.Background(), cs, map[string]any{"question": podQuestion})
			require.NoError(t, err)
			require.False(t, res.IsError, textOf(res))
			conv := structured(t, res)["conversation_id"].(string)
			assert.Equal(t, []map[string]any{wantApproval("act-pod", podCommand, "high", "denied", "error")},
				approvalsOf(t, res))
			assert.Equal(t, []string{podQuestion, "deny"}, f.backend.MessagesFor(conv))
			assertNeverApproved(t, f.backend)
		})
	}
}

// A 2026-era client whose form fails never calls back: the call ends in a
// client-side error, the gate stays pending, and the next question on the
// conversation denies it first.
func TestApprovalClientErrorPendingUntilNextQuestion2026(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			f := newFixture(t, nil)
			f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
			cs := f.connectHuman(tr, "", newHuman(t, failForm), true)
			_, err := query(context.Background(), cs, map[string]any{"question": podQuestion})
			require.Error(t, err, "the go-sdk gives up when a form fails")
			conv := f.backend.ChatRequests()[0].Session
			_, pending := f.backend.PendingGate(conv)
			require.True(t, pending)

			res, err := query(context.Background(), cs, map[string]any{"question": "is web-1 healthy now?", "conversation_id": conv})
			require.NoError(t, err)
			require.False(t, res.IsError, textOf(res))
			assert.Equal(t, []string{podQuestion, "deny", "is web-1 healthy now?"}, f.backend.MessagesFor(conv))
			assert.Equal(t, []map[string]any{wantApproval("act-pod", podCommand, "high", "denied", "pending_gate_resolved")},
				approvalsOf(t, res))
			assertNeverApproved(t, f.backend)
		})
	}
}

func TestApprovalConfirmOnlyForHighRisk(t *testing.T) {
	each(t, func(t *testing.T, tr, version string) {
		f := newFixture(t, nil)
		f.backend.Handle(scaleQuestion, kubeqtest.Script{gate(scaleCommand, "act-scale")})
		h := newHuman(t, accept("approve", ""))
		cs := f.connectHuman(tr, version, h, true)
		res, err := query(context.Background(), cs, map[string]any{"question": scaleQuestion})
		require.NoError(t, err)
		require.False(t, res.IsError, textOf(res))
		assert.Equal(t, []map[string]any{wantApproval("act-scale", scaleCommand, "medium", "approved", "user_approved")},
			approvalsOf(t, res))
		forms := h.shown()
		require.Len(t, forms, 1)
		assertForm(t, forms[0], scaleCommand, "medium", "act-scale", "", "")
		assert.Equal(t, 1, f.backend.Received("approve"))
		assertOnlyApprove(t, f.backend)
	})
}

func TestApprovalConfirmHighRiskOff(t *testing.T) {
	each(t, func(t *testing.T, tr, version string) {
		f := newFixture(t, func(c *Config) { c.ConfirmHighRisk = false })
		f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
		h := newHuman(t, accept("approve", ""))
		cs := f.connectHuman(tr, version, h, true)
		res, err := query(context.Background(), cs, map[string]any{"question": podQuestion})
		require.NoError(t, err)
		require.False(t, res.IsError, textOf(res))
		assert.Equal(t, []map[string]any{wantApproval("act-pod", podCommand, "high", "approved", "user_approved")},
			approvalsOf(t, res))
		forms := h.shown()
		require.Len(t, forms, 1)
		assertForm(t, forms[0], podCommand, "high", "act-pod", "", "")
		assert.Equal(t, 1, f.backend.Received("approve"))
	})
}

func TestApprovalFormShowsYAML(t *testing.T) {
	each(t, func(t *testing.T, tr, version string) {
		f := newFixture(t, nil)
		g := gate(applyCommand, "act-apply")
		g.YAML = applyYAML
		f.backend.Handle(applyQuestion, kubeqtest.Script{g})
		h := newHuman(t, declineForm)
		cs := f.connectHuman(tr, version, h, true)
		res, err := query(context.Background(), cs, map[string]any{"question": applyQuestion})
		require.NoError(t, err)
		require.False(t, res.IsError, textOf(res))
		forms := h.shown()
		require.Len(t, forms, 1)
		assertForm(t, forms[0], applyCommand, "medium", "act-apply", applyYAML, "")
		assertNeverApproved(t, f.backend)
	})
}

func TestApprovalNoElicitationCapabilityDenies(t *testing.T) {
	each(t, func(t *testing.T, tr, version string) {
		f := newFixture(t, nil)
		f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
		cs := f.connectHuman(tr, version, nil, true)
		res, err := query(context.Background(), cs, map[string]any{"question": podQuestion})
		require.NoError(t, err)
		require.False(t, res.IsError, textOf(res))
		conv := structured(t, res)["conversation_id"].(string)
		assert.Equal(t, []map[string]any{wantApproval("act-pod", podCommand, "high", "denied", "elicitation_unsupported")},
			approvalsOf(t, res))
		assert.Contains(t, textOf(res), "cannot show approval forms")
		// No form was shown, so the answer must not claim one was, nor keep
		// the backend's chat instruction to type yes.
		assert.NotContains(t, textOf(res), "asked the human")
		assert.NotContains(t, textOf(res), "/approve")
		assert.Equal(t, []string{podQuestion, "deny"}, f.backend.MessagesFor(conv))
		assertNeverApproved(t, f.backend)
	})
}

func TestApprovalTimeoutDenies2025(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.ApprovalTimeout = 150 * time.Millisecond })
			f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
			cs := f.connectHuman(tr, "2025-11-25", newHuman(t, hangForm), true)
			start := time.Now()
			res, err := query(context.Background(), cs, map[string]any{"question": podQuestion})
			require.NoError(t, err)
			require.False(t, res.IsError, textOf(res))
			assert.Less(t, time.Since(start), 3*time.Second, "the approval timeout bounds the wait")
			conv := structured(t, res)["conversation_id"].(string)
			assert.Equal(t, []map[string]any{wantApproval("act-pod", podCommand, "high", "denied", "timed_out")},
				approvalsOf(t, res))
			assert.Equal(t, []string{podQuestion, "deny"}, f.backend.MessagesFor(conv))
			assertNeverApproved(t, f.backend)
		})
	}
}

// A 2026-era client's form that hangs keeps the client from calling back at
// all; nothing reaches the backend until the next question on the
// conversation, which denies the gate first.
func TestApprovalTimeoutHangingClient2026(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.ApprovalTimeout = 100 * time.Millisecond })
			f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
			cs := f.connectHuman(tr, "", newHuman(t, hangForm), true)
			ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
			_, err := query(ctx, cs, map[string]any{"question": podQuestion})
			cancel()
			require.Error(t, err, "the client's call ends with its context")
			conv := f.backend.ChatRequests()[0].Session
			// Past the approval timeout the sweeper denies the gate by itself.
			waitFor(t, "the expired gate's deny", func() bool { return f.backend.Received("deny") == 1 })
			assert.Equal(t, []string{podQuestion, "deny"}, f.backend.MessagesFor(conv))

			res, err := query(context.Background(), cs, map[string]any{"question": "what changed?", "conversation_id": conv})
			require.NoError(t, err)
			require.False(t, res.IsError, textOf(res))
			assert.Equal(t, []string{podQuestion, "deny", "what changed?"}, f.backend.MessagesFor(conv))
			assertNeverApproved(t, f.backend)
		})
	}
}

// An approval that comes after the approval timeout is a denial, in both
// eras: in the 2025 era the server stopped waiting, in the 2026 era the
// state it carries has expired.
func TestApprovalLateApproveIsTimedOut(t *testing.T) {
	each(t, func(t *testing.T, tr, version string) {
		f := newFixture(t, func(c *Config) { c.ApprovalTimeout = 100 * time.Millisecond })
		f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
		cs := f.connectHuman(tr, version, newHuman(t, lateApprove(300*time.Millisecond, podTarget)), true)
		res, err := query(context.Background(), cs, map[string]any{"question": podQuestion})
		require.NoError(t, err)
		require.False(t, res.IsError, textOf(res))
		conv := structured(t, res)["conversation_id"].(string)
		assert.Equal(t, []map[string]any{wantApproval("act-pod", podCommand, "high", "denied", "timed_out")},
			approvalsOf(t, res))
		assert.Equal(t, []string{podQuestion, "deny"}, f.backend.MessagesFor(conv))
		assertNeverApproved(t, f.backend)
	})
}

func TestApprovalTwoGatesInOneCall(t *testing.T) {
	each(t, func(t *testing.T, tr, version string) {
		f := newFixture(t, nil)
		second := gate(scaleCommand, "act-scale")
		second.OnDeny = kubeqtest.Script{kubeqtest.Tokens("Left web at its current size.")}
		f.backend.Handle(podQuestion, kubeqtest.Script{kubeqtest.Gate{
			Command: podCommand, ActionID: "act-pod",
			OnApprove: kubeqtest.Script{kubeqtest.Tokens("web-1 deleted. Now scaling."), second},
		}})
		h := newHuman(t, accept("approve", podTarget), declineForm)
		cs := f.connectHuman(tr, version, h, true)
		res, err := query(context.Background(), cs, map[string]any{"question": podQuestion})
		require.NoError(t, err)
		require.False(t, res.IsError, textOf(res))
		out := structured(t, res)
		conv := out["conversation_id"].(string)
		assert.Equal(t, []map[string]any{
			wantApproval("act-pod", podCommand, "high", "approved", "user_approved"),
			wantApproval("act-scale", scaleCommand, "medium", "denied", "user_declined"),
		}, approvalsOf(t, res))
		assert.Contains(t, out["answer"], "web-1 deleted. Now scaling.")
		assert.Contains(t, out["answer"], "Left web at its current size.")
		assert.Equal(t, []string{podQuestion, "approve", "deny"}, f.backend.MessagesFor(conv))
		d := f.backend.Decisions()
		require.Len(t, d, 2)
		assert.True(t, d[0].Approved)
		assert.False(t, d[1].Approved)
		forms := h.shown()
		require.Len(t, forms, 2)
		assertForm(t, forms[0], podCommand, "high", "act-pod", "", podTarget)
		assertForm(t, forms[1], scaleCommand, "medium", "act-scale", "", "")
		assertOnlyApprove(t, f.backend)
	})
}

func TestPhraseKind(t *testing.T) {
	sets := map[string][]string{
		"approval":     kubeqtest.ApprovalPhrases(),
		"denial":       kubeqtest.DenialPhrases(),
		"auto-approve": kubeqtest.AutoApprovePhrases(),
	}
	for kind, phrases := range sets {
		for _, p := range phrases {
			for _, v := range []string{p, strings.ToUpper(p), "  " + p + "\t", "\n" + p + "\r\n", p + ".", p + "!", p + "?",
				"\u00a0" + p + "\u3000"} {
				assert.Equalf(t, kind, phraseKind(v), "phraseKind(%q)", v)
			}
		}
	}
	// The guard's copy of the backend's sets is the fake's copy.
	assert.ElementsMatch(t, kubeqtest.ApprovalPhrases(), approvalPhrases)
	assert.ElementsMatch(t, kubeqtest.DenialPhrases(), denialPhrases)
	assert.ElementsMatch(t, kubeqtest.AutoApprovePhrases(), autoApprovePhrases)

	for q, want := range map[string]string{
		"/approve": "approval", "/deny": "denial", "APPROVE   ALL": "auto-approve", "yes  do it": "approval",
		"/auto-approve": "auto-approve", "O\u212a": "approval", // Kelvin sign: Python lower() gives "ok" too
		"approve the change to web": "", "yes why is web down?": "", "is it ok": "", "no idea why pods fail": "",
		"what does approve all do?": "", "stop the bleeding: why is checkout failing?": "",
	} {
		assert.Equalf(t, want, phraseKind(q), "phraseKind(%q)", q)
	}
}

// The backend strips with Python's str.strip(), whose whitespace includes
// the ASCII separators U+001C..U+001F that Go's unicode.IsSpace does not:
// "\x1fyes" is "yes" to the backend, so the guard must refuse it too.
func TestPhraseKindPythonWhitespace(t *testing.T) {
	for _, sep := range []string{"\x1c", "\x1d", "\x1e", "\x1f"} {
		assert.Equalf(t, "approval", phraseKind(sep+"yes"), "separator %q", sep)
		assert.Equalf(t, "auto-approve", phraseKind("approve all"+sep), "separator %q", sep)
	}
}

// The phrase guard, on every transport and era, with a gate pending on the
// backend session: nothing at all reaches the backend.
func TestPhraseGuardSendsNothing(t *testing.T) {
	each(t, func(t *testing.T, tr, version string) {
		f := newFixture(t, nil, kubeqtest.WithHITLMode(kubeqtest.HITLLax))
		conv := "0b5e2f8a-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
		f.backend.OpenGate(conv, gate(podCommand, "act-open"))
		cs := f.connectHuman(tr, version, newHuman(t, accept("approve", podTarget)), true)
		for kind, phrases := range map[string][]string{
			"approval":     kubeqtest.ApprovalPhrases(),
			"denial":       kubeqtest.DenialPhrases(),
			"auto-approve": kubeqtest.AutoApprovePhrases(),
		} {
			for _, p := range phrases {
				for _, q := range []string{p, " " + strings.ToUpper(p) + " ", p + "!"} {
					for _, args := range []map[string]any{{"question": q}, {"question": q, "conversation_id": conv}, {"question": q, "namespace": "shop"}} {
						res, err := query(context.Background(), cs, args)
						require.NoError(t, err)
						assert.Truef(t, res.IsError, "%s phrase %q must be refused", kind, q)
						assert.Contains(t, textOf(res), "refused")
					}
				}
			}
		}
		assert.Empty(t, f.backend.ChatRequests(), "the backend received nothing")
		_, pending := f.backend.PendingGate(conv)
		assert.True(t, pending, "the open gate is untouched")
	})
}

var hitlModes = []kubeqtest.HITLMode{kubeqtest.HITLStrict, kubeqtest.HITLLax}

// A 2026-era client that got input_required and never came back leaves the
// gate pending; the next question on the conversation denies it first. In
// lax (V2) mode the question itself would otherwise approve it.
func TestPendingGateDeniedBeforeNextQuestion(t *testing.T) {
	for _, mode := range hitlModes {
		t.Run(mode.String(), func(t *testing.T) {
			for _, tr := range transports {
				t.Run(tr, func(t *testing.T) {
					f := newFixture(t, nil, kubeqtest.WithHITLMode(mode))
					f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
					f.backend.Handle("is checkout healthy?", kubeqtest.Answer("checkout is healthy."))
					cs := f.connectHuman(tr, "", newHuman(t, accept("approve", podTarget)), false)
					leg := askGate(t, f, cs, map[string]any{"question": podQuestion})

					res, err := query(context.Background(), cs, map[string]any{"question": "is checkout healthy?", "conversation_id": leg.conv})
					require.NoError(t, err)
					require.False(t, res.IsError, textOf(res))
					out := structured(t, res)
					assert.Equal(t, []string{podQuestion, "deny", "is checkout healthy?"}, f.backend.MessagesFor(leg.conv),
						"deny reaches the backend before the new question")
					assert.Equal(t, []map[string]any{wantApproval("act-pod", podCommand, "high", "denied", "pending_gate_resolved")},
						approvalsOf(t, res))
					assert.Contains(t, out["answer"], "checkout is healthy.")
					assert.NotContains(t, out["answer"], afterDeny, "the reply to the deny is not the answer to the question")
					assert.Contains(t, textOf(res), "was denied before your question was sent")
					d := f.backend.Decisions()
					require.Len(t, d, 1)
					assert.Equal(t, "deny", d[0].Message)
					assertNeverApproved(t, f.backend)

					// The client coming back late with the old state is refused.
					res, err = answerGate(cs, map[string]any{"question": podQuestion}, leg.state, approveWith(podTarget))
					require.NoError(t, err)
					assert.True(t, res.IsError, textOf(res))
					assertNeverApproved(t, f.backend)
				})
			}
		})
	}
}

// A deny that could not be delivered leaves the gate pending: the next
// question denies it again first.
func TestPendingGateUndeliveredDenyIsRetried(t *testing.T) {
	for _, mode := range hitlModes {
		t.Run(mode.String(), func(t *testing.T) {
			for _, tr := range transports {
				t.Run(tr, func(t *testing.T) {
					f := newFixture(t, nil, kubeqtest.WithHITLMode(mode))
					f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
					breakDeny := func(ctx context.Context, h *human, p *sdk.ElicitParams) (*sdk.ElicitResult, error) {
						f.backend.FailNext(1, kubeqtest.Respond(500))
						return declineForm(ctx, h, p)
					}
					cs := f.connectHuman(tr, "2025-11-25", newHuman(t, breakDeny), true)
					res, err := query(context.Background(), cs, map[string]any{"question": podQuestion})
					require.NoError(t, err)
					require.True(t, res.IsError, "the deny failed: %s", textOf(res))
					assert.Contains(t, textOf(res), "user_declined")
					conv := f.backend.ChatRequests()[0].Session
					_, pending := f.backend.PendingGate(conv)
					require.True(t, pending)

					res, err = query(context.Background(), cs, map[string]any{"question": "what now?", "conversation_id": conv})
					require.NoError(t, err)
					require.False(t, res.IsError, textOf(res))
					assert.Equal(t, []string{podQuestion, "deny", "what now?"}, f.backend.MessagesFor(conv))
					assert.Equal(t, []map[string]any{wantApproval("act-pod", podCommand, "high", "denied", "pending_gate_resolved")},
						approvalsOf(t, res))
					assertNeverApproved(t, f.backend)
				})
			}
		})
	}
}

// When the deny of a pending gate cannot be delivered, the new question is
// not sent at all (in lax mode it would approve the gate).
func TestPendingGateDenyFailsQuestionNotSent(t *testing.T) {
	f := newFixture(t, nil, kubeqtest.WithHITLMode(kubeqtest.HITLLax))
	f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
	cs := f.connectHuman("http", "", newHuman(t, declineForm), false)
	leg := askGate(t, f, cs, map[string]any{"question": podQuestion})

	f.backend.FailNext(1, kubeqtest.Respond(503))
	res, err := query(context.Background(), cs, map[string]any{"question": "scale it up", "conversation_id": leg.conv})
	require.NoError(t, err)
	assert.True(t, res.IsError, textOf(res))
	for _, r := range f.backend.ChatRequests() {
		assert.NotEqual(t, "scale it up", r.Message, "the question must not reach a session with a pending gate")
	}

	res, err = query(context.Background(), cs, map[string]any{"question": "scale it up", "conversation_id": leg.conv})
	require.NoError(t, err)
	require.False(t, res.IsError, textOf(res))
	assert.Equal(t, []string{podQuestion, "deny", "scale it up"}, f.backend.MessagesFor(leg.conv))
	assertNeverApproved(t, f.backend)
}

// Replicas share the state key (KUBEQ_MCP_STATE_KEY) so a 2026-era client
// may land on any of them. A gate left pending through replica A must not
// be approved by a new question that lands on replica B: against a lax
// (V2) backend, any message but a denial approves it.
func TestPendingGateOnAnotherReplica(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	f := newFixture(t, func(c *Config) { c.StateKey = key }, kubeqtest.WithHITLMode(kubeqtest.HITLLax))
	f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
	replica := replicaOf(t, f, key)
	csA := f.connectHuman("http", "", newHuman(t, declineForm), false)
	csB := replica.connectHuman("http", "", newHuman(t, declineForm), false)
	leg := askGate(t, f, csA, map[string]any{"question": podQuestion})

	res, err := query(context.Background(), csB, map[string]any{"question": "why is web slow?", "conversation_id": leg.conv})
	require.NoError(t, err)
	require.False(t, res.IsError, textOf(res))
	assert.Equal(t, []string{podQuestion, "deny", "why is web slow?"}, f.backend.MessagesFor(leg.conv),
		"B finds the gate in the backend's history and denies it before the question")
	assertNeverApproved(t, f.backend)
}

func TestApprovalAuditRecords(t *testing.T) {
	each(t, func(t *testing.T, tr, version string) {
		audit := &syncBuffer{}
		f := newFixture(t, func(c *Config) { c.AuditLog = audit })
		second := gate(scaleCommand, "act-scale")
		f.backend.Handle(podQuestion, kubeqtest.Script{kubeqtest.Gate{
			Command: podCommand, ActionID: "act-pod", OnApprove: kubeqtest.Script{second},
		}})
		cs := f.connectHuman(tr, version, newHuman(t, accept("approve", podTarget), declineForm), true)
		before := time.Now().UTC()
		res, err := query(context.Background(), cs, map[string]any{"question": podQuestion})
		require.NoError(t, err)
		require.False(t, res.IsError, textOf(res))
		conv := structured(t, res)["conversation_id"].(string)

		lines := audit.lines()
		require.Len(t, lines, 2, "one line per decision")
		want := []map[string]any{
			{"approval_id": "act-pod", "action": podCommand, "risk": "high", "decision": "approved", "reason": "user_approved", "comment": "tested", "via": "form"},
			{"approval_id": "act-scale", "action": scaleCommand, "risk": "medium", "decision": "denied", "reason": "user_declined", "via": "form"},
		}
		for i, line := range lines {
			var rec map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
			for k, v := range want[i] {
				assert.Equalf(t, v, rec[k], "%s in %s", k, line)
			}
			assert.Equal(t, conv, rec["conversation_id"])
			assert.Equal(t, "kubeq-mcp-approval-test", rec["client_name"])
			assert.Equal(t, "7.1", rec["client_version"])
			assert.Equal(t, tr, rec["transport"])
			ts, err := time.Parse(time.RFC3339Nano, rec["time"].(string))
			require.NoError(t, err)
			assert.False(t, ts.Before(before.Add(-time.Second)))
			// want's fields plus time, conversation, client name and version,
			// transport, user and its source.
			assert.Equal(t, "mcp-user", rec["user_id"])
			assert.Equal(t, "configured", rec["user_source"])
			assert.Len(t, rec, len(want[i])+7, "the fields of the audit record: %s", line)
		}
	})
}

// A human who answers after the approval timeout, or a client that answers
// the form of a call it already cancelled, must not lose its MCP session:
// the late answer is dropped, the session keeps working.
func TestApprovalLateAnswerKeepsSession2025(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.ApprovalTimeout = 100 * time.Millisecond })
			f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
			answered := make(chan struct{})
			late := func(ctx context.Context, h *human, p *sdk.ElicitParams) (*sdk.ElicitResult, error) {
				defer close(answered)
				return lateApprove(300*time.Millisecond, podTarget)(ctx, h, p)
			}
			cs := f.connectHuman(tr, "2025-11-25", newHuman(t, late, declineForm), true)
			res, err := query(context.Background(), cs, map[string]any{"question": podQuestion})
			require.NoError(t, err)
			assert.Equal(t, "timed_out", approvalsOf(t, res)[0]["reason"])
			<-answered
			// The late answer has reached the server before the next call.
			waitFor(t, "the late answer", func() bool { return f.srv.Stats().ClientAnswers >= 1 })

			res, err = query(context.Background(), cs, map[string]any{"question": "how is web?"})
			require.NoError(t, err, "the session survives a late answer")
			assert.False(t, res.IsError, textOf(res))
			assertNeverApproved(t, f.backend)
		})
	}
}

func TestApprovalCancelledCallKeepsSession2025(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			f := newFixture(t, nil)
			f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			answered := make(chan struct{})
			gone := func(context.Context, *human, *sdk.ElicitParams) (*sdk.ElicitResult, error) {
				defer close(answered)
				cancel() // the user closes the chat while the form is open
				// The form's error comes after the server gave up on it (not
				// waitFor: this runs outside the test's goroutine).
				for deadline := time.Now().Add(5 * time.Second); f.backend.Received("deny") == 0 && time.Now().Before(deadline); {
					time.Sleep(5 * time.Millisecond)
				}
				return nil, errors.New("client gone")
			}
			cs := f.connectHuman(tr, "2025-11-25", newHuman(t, gone), true)
			_, err := query(ctx, cs, map[string]any{"question": podQuestion})
			require.Error(t, err)
			<-answered
			// The server still denies the gate.
			waitFor(t, "the deny", func() bool { return f.backend.Received("deny") == 1 })
			// The late error has reached the server before the next call.
			waitFor(t, "the form's error", func() bool { return f.srv.Stats().ClientAnswers >= 1 })

			res, err := query(context.Background(), cs, map[string]any{"question": "how is web?"})
			require.NoError(t, err, "the session survives a cancelled call")
			assert.False(t, res.IsError, textOf(res))
			assertNeverApproved(t, f.backend)
		})
	}
}

// A client that cancels its call while answering the form with an error:
// the error and the cancellation race to the server. Whatever wins, exactly
// one "deny" reaches the backend before the next question, which is then
// sent as is (a second, spurious "deny" would be read by the backend as a
// question, since nothing is pending any more).
func TestApprovalDenyOnceWhenCallCancelled2025(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			audit := &syncBuffer{}
			f := newFixture(t, func(c *Config) { c.AuditLog = audit })
			f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
			var mu sync.Mutex
			var cancelCall context.CancelFunc
			gone := func(ctx context.Context, h *human, p *sdk.ElicitParams) (*sdk.ElicitResult, error) {
				if p.Message == "" || !strings.Contains(p.Message, podCommand) {
					return declineForm(ctx, h, p)
				}
				mu.Lock()
				cancelCall()
				mu.Unlock()
				return nil, errors.New("client gone")
			}
			cs := f.connectHuman(tr, "2025-11-25", newHuman(t, gone), true)
			const rounds = 15
			for i := range rounds {
				conv := kubeq.NewConversationID()
				ctx, cancel := context.WithCancel(context.Background())
				mu.Lock()
				cancelCall = cancel
				mu.Unlock()
				_, err := query(ctx, cs, map[string]any{"question": podQuestion, "conversation_id": conv})
				cancel()
				require.Error(t, err)
				res, err := query(context.Background(), cs, map[string]any{"question": "how is web?", "conversation_id": conv})
				require.NoError(t, err)
				assert.Falsef(t, res.IsError, "round %d: %s", i, textOf(res))
				assert.Equalf(t, []string{podQuestion, "deny", "how is web?"}, f.backend.MessagesFor(conv), "round %d", i)
			}
			for _, line := range audit.lines() {
				assert.Contains(t, line, `"decision":"denied"`)
			}
			assert.Len(t, f.backend.Decisions(), rounds)
			assert.Empty(t, f.backend.ConcurrentTurnViolations())
			assertNeverApproved(t, f.backend)
		})
	}
}

// The backend keeps a pending gate across its restarts, but not its replay
// history. A gate pending with no history (and unknown to this process)
// must still not be approved by a new question on a lax (V2) backend.
func TestPendingGateWithoutBackendHistory(t *testing.T) {
	for _, mode := range hitlModes {
		t.Run(mode.String(), func(t *testing.T) {
			opts := []kubeqtest.Option{kubeqtest.WithHITLMode(mode)}
			if mode == kubeqtest.HITLLax {
				opts = []kubeqtest.Option{kubeqtest.WithV2()} // lax HITL is what V2 servers do
			}
			f := newFixture(t, nil, opts...)
			conv := kubeq.NewConversationID()
			f.backend.OpenGate(conv, gate(podCommand, "act-restart"))
			cs := f.connectHuman("http", "2025-11-25", newHuman(t, declineForm), true)
			res, err := query(context.Background(), cs, map[string]any{"question": "why is web slow?", "conversation_id": conv})
			require.NoError(t, err)
			t.Log(textOf(res))
			assertNeverApproved(t, f.backend)
			if mode == kubeqtest.HITLLax {
				// The V2 server's history cannot tell: a denial goes first.
				assert.Equal(t, []string{"deny", "why is web slow?"}, f.backend.MessagesFor(conv))
				assert.Contains(t, textOf(res), "sent a denial first")
			}
		})
	}
}
