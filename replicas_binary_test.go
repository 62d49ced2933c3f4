package main

// Replicas of the built binary behind a round-robin proxy, sharing one
// Redis and one state key (issue 10): approvals stay correct across
// replicas and restarts.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/internal/redistest"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// replica is one running kubeq-mcp process.
type replica struct {
	cmd    *exec.Cmd
	target *url.URL // scheme and host
	stderr *syncBuffer
}

// replicaSet runs n replicas with the same flags and proxies /mcp to them:
// each request goes to the next replica in rotation (or a random one, when
// pick is set).
type replicaSet struct {
	t    testing.TB
	args []string

	mu     sync.Mutex
	reps   []*replica
	live   []int // indices in rotation
	next   int
	pick   func(n int) int // random routing; nil: round robin
	served []int           // replica of each tools/call, in order
	routed []routed        // every request's method and replica, in order

	proxy *httptest.Server
}

// replicaStateKey is the key every replica shares.
var replicaStateKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{42}, 32))

func startReplicas(t testing.TB, n int, backend *kubeqtest.Server, store string, extra ...string) *replicaSet {
	t.Helper()
	rs := &replicaSet{t: t, args: append([]string{"--url", backend.URL, "--store", store,
		"--state-key", replicaStateKey, "--retry-delays", "10ms", "--log-level", "debug"}, extra...)}
	rs.reps = make([]*replica, n)
	for i := range n {
		rs.start(i)
	}
	rs.proxy = httptest.NewServer(rs)
	t.Cleanup(rs.proxy.Close)
	return rs
}

// start starts (or restarts) replica i and puts it in rotation.
func (rs *replicaSet) start(i int) {
	rs.t.Helper()
	stderr := &syncBuffer{}
	cmd, endpoint := startHTTPBinary(rs.t, kubeqMCPBinary(rs.t), stderr, rs.args...)
	u, err := url.Parse(endpoint)
	require.NoError(rs.t, err)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.reps[i] = &replica{cmd: cmd, target: &url.URL{Scheme: u.Scheme, Host: u.Host}, stderr: stderr}
	rs.live = append(rs.live, i)
}

// stop takes replica i out of rotation, sends it SIGTERM and waits until
// it has exited, as an orchestrator's rolling restart does.
func (rs *replicaSet) stop(i int) {
	rs.t.Helper()
	rs.only(rs.without(i)...)
	rep := rs.reps[i]
	require.NoError(rs.t, rep.cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- rep.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		rs.t.Fatalf("replica %d did not stop within 30s after SIGTERM", i)
	}
}

func (rs *replicaSet) without(i int) []int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var out []int
	for _, j := range rs.live {
		if j != i {
			out = append(out, j)
		}
	}
	return out
}

// only puts exactly the replicas idx in rotation.
func (rs *replicaSet) only(idx ...int) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.live = append([]int(nil), idx...)
	rs.next = 0
}

func (rs *replicaSet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rs.mu.Lock()
	if len(rs.live) == 0 {
		rs.mu.Unlock()
		http.Error(w, "no replica in rotation", http.StatusServiceUnavailable)
		return
	}
	var i int
	if rs.pick != nil {
		i = rs.live[rs.pick(len(rs.live))]
	} else {
		i = rs.live[rs.next%len(rs.live)]
		rs.next++
	}
	if bytes.Contains(body, []byte(`"tools/call"`)) {
		rs.served = append(rs.served, i)
	}
	var m struct {
		Method string `json:"method"`
	}
	_ = json.Unmarshal(body, &m)
	rs.routed = append(rs.routed, routed{method: m.Method, replica: i})
	target := rs.reps[i].target
	rs.mu.Unlock()
	p := httputil.NewSingleHostReverseProxy(target)
	p.FlushInterval = -1 // SSE
	p.ServeHTTP(w, r)
}

// routed is where the proxy sent one request.
type routed struct {
	method  string
	replica int
}

// routes returns where every request of method went, in order.
func (rs *replicaSet) routes(method string) []int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var out []int
	for _, r := range rs.routed {
		if r.method == method {
			out = append(out, r.replica)
		}
	}
	return out
}

func (rs *replicaSet) servedCalls() []int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]int(nil), rs.served...)
}

