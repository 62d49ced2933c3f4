package main

// The approval flow through the built binary, over stdio and HTTP, in both
// protocol eras, driven by the go-sdk client against the fake backend.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

const binApprovalTimeout = 500 * time.Millisecond

// binGate is one scripted gate and what the human does with its form.
type binGate struct {
	id, command, target, risk string
	does                      string // approve, wrong-confirm, deny, decline, cancel, late
}

func (g binGate) approves() bool { return g.does == "approve" }

func (g binGate) reason() string {
	return map[string]string{"approve": "user_approved", "wrong-confirm": "confirmation_mismatch",
		"deny": "user_denied", "decline": "user_declined", "cancel": "user_cancelled", "late": "timed_out"}[g.does]
}

func podGate(id, does string) binGate {
	return binGate{id: id, command: "kubectl delete pod " + id + " -n shop", target: id, risk: "high", does: does}
}

func scaleGate(id, does string) binGate {
	return binGate{id: id, command: "kubectl scale deployment " + id + " --replicas=3", risk: "medium", does: does}
}

// binScript chains gates: each approval leads to the next gate.
func binScript(gates ...binGate) kubeqtest.Script {
	next := kubeqtest.Script{kubeqtest.Tokens("All approved steps ran.")}
	for i := len(gates) - 1; i >= 0; i-- {
		g := gates[i]
		next = kubeqtest.Script{kubeqtest.Gate{Command: g.command, ActionID: g.id,
			OnApprove: append(kubeqtest.Script{kubeqtest.Tokens("Ran " + g.id + ". ")}, next...),
			OnDeny:    kubeqtest.Script{kubeqtest.Tokens("Did not run " + g.id + ".")}}}
	}
	return next
}

var binApprovalID = regexp.MustCompile(`Approval id: (\S+)`)

// binHuman answers each form by the gate it names.
type binHuman struct {
	backend *kubeqtest.Server
	mu      sync.Mutex
	gates   map[string]binGate
	forms   map[string]*sdk.ElicitParams
}

func (h *binHuman) plan(gates ...binGate) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, g := range gates {
		h.gates[g.id] = g
	}
}

func (h *binHuman) elicit(ctx context.Context, req *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
	m := binApprovalID.FindStringSubmatch(req.Params.Message)
	if m == nil {
		return nil, errors.New("form without approval id")
	}
	h.mu.Lock()
	g, ok := h.gates[m[1]]
	h.forms[m[1]] = req.Params
	h.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("unplanned gate %s", m[1])
	}
	content := func(decision, confirm string) *sdk.ElicitResult {
		c := map[string]any{"decision": decision}
		if g.target != "" {
			c["confirm"] = confirm
		}
		return &sdk.ElicitResult{Action: "accept", Content: c}
	}
	switch g.does {
	case "approve":
		return content("approve", g.target), nil
	case "wrong-confirm":
		return content("approve", g.target+"-x"), nil
	case "deny":
		return content("deny", g.target), nil
	case "decline":
		return &sdk.ElicitResult{Action: "decline"}, nil
	case "cancel":
		return &sdk.ElicitResult{Action: "cancel"}, nil
	case "late":
		// Approve only once the server gave up (2025 era: its deny reached
		// the backend) or the state expired (2026 era).
		deadline := time.Now().Add(binApprovalTimeout + 300*time.Millisecond)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			if slices.ContainsFunc(h.backend.Decisions(), func(d kubeqtest.Decision) bool { return d.ActionID == g.id }) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		return content("approve", g.target), nil
	}
	return nil, errors.New("unknown behaviour " + g.does)
}

// binInstance is a running kubeq-mcp binary (or, for stdio, the recipe
// for one per client) in front of a fake backend.
type binInstance struct {
	t         *testing.T
	transport string
	args      []string
	endpoint  string // http
	stderr    *syncBuffer
	audit     string
}

func startBinaryFor(t *testing.T, transport string, backend *kubeqtest.Server) *binInstance {
	t.Helper()
	b := &binInstance{t: t, transport: transport, stderr: &syncBuffer{},
		audit: filepath.Join(t.TempDir(), "audit.jsonl")}
	b.args = []string{"--url", backend.URL, "--approval-timeout", binApprovalTimeout.String(),
		"--audit-log", b.audit, "--log-level", "debug", "--retry-delays", "10ms",
		// A client without forms is denied, as with no approval page (the
		// page has its own tests, page_binary_test.go).
		"--approval-browser", "none"}
	if transport == "http" {
		_, b.endpoint = startHTTPBinary(t, kubeqMCPBinary(t), b.stderr, b.args...)
	}
	return b
}

