package server

// Tests of the approval flow (issue 4) through the go-sdk client, over HTTP
// and stdio, in both protocol eras, against the fake backend.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
	t := f.t
	t.Helper()
	client := sdk.NewClient(&sdk.Implementation{Name: "kubeq-mcp-approval-test", Version: "7.1"}, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var tr sdk.Transport
	switch transport {
	case "http":
		hs := httptest.NewServer(f.srv.HTTPHandler())
		t.Cleanup(hs.Close)
		tr = &sdk.StreamableClientTransport{Endpoint: hs.URL + MCPPath, MaxRetries: -1}
	case "stdio":
		cr, sw := io.Pipe()
		sr, cw := io.Pipe()
		sctx, scancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = f.srv.ServeStdio(sctx, sr, sw)
		}()
		t.Cleanup(func() {
			scancel()
			_ = cw.Close()
			_ = sw.Close()
			<-done
		})
		tr = &sdk.IOTransport{Reader: cr, Writer: cw}
	default:
		t.Fatalf("unknown transport %q", transport)
	}
	cs, err := client.Connect(ctx, tr, &sdk.ClientSessionOptions{ProtocolVersion: version})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cs.Close() })
	return cs
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
	assert.Contains(t, req, "confirm", "the confirmation is required for high risk")
	assert.Contains(t, p.Message, `"`+confirm+`"`, "the form says what to type")
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