// client is a 2026-era client of the proxy that handles input_required by
// hand (it declares elicitation, so the server asks).
func (rs *replicaSet) client() *sdk.ClientSession {
	t := rs.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "replica-human", Version: "1"}, &sdk.ClientOptions{
		ElicitationHandler: func(context.Context, *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
			return nil, io.EOF // never called: multi round trip is handled by hand
		},
		MultiRoundTrip: &sdk.MultiRoundTripOptions{Disabled: true},
	}).Connect(ctx, &sdk.StreamableClientTransport{Endpoint: rs.proxy.URL + "/mcp", MaxRetries: -1},
		&sdk.ClientSessionOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// ask sends a question; answer sends the human's answer to a state.
func ask(cs *sdk.ClientSession, args map[string]any) (*sdk.CallToolResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cs.CallTool(ctx, &sdk.CallToolParams{Name: "kube_query", Arguments: args})
}

func answer(cs *sdk.ClientSession, args map[string]any, state string, content map[string]any, action string) (*sdk.CallToolResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cs.CallTool(ctx, &sdk.CallToolParams{Name: "kube_query", Arguments: args, RequestState: state,
		InputResponses: sdk.InputResponseMap{"approval": &sdk.ElicitResult{Action: action, Content: content}}})
}

func approveWithName(name string) map[string]any {
	return map[string]any{"decision": "approve", "confirm": name}
}

// strays are the approve/deny messages the backend took as new questions:
// no gate was pending when they arrived.
func strays(backend *kubeqtest.Server) []kubeqtest.Request {
	var out []kubeqtest.Request
	for _, r := range backend.ChatRequests() {
		if (r.Message == "approve" || r.Message == "deny") && !r.ResolvedGate {
			out = append(out, r)
		}
	}
	return out
}

// The sequence of issue 10: X raises G1; a new question on the same
// conversation reaches Y, which denies G1 and raises G2; the human's
// approval of G1 then reaches X (and every other replica): refused every
// time, G2 never approved, and no result says approved.
func TestReplicasStaleApprovalRefused(t *testing.T) {
	srv := redistest.Start(t)
	backend := kubeqtest.NewServer(kubeqtest.WithHeartbeat(20 * time.Millisecond))
	t.Cleanup(backend.Close)
	const cmd = "kubectl delete pod web-1 -n shop"
	for q, id := range map[string]string{"delete web-1": "G1", "and web-1 now?": "G2"} {
		backend.Handle(q, kubeqtest.Script{kubeqtest.Gate{Command: cmd, ActionID: id,
			OnApprove: kubeqtest.Script{kubeqtest.Tokens("deleted web-1 for " + id)},
			OnDeny:    kubeqtest.Script{kubeqtest.Tokens("left web-1 for " + id)}}})
	}
	rs := startReplicas(t, 3, backend, srv.URL(0))
	cs := rs.client()

	first := map[string]any{"question": "delete web-1"}
	res, err := ask(cs, first)
	require.NoError(t, err)
	require.True(t, res.NeedsInput(), "G1 is put to the human")
	g1 := res.RequestState
	conv := sessionOf(backend, "delete web-1")

	second := map[string]any{"question": "and web-1 now?", "conversation_id": conv}
	res, err = ask(cs, second)
	require.NoError(t, err)
	require.True(t, res.NeedsInput(), "G2 is put to the human: %v", res.Content)
	g2 := res.RequestState
	served := rs.servedCalls()
	require.Len(t, served, 2)
	assert.NotEqual(t, served[0], served[1], "round robin: the new question reached another replica")
	assert.Equal(t, []string{"delete web-1", "deny", "and web-1 now?"}, backend.MessagesFor(conv))

	// The human approves G1's form; the retry reaches each replica in turn.
	x := served[0]
	for i := 0; i < 3 || !containsInt(rs.servedCalls()[2:], x); i++ {
		require.Less(t, i, 12, "the retry never reached the replica that raised G1")
		res, err = answer(cs, first, g1, approveWithName("web-1"), "accept")
		require.NoError(t, err)
		txt := demoText(res)
		assert.True(t, res.IsError, "a stale approval is refused: %s", txt)
		assert.NotContains(t, strings.ToLower(txt), "approved `", "the result must not say approved")
	}
	assert.Equal(t, 0, backend.Received("approve"), "nothing was approved")
	gi, pending := backend.PendingGate(conv)
	require.True(t, pending, "G2 is still pending, untouched")
	assert.Equal(t, "G2", gi.ActionID)
	assert.Equal(t, []string{"delete web-1", "deny", "and web-1 now?"}, backend.MessagesFor(conv))

	// G2's own form still works, once, through any replica.
	res, err = answer(cs, second, g2, approveWithName("web-1"), "accept")
	require.NoError(t, err)
	require.False(t, res.IsError, demoText(res))
	assert.Contains(t, demoText(res), "deleted web-1 for G2")
	res, err = answer(cs, second, g2, approveWithName("web-1"), "accept")
	require.NoError(t, err)
	assert.True(t, res.IsError, "a state is used once across replicas")
	d := backend.Decisions()
	require.Len(t, d, 2)
	assert.Equal(t, "G1", d[0].ActionID)
	assert.False(t, d[0].Approved)
	assert.Equal(t, "G2", d[1].ActionID)
	assert.True(t, d[1].Approved)
	assert.Empty(t, strays(backend), "every approve or deny answered the gate pending then")
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Rolling restart: a gate raised on X, X stopped with SIGTERM, the human's
// approval retried on Y is applied exactly once; X's shutdown sent nothing
// for that gate.
func TestReplicasRollingRestartKeepsApproval(t *testing.T) {
	srv := redistest.Start(t)
	backend := kubeqtest.NewServer(kubeqtest.WithHeartbeat(20 * time.Millisecond))
	t.Cleanup(backend.Close)
	backend.Handle("delete web-2", kubeqtest.Script{kubeqtest.Gate{Command: "kubectl delete pod web-2 -n shop",
		ActionID: "G", OnApprove: kubeqtest.Script{kubeqtest.Tokens("deleted web-2")},
		OnDeny: kubeqtest.Script{kubeqtest.Tokens("left web-2")}}})
	rs := startReplicas(t, 3, backend, srv.URL(0))
	cs := rs.client()

	rs.only(0) // X
	args := map[string]any{"question": "delete web-2"}
	res, err := ask(cs, args)
	require.NoError(t, err)
	require.True(t, res.NeedsInput())
	state := res.RequestState
	conv := sessionOf(backend, "delete web-2")

	rs.only(1, 2)
	rs.stop(0)
	assert.Equal(t, []string{"delete web-2"}, backend.MessagesFor(conv), "X's shutdown sent nothing")

	res, err = answer(cs, args, state, approveWithName("web-2"), "accept")
	require.NoError(t, err)
	require.False(t, res.IsError, demoText(res))
	assert.Contains(t, demoText(res), "deleted web-2")
	assert.Equal(t, []string{"delete web-2", "approve"}, backend.MessagesFor(conv))
	d := backend.Decisions()
	require.Len(t, d, 1)
	assert.True(t, d[0].Approved, "applied exactly once")
	assert.NotContains(t, rs.reps[0].stderr.String(), "denied an approval left pending")
}

// A store that cannot be reached: nothing is sent, the result says what to
// check, and kube_health reports the store; back again, calls go through.
func TestReplicasStoreDownFailsSafe(t *testing.T) {
	srv := redistest.Start(t, "--requirepass", "St0rePW")
	backend := kubeqtest.NewServer(kubeqtest.WithHeartbeat(20 * time.Millisecond))
	t.Cleanup(backend.Close)
	backend.Handle("what is running?", kubeqtest.Answer("web and api."))
	store := "redis://:St0rePW@" + srv.Addr + "/0"
	rs := startReplicas(t, 1, backend, store)
	cs := rs.client()
	res, err := ask(cs, map[string]any{"question": "what is running?"})
	require.NoError(t, err)
	require.False(t, res.IsError, demoText(res))

	srv.Stop()
	before := len(backend.ChatRequests())
	res, err = ask(cs, map[string]any{"question": "what is running?"})
	require.NoError(t, err)
	txt := demoText(res)
	assert.True(t, res.IsError, txt)
	assert.Contains(t, txt, "approval store")
	assert.Contains(t, txt, "KUBEQ_MCP_STORE")
	assert.NotContains(t, txt, "St0rePW")
	assert.Len(t, backend.ChatRequests(), before, "nothing sent while the store is down")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "kube_health", Arguments: map[string]any{}})
	require.NoError(t, err)
	m := h.StructuredContent.(map[string]any)
	assert.Equal(t, false, m["store_ok"])
	assert.Contains(t, m["store"], srv.Addr)
	assert.NotContains(t, demoText(h), "St0rePW")
	assert.NotContains(t, rs.reps[0].stderr.String(), "St0rePW", "the password is in no log line")
}