// connect opens a client; over stdio it starts its own process.
func (b *binInstance) connect(version string, opts *sdk.ClientOptions) *sdk.ClientSession {
	t := b.t
	t.Helper()
	var tr sdk.Transport
	if b.transport == "http" {
		tr = &sdk.StreamableClientTransport{Endpoint: b.endpoint, MaxRetries: -1}
	} else {
		cmd := exec.Command(kubeqMCPBinary(t), b.args...)
		cmd.Stderr = b.stderr
		tr = &sdk.CommandTransport{Command: cmd}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "binary-approvals", Version: "2"}, opts).
		Connect(ctx, tr, &sdk.ClientSessionOptions{ProtocolVersion: version})
	require.NoError(t, err, b.stderr.String())
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func binQuery(cs *sdk.ClientSession, args map[string]any) (*sdk.CallToolResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cs.CallTool(ctx, &sdk.CallToolParams{Name: "kube_query", Arguments: args})
}

func binApprovals(t *testing.T, res *sdk.CallToolResult) []map[string]any {
	t.Helper()
	m, ok := res.StructuredContent.(map[string]any)
	require.Truef(t, ok, "no structured content: %v", res.Content)
	var out []map[string]any
	for _, a := range m["approvals"].([]any) {
		out = append(out, a.(map[string]any))
	}
	return out
}

func sessionOf(backend *kubeqtest.Server, question string) string {
	for _, r := range backend.ChatRequests() {
		if r.Question == question {
			return r.Session
		}
	}
	return ""
}

func TestBinaryApprovals(t *testing.T) {
	for _, tr := range []string{"stdio", "http"} {
		for _, version := range []string{"2025-11-25", ""} {
			name := tr + "/" + version
			if version == "" {
				name = tr + "/latest"
			}
			t.Run(name, func(t *testing.T) { runBinaryApprovals(t, tr, version) })
		}
	}
}

func runBinaryApprovals(t *testing.T, tr, version string) {
	backend := kubeqtest.NewServer(kubeqtest.WithHeartbeat(20 * time.Millisecond))
	t.Cleanup(backend.Close)
	bin := startBinaryFor(t, tr, backend)
	h := &binHuman{backend: backend, gates: map[string]binGate{}, forms: map[string]*sdk.ElicitParams{}}
	cs := bin.connect(version, &sdk.ClientOptions{ElicitationHandler: h.elicit})

	// One call per scenario; the second gate of "two" follows its approval.
	scenarios := []struct {
		question string
		gates    []binGate
	}{
		{"approve it", []binGate{podGate("web-1", "approve")}},
		{"decline it", []binGate{podGate("web-2", "decline")}},
		{"cancel it", []binGate{podGate("web-3", "cancel")}},
		{"deny it", []binGate{podGate("web-4", "deny")}},
		{"mistype it", []binGate{podGate("web-5", "wrong-confirm")}},
		{"answer too late", []binGate{podGate("web-6", "late")}},
		{"medium risk", []binGate{scaleGate("api-1", "approve")}},
		{"two gates", []binGate{podGate("web-7", "approve"), scaleGate("api-2", "decline")}},
	}
	var all []binGate
	for _, s := range scenarios {
		backend.Handle(s.question, binScript(s.gates...))
		h.plan(s.gates...)
		all = append(all, s.gates...)
	}
	for _, s := range scenarios {
		res, err := binQuery(cs, map[string]any{"question": s.question})
		require.NoError(t, err, s.question)
		require.False(t, res.IsError, "%s: %v", s.question, res.Content)
		got := binApprovals(t, res)
		require.Lenf(t, got, len(s.gates), "%s", s.question)
		for i, g := range s.gates {
			decision := "denied"
			if g.approves() {
				decision = "approved"
			}
			assert.Equal(t, map[string]any{"approval_id": g.id, "action": g.command, "risk": g.risk,
				"decision": decision, "reason": g.reason()}, got[i], s.question)
		}
		conv := res.StructuredContent.(map[string]any)["conversation_id"].(string)
		want := []string{s.question}
		for _, g := range s.gates {
			if g.approves() {
				want = append(want, "approve")
			} else {
				want = append(want, "deny")
			}
		}
		assert.Equal(t, want, backend.MessagesFor(conv), s.question)
	}

	// Every form showed the command, the risk and the id, and asked for
	// the name only for high risk.
	h.mu.Lock()
	for _, g := range all {
		form, ok := h.forms[g.id]
		if !assert.Truef(t, ok, "no form for %s", g.id) {
			continue
		}
		assert.Contains(t, form.Message, g.command)
		assert.Contains(t, strings.ToLower(form.Message), "risk: "+g.risk)
		assert.Contains(t, form.Message, g.id)
		props := form.RequestedSchema.(map[string]any)["properties"].(map[string]any)
		if g.risk == "high" {
			assert.Contains(t, props, "confirm")
		} else {
			assert.NotContains(t, props, "confirm")
		}
	}
	h.mu.Unlock()

	// A client without elicitation: denied, never approved.
	backend.Handle("no forms here", binScript(podGate("web-8", "approve")))
	plain := bin.connect(version, &sdk.ClientOptions{})
	res, err := binQuery(plain, map[string]any{"question": "no forms here"})
	require.NoError(t, err)
	assert.Equal(t, "elicitation_unsupported", binApprovals(t, res)[0]["reason"])

	// The phrase guard: nothing reaches the backend.
	before := len(backend.ChatRequests())
	for _, p := range []string{"yes", "Approve", "go ahead", "no", "/deny", "approve all", "YES TO ALL", "bypass hitl"} {
		res, err := binQuery(cs, map[string]any{"question": p})
		require.NoError(t, err)
		assert.Truef(t, res.IsError, "%q must be refused", p)
	}
	assert.Len(t, backend.ChatRequests(), before, "the phrase guard sends nothing")

	if version == "" {
		runBinaryStateChecks(t, bin, backend, version)
	}

	// Only the gates a human approved were approved, only with "approve".
	approvedIDs := map[string]bool{"web-1": true, "api-1": true, "web-7": true}
	for _, d := range backend.Decisions() {
		assert.Equalf(t, approvedIDs[d.ActionID], d.Approved, "gate %s", d.ActionID)
		if d.Approved {
			assert.Equal(t, "approve", d.Message)
		} else {
			assert.Equal(t, "deny", d.Message)
		}
	}
	for _, r := range backend.ChatRequests() {
		assert.False(t, r.HasAutoApprove)
		if r.Message != "approve" {
			assert.Falsef(t, kubeqtest.Approves(kubeqtest.HITLStrict, r.Message), "sent %q", r.Message)
		}
	}

	// The audit file: one line per decision, with the client and transport.
	var lines []string
	require.Eventually(t, func() bool {
		raw, _ := os.ReadFile(bin.audit)
		lines = strings.Split(strings.TrimSpace(string(raw)), "\n")
		return len(raw) > 0 && len(lines) >= len(backend.Decisions())
	}, 5*time.Second, 20*time.Millisecond)
	assert.Len(t, lines, len(backend.Decisions()))
	for _, line := range lines {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
		for _, k := range []string{"time", "conversation_id", "approval_id", "action", "risk", "decision", "reason", "client_name", "client_version", "transport"} {
			assert.Containsf(t, rec, k, "audit line %s", line)
		}
		assert.Equal(t, tr, rec["transport"])
		assert.Equal(t, "binary-approvals", rec["client_name"])
	}
	assert.NotContains(t, bin.stderr.String(), "panic")
}

