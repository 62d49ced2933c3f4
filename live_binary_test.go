package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// The long-investigation checks on the built binary: over both transports
// and both eras, against the fake backend.

// liveBackend scripts a turn of three pieces of answer, length apart.
func liveBackend(t *testing.T, question string, pieces []string, gap time.Duration) *kubeqtest.Server {
	backend := kubeqtest.NewServer(kubeqtest.WithHeartbeat(500 * time.Millisecond))
	t.Cleanup(backend.Close)
	script := kubeqtest.Script{kubeqtest.Status("investigating", "Gathering evidence…")}
	for i, p := range pieces {
		if i > 0 {
			script = append(script, kubeqtest.Sleep(gap), kubeqtest.Status("investigating", fmt.Sprintf("step %d", i+1)))
		}
		script = append(script, kubeqtest.Tokens(p))
	}
	backend.Handle(question, script)
	return backend
}

// progressCounter counts progress notifications and the bytes of their
// messages, per token.
type progressCounter struct {
	mu    sync.Mutex
	n     int
	bytes int
}

func (p *progressCounter) opts() *sdk.ClientOptions {
	return &sdk.ClientOptions{ProgressNotificationHandler: func(_ context.Context, r *sdk.ProgressNotificationClientRequest) {
		p.mu.Lock()
		p.n++
		p.bytes += len(r.Params.Message)
		p.mu.Unlock()
	}}
}

func liveCall(cs *sdk.ClientSession, tool string, args map[string]any, token string, limit time.Duration) (*sdk.CallToolResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	p := &sdk.CallToolParams{Name: tool, Arguments: args}
	p.SetProgressToken(token)
	return cs.CallTool(ctx, p)
}

func liveOut(t *testing.T, res *sdk.CallToolResult) map[string]any {
	t.Helper()
	require.False(t, res.IsError, "%v", textContent(res))
	m, ok := res.StructuredContent.(map[string]any)
	require.True(t, ok)
	return m
}

// A client whose own request timeout (5 s) is shorter than a 12 s turn:
// the backend request is not cancelled, and kube_answer then returns the
// whole answer, byte-exact.
func TestBinaryTurnOutlivesAClientThatGaveUp(t *testing.T) {
	pieces := []string{"The checkout pods ", "were OOM-killed: ", "raise the memory limit to 512Mi ✅."}
	for _, tr := range []string{"stdio", "http"} {
		for _, era := range []string{"2025-11-25", ""} {
			t.Run(tr+"/"+eraName(era), func(t *testing.T) {
				t.Parallel()
				backend := liveBackend(t, "why is checkout dying?", pieces, 6*time.Second)
				bin := startBinaryWith(t, tr, backend, "--call-deadline", "0")
				cs := bin.connect(era, nil)
				_, err := liveCall(cs, "kube_query", map[string]any{"question": "why is checkout dying?", "conversation_id": "conv-gave-up"}, "q", 5*time.Second)
				require.Error(t, err, "the client gives up after 5 s")
				res, err := liveCall(cs, "kube_answer", map[string]any{"conversation_id": "conv-gave-up", "wait_seconds": 30}, "a", 60*time.Second)
				require.NoError(t, err)
				out := liveOut(t, res)
				assert.Equal(t, "complete", out["status"])
				assert.Equal(t, strings.Join(pieces, ""), out["answer"], "byte-exact")
				require.Len(t, backend.ChatRequests(), 1, "one backend turn, never re-sent")
				require.Eventually(t, func() bool { return backend.ChatRequests()[0].Finished }, 5*time.Second, time.Millisecond)
				assert.False(t, backend.ChatRequests()[0].Disconnected, "the backend request was not cancelled")
			})
		}
	}
}

// --call-deadline 3s against a 10 s turn: the first result has status
// running with the partial answer; kube_answer with wait_seconds gets the
// rest; the first piece is a prefix of the whole, so nothing is lost or
// duplicated.
func TestBinaryCallDeadlineReturnsRunning(t *testing.T) {
	pieces := []string{"Step one found nothing. ", "Step two found the culprit: ", "a bad ConfigMap."}
	for _, tr := range []string{"stdio", "http"} {
		for _, era := range []string{"2025-11-25", ""} {
			t.Run(tr+"/"+eraName(era), func(t *testing.T) {
				t.Parallel()
				backend := liveBackend(t, "investigate", pieces, 5*time.Second)
				bin := startBinaryWith(t, tr, backend, "--call-deadline", "3s")
				var prog progressCounter
				cs := bin.connect(era, prog.opts())
				start := time.Now()
				res, err := liveCall(cs, "kube_query", map[string]any{"question": "investigate"}, "q", 30*time.Second)
				require.NoError(t, err)
				first := liveOut(t, res)
				assert.Less(t, time.Since(start), 5*time.Second, "the call returns at its deadline, before the turn's second piece")
				assert.Equal(t, "running", first["status"])
				assert.Equal(t, pieces[0], first["answer"])
				conv := first["conversation_id"].(string)
				// kube_answer waits at most the call deadline too: a model
				// calls it until the status is complete, and each piece
				// starts with the one before.
				prev, calls := first["answer"].(string), 0
				var whole map[string]any
				for calls = 1; calls <= 10; calls++ {
					res, err = liveCall(cs, "kube_answer", map[string]any{"conversation_id": conv, "wait_seconds": 20}, fmt.Sprintf("a%d", calls), 60*time.Second)
					require.NoError(t, err)
					whole = liveOut(t, res)
					require.True(t, strings.HasPrefix(whole["answer"].(string), prev), "a piece starts with the one before")
					prev = whole["answer"].(string)
					if whole["status"] == "complete" {
						break
					}
				}
				assert.Equal(t, "complete", whole["status"])
				assert.LessOrEqual(t, calls, 4, "each kube_answer waits up to the deadline")
				assert.Equal(t, strings.Join(pieces, ""), whole["answer"])
				assert.True(t, strings.HasPrefix(whole["answer"].(string), first["answer"].(string)))
				reqs := backend.ChatRequests()
				require.Len(t, reqs, 1)
				assert.False(t, reqs[0].Disconnected)
				prog.mu.Lock()
				t.Logf("client got %d progress notifications (%d message bytes) across the two calls; the backend sent %d answer bytes and %d status events",
					prog.n, prog.bytes, len(strings.Join(pieces, "")), len(pieces))
				prog.mu.Unlock()
			})
		}
	}
}

// kube_answer on a conversation nobody ran is a clear error; the result of
// an investigation that outlived its call is kept for --answer-ttl, then
// dropped.
func TestBinaryAnswerUnknownAndExpired(t *testing.T) {
	backend := liveBackend(t, "quick", []string{"All ", "good."}, 1500*time.Millisecond)
	bin := startBinaryWith(t, "stdio", backend, "--answer-ttl", "2s", "--call-deadline", "500ms")
	cs := bin.connect("2025-11-25", nil)
	res, err := liveCall(cs, "kube_answer", map[string]any{"conversation_id": "never-ran"}, "x", 10*time.Second)
	require.NoError(t, err)
	require.True(t, res.IsError)
	assert.Contains(t, textContent(res), "no investigation is kept")

	res, err = liveCall(cs, "kube_query", map[string]any{"question": "quick", "conversation_id": "conv-ttl"}, "q", 10*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "running", liveOut(t, res)["status"])
	require.Eventually(t, func() bool { // each call waits at most the deadline
		res, err := liveCall(cs, "kube_answer", map[string]any{"conversation_id": "conv-ttl", "wait_seconds": 10}, "a", 10*time.Second)
		return err == nil && !res.IsError && liveOut(t, res)["status"] == "complete"
	}, 20*time.Second, 10*time.Millisecond)
	finished := time.Now()
	res, err = liveCall(cs, "kube_answer", map[string]any{"conversation_id": "conv-ttl"}, "a", 10*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "All good.", liveOut(t, res)["answer"], "kept within the TTL")
	require.Eventually(t, func() bool {
		res, err := liveCall(cs, "kube_answer", map[string]any{"conversation_id": "conv-ttl"}, "a", 10*time.Second)
		return err == nil && res.IsError
	}, 20*time.Second, 100*time.Millisecond, "dropped after the TTL")
	assert.GreaterOrEqual(t, time.Since(finished), 2*time.Second-100*time.Millisecond, "not before the TTL")
}

// Past --max-detached turns running with nobody watching, the oldest is
// cancelled (its backend request closed) and that is logged.
func TestBinaryDetachedCap(t *testing.T) {
	backend := kubeqtest.NewServer(kubeqtest.WithHeartbeat(200 * time.Millisecond))
	t.Cleanup(backend.Close)
	backend.Handle("forever", kubeqtest.Script{kubeqtest.Status("investigating", "Looking"), kubeqtest.Sleep(time.Minute)})
	bin := startBinaryWith(t, "http", backend, "--max-detached", "1", "--call-deadline", "1s")
	cs := bin.connect("2025-11-25", nil)
	for _, conv := range []string{"conv-old", "conv-new"} {
		res, err := liveCall(cs, "kube_query", map[string]any{"question": "forever", "conversation_id": conv}, conv, 20*time.Second)
		require.NoError(t, err)
		require.Equal(t, "running", liveOut(t, res)["status"])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sess := map[string]string{}
	for _, r := range backend.ChatRequests() {
		sess[r.SessionHeader] = r.Session
	}
	_, err := backend.WaitForDisconnect(ctx, sess["conv-old"])
	require.NoError(t, err, "the oldest detached turn was cancelled")
	for _, r := range backend.ChatRequests() {
		if r.SessionHeader == "conv-new" {
			assert.False(t, r.Disconnected, "the newest runs on")
		}
	}
	assert.Eventually(t, func() bool {
		return strings.Contains(bin.stderr.String(), "too many turns running with nobody watching")
	},
		5*time.Second, 50*time.Millisecond)
}

// startBinaryWith is startBinaryFor with extra flags.
func startBinaryWith(t *testing.T, transport string, backend *kubeqtest.Server, extra ...string) *binInstance {
	t.Helper()
	b := &binInstance{t: t, transport: transport, stderr: &syncBuffer{},
		audit: filepath.Join(t.TempDir(), "audit.jsonl")}
	b.args = append([]string{"--url", backend.URL, "--approval-timeout", binApprovalTimeout.String(),
		"--audit-log", b.audit, "--log-level", "debug", "--retry-delays", "10ms"}, extra...)
	if transport == "http" {
		_, b.endpoint = startHTTPBinary(t, kubeqMCPBinary(t), b.stderr, b.args...)
	}
	return b
}

func eraName(v string) string {
	if v == "" {
		return "2026-07-28"
	}
	return v
}

func textContent(res *sdk.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}