// runBinaryStateChecks drives the 2026-era second leg by hand: a tampered
// state is refused, and a gate left pending is denied before the next
// question.
func runBinaryStateChecks(t *testing.T, bin *binInstance, backend *kubeqtest.Server, version string) {
	h := &binHuman{backend: backend, gates: map[string]binGate{}, forms: map[string]*sdk.ElicitParams{}}
	manual := bin.connect(version, &sdk.ClientOptions{ElicitationHandler: h.elicit,
		MultiRoundTrip: &sdk.MultiRoundTripOptions{Disabled: true}})
	backend.Handle("tamper with it", binScript(podGate("web-9", "approve")))
	res, err := binQuery(manual, map[string]any{"question": "tamper with it"})
	require.NoError(t, err)
	require.True(t, res.NeedsInput(), "2026 era: input_required")
	conv := sessionOf(backend, "tamper with it")
	raw, err := base64.RawURLEncoding.DecodeString(res.RequestState)
	require.NoError(t, err)
	raw[len(raw)/2] ^= 1
	answer := sdk.InputResponseMap{"approval": &sdk.ElicitResult{Action: "accept",
		Content: map[string]any{"decision": "approve", "confirm": "web-9"}}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err = manual.CallTool(ctx, &sdk.CallToolParams{Name: "kube_query",
		Arguments:      map[string]any{"question": "tamper with it"},
		InputResponses: answer, RequestState: base64.RawURLEncoding.EncodeToString(raw)})
	require.NoError(t, err)
	assert.True(t, res.IsError, "a tampered state is refused")
	assert.Equal(t, []string{"tamper with it"}, backend.MessagesFor(conv))

	// Never answered: the next question denies it first.
	res, err = binQuery(manual, map[string]any{"question": "what is running?", "conversation_id": conv})
	require.NoError(t, err)
	require.False(t, res.IsError, "%v", res.Content)
	assert.Equal(t, []string{"tamper with it", "deny", "what is running?"}, backend.MessagesFor(conv))
	assert.Equal(t, "pending_gate_resolved", binApprovals(t, res)[0]["reason"])
}
