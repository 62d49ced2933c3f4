package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// Tests of claims the README makes about kube_query results and progress,
// each named after the claim. They go through the real MCP client and the
// fake backend, like the rest of the package.

// README: a failure result carries "any partial answer that arrived before
// a stream broke", and says the turn was not retried.
func TestFailureResultKeepsThePartialAnswer(t *testing.T) {
	f := newFixture(t, nil)
	f.backend.Handle("why is checkout down?", kubeqtest.Script{
		kubeqtest.Tokens("The checkout pod is crash-looping because "),
		kubeqtest.CutMidFrame(),
	})
	cs, _ := f.connect("stdio", clientOpts{version: "2025-11-25"})
	res := call(t, cs, map[string]any{"question": "why is checkout down?"})
	require.True(t, res.IsError, "a broken stream is a failure")
	text := textOf(res)
	assert.Contains(t, text, "Partial answer received before the failure:\n\nThe checkout pod is crash-looping because ")
	assert.Contains(t, text, "The answer was cut off; it was not retried, so nothing ran twice.")
	assert.NotContains(t, text, "this frame never ends", "the half frame is not part of the answer")
	assert.Len(t, f.backend.ChatRequests(), 1, "not retried")
}

// README (kubeq-mcp reads in-band errors the way the backend's API
// reference says): a fatal error voids the partial answer and fails the
// call; a recoverable one is shown as a "backend error:" progress line and
// the answer stands; skipped frames are noted in the result.
func TestInBandErrorsAtTheServer(t *testing.T) {
	t.Run("fatal voids the partial answer", func(t *testing.T) {
		f := newFixture(t, nil)
		f.backend.Handle("diagnose", kubeqtest.Script{
			kubeqtest.Tokens("half a diagnosis that must not be shown"),
			kubeqtest.Fatal("the model provider went away"),
		})
		cs, prog := f.connect("http", clientOpts{version: "2025-11-25"})
		res := call(t, cs, map[string]any{"question": "diagnose"})
		require.True(t, res.IsError)
		text := textOf(res)
		assert.Contains(t, text, "the model provider went away")
		assert.NotContains(t, text, "half a diagnosis", "a fatal error voids the partial answer")
		assert.NotContains(t, text, "Partial answer")
		assert.Contains(t, waitFor1(t, prog, "backend error: "), "backend error: the model provider went away")
	})

	t.Run("approve turn that ends fatal", func(t *testing.T) {
		f := newFixture(t, nil)
		f.backend.Handle("scale web", kubeqtest.Script{kubeqtest.Gate{
			Command: "kubectl scale deployment web --replicas=3 -n shop", Risk: "medium", ActionID: "act-scale",
			OnApprove: kubeqtest.Script{
				kubeqtest.Tokens("Scaling web: half done, "),
				kubeqtest.Fatal("kubectl timed out"),
			},
		}})
		cs := f.dial(&sdk.Implementation{Name: "claims", Version: "1"}, &sdk.ClientOptions{
			ElicitationHandler: formAnswer(map[string]any{"decision": "approve"}),
		}, "stdio", "2025-11-25", &wireLog{})
		res := call(t, cs, map[string]any{"question": "scale web"})
		require.True(t, res.IsError, "a fatal error after the approval fails the call")
		text := textOf(res)
		assert.Contains(t, text, "kubectl timed out")
		assert.NotContains(t, text, "half done", "the approve turn's partial answer is voided too")
		assert.Contains(t, text, "the human APPROVED `kubectl scale deployment web --replicas=3 -n shop`",
			"the approval that was sent is still reported")
		assert.Equal(t, 1, f.backend.Received("approve"))
	})

	t.Run("recoverable error is a progress line", func(t *testing.T) {
		f := newFixture(t, nil)
		// A ki_event error without fatal: the agent recovered (API
		// reference: "without it ... the answer that follows is still valid").
		f.backend.Handle("diagnose", kubeqtest.Script{
			kubeqtest.Raw([]byte(`data: {"object":"chat.completion.chunk","model":"kubeintellect","ki_event":{"type":"error","message":"loki query failed:\n  connection refused"},"choices":[]}` + "\n\n")),
			kubeqtest.Tokens("From the events alone: the pod is OOM-killed."),
		})
		cs, prog := f.connect("stdio", clientOpts{version: "2025-11-25"})
		res := call(t, cs, map[string]any{"question": "diagnose"})
		require.False(t, res.IsError, textOf(res))
		assert.Equal(t, "From the events alone: the pod is OOM-killed.", structured(t, res)["answer"])
		assert.Contains(t, waitFor1(t, prog, "backend error: "), "backend error: loki query failed: connection refused",
			"folded onto one line")
	})

	t.Run("dropped frames are noted", func(t *testing.T) {
		f := newFixture(t, nil)
		f.backend.Handle("diagnose", kubeqtest.Script{
			kubeqtest.Tokens("The answer "),
			kubeqtest.Malformed(),
			kubeqtest.Tokens("goes on."),
		})
		cs, _ := f.connect("http", clientOpts{version: "2026-07-28"})
		res := call(t, cs, map[string]any{"question": "diagnose"})
		require.False(t, res.IsError, textOf(res))
		assert.Equal(t, "The answer goes on.", structured(t, res)["answer"])
		assert.Contains(t, textOf(res), "This answer may be incomplete: 1 unreadable frame(s) from KubeIntellect were skipped.")
	})
}

// README: a tool result's progress line is "run_kubectl → output", the whole
// output folded onto one line and cut at 200 characters with "…".
func TestToolResultProgressIsFoldedAndCut(t *testing.T) {
	f := newFixture(t, nil)
	var out strings.Builder
	out.WriteString("NAME                      READY   STATUS\n")
	for i := range 20 {
		out.WriteString("web-" + strings.Repeat("x", 5) + string(rune('a'+i)) + "   1/1     Running\n")
	}
	f.backend.Handle("list pods", kubeqtest.Script{
		kubeqtest.ToolCall("run_kubectl", "kubectl get pods -n shop"),
		kubeqtest.ToolResult("run_kubectl", out.String()),
		kubeqtest.Tokens("20 pods."),
	})
	cs, prog := f.connect("stdio", clientOpts{version: "2025-11-25"})
	res := call(t, cs, map[string]any{"question": "list pods"})
	require.False(t, res.IsError, textOf(res))
	line := waitFor1(t, prog, "run_kubectl → ")
	folded := strings.Join(strings.Fields(out.String()), " ")
	require.Greater(t, len([]rune(folded)), 200)
	assert.Equal(t, "run_kubectl → "+string([]rune(folded)[:200])+"…", line)
	assert.NotContains(t, line, "\n")
}

// README: a size-triggered token flush comes at most once per 20 ms unless
// 64 KiB have gathered.
func TestTokenFlushSpacingAndSizeCap(t *testing.T) {
	t.Run("64 KiB flushes whatever the settings", func(t *testing.T) {
		// Neither the size setting nor the interval can flush here: only
		// the 64 KiB cap can, while the backend holds the turn open.
		f := newFixture(t, func(c *Config) {
			c.CoalesceBytes = 1 << 30
			c.CoalesceInterval = time.Hour
		}, kubeqtest.WithTokenChunkSize(4096))
		release := make(chan struct{})
		big := strings.Repeat("0123456789abcdef", 3*(64<<10)/16) // 192 KiB
		f.backend.Handle("big", kubeqtest.Script{kubeqtest.Tokens(big), kubeqtest.WaitFor(release), kubeqtest.Tokens("end")})
		cs, prog := f.connect("http", clientOpts{version: "2025-11-25"})
		done := make(chan *sdk.CallToolResult, 1)
		go func() { done <- call(t, cs, map[string]any{"question": "big"}) }()
		msgs := waitMessages(t, prog, 2)
		close(release)
		res := <-done
		require.False(t, res.IsError, textOf(res))
		require.GreaterOrEqual(t, len(msgs), 2, "64 KiB must flush before the turn ends")
		for _, m := range msgs {
			assert.GreaterOrEqual(t, len(m), 64<<10, "a flush before the end holds at least 64 KiB")
		}
	})

	t.Run("size flushes are spaced by 20 ms", func(t *testing.T) {
		f := newFixture(t, func(c *Config) {
			c.CoalesceBytes = 1 // every token is "enough"
			c.CoalesceInterval = time.Hour
		}, kubeqtest.WithTokenChunkSize(1))
		const n = 2000
		f.backend.Handle("burst", kubeqtest.Script{kubeqtest.Tokens(strings.Repeat("t", n))})
		cs, prog := f.connect("stdio", clientOpts{version: "2025-11-25"})
		start := time.Now()
		res := call(t, cs, map[string]any{"question": "burst"})
		elapsed := time.Since(start)
		require.False(t, res.IsError, textOf(res))
		msgs := waitMessages(t, prog, 1)
		assert.Equal(t, strings.Repeat("t", n), strings.Join(msgs, ""))
		// One flush per 20 ms over the whole call, the first after 20 ms,
		// plus the final flush at the end.
		assert.LessOrEqual(t, len(msgs), int(elapsed/(20*time.Millisecond))+1,
			"%d messages in %s", len(msgs), elapsed)
	})
}

// README: the audit record carries the human's reason as `comment`, folded
// onto one line and at most 500 characters, and the reason is never sent
// to the backend or to the model. The form caps the field at 500 too, and
// the go-sdk client enforces it, so the answer is written by hand here: a
// client that does not check the schema must not get a longer one through.
func TestAuditCommentStaysInTheAuditLog(t *testing.T) {
	audit := &syncBuffer{}
	f := newFixture(t, func(c *Config) { c.AuditLog = audit })
	f.backend.Handle("scale web", kubeqtest.Script{kubeqtest.Gate{
		Command: "kubectl scale deployment web --replicas=3 -n shop", Risk: "medium", ActionID: "act-scale",
		OnApprove: kubeqtest.Script{kubeqtest.Tokens("Scaled.")},
	}})
	secret := "SECRET-REASON"
	reason := secret + " line one\n\tline two   " + strings.Repeat("é", 600)
	result := rawStdioCall(t, f, "scale web", map[string]any{"decision": "approve", "reason": reason})
	assert.NotContains(t, string(result), `"isError":true`, "%s", result)

	lines := audit.lines()
	require.Len(t, lines, 1)
	var rec map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &rec))
	assert.Equal(t, "approved", rec["decision"], lines[0])
	comment, _ := rec["comment"].(string)
	folded := []rune(strings.Join(strings.Fields(reason), " "))
	assert.Equal(t, string(folded[:500])+"…", comment, "folded and cut at 500 characters")

	assert.NotContains(t, string(result), secret, "the reason never reaches the model")
	for _, r := range f.backend.ChatRequests() {
		assert.NotContains(t, r.Message, secret, "the reason never reaches the backend")
	}
}

// rawStdioCall speaks 2025-11-25 JSON-RPC over the stdio transport by hand:
// it calls kube_query with question, accepts every approval form with
// content (unchecked against the form's schema), answers pings, and
// returns the raw tools/call result.
func rawStdioCall(t *testing.T, f *fixture, question string, content map[string]any) json.RawMessage {
	t.Helper()
	cr, sw := io.Pipe()
	sr, cw := io.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.srv.ServeStdio(ctx, sr, sw)
	}()
	t.Cleanup(func() { cancel(); _ = cw.Close(); _ = sw.Close(); <-done })
	send := func(v any) {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		_, err = cw.Write(append(b, '\n'))
		require.NoError(t, err)
	}
	send(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": map[string]any{
		"protocolVersion": "2025-11-25", "capabilities": map[string]any{"elicitation": map[string]any{"form": map[string]any{}}},
		"clientInfo": map[string]any{"name": "raw", "version": "1"}}})
	lines := bufio.NewScanner(cr)
	lines.Buffer(nil, 1<<20)
	type message struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Result json.RawMessage `json:"result"`
	}
	for lines.Scan() {
		var m message
		require.NoError(t, json.Unmarshal(lines.Bytes(), &m), "%s", lines.Bytes())
		switch {
		case string(m.ID) == "1" && m.Result != nil:
			send(map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"})
			send(map[string]any{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": map[string]any{
				"name": "kube_query", "arguments": map[string]any{"question": question}}})
		case m.Method == "elicitation/create":
			send(map[string]any{"jsonrpc": "2.0", "id": m.ID, "result": map[string]any{"action": "accept", "content": content}})
		case m.Method == "ping":
			send(map[string]any{"jsonrpc": "2.0", "id": m.ID, "result": map[string]any{}})
		case string(m.ID) == "2" && m.Method == "":
			require.NotNil(t, m.Result, "tools/call failed: %s", lines.Bytes())
			return m.Result
		}
	}
	t.Fatalf("the server closed stdout before the result: %v", lines.Err())
	return nil
}

// README: HTTP 429 without Retry-After says "rate limited; retry later".
func TestRateLimitWithoutRetryAfter(t *testing.T) {
	f := newFixture(t, nil)
	f.backend.Fault(kubeqtest.RespondWith(429, `{"detail":"Rate limit exceeded"}`, nil))
	cs, _ := f.connect("stdio", clientOpts{version: "2025-11-25"})
	res := call(t, cs, map[string]any{"question": "anything"})
	require.True(t, res.IsError)
	text := textOf(res)
	assert.Contains(t, text, "rate limited; retry later")
	assert.NotContains(t, text, "retry after")
	assert.Len(t, f.backend.ChatRequests(), 1, "HTTP errors are never retried")
}

// README: the form shows the exact command, the risk, the YAML, the
// approval id "and what approving does".
func TestApprovalFormSaysWhatApprovingDoes(t *testing.T) {
	f := newFixture(t, nil)
	yaml := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config"
	f.backend.Handle("apply the config", kubeqtest.Script{kubeqtest.Gate{
		Command: "kubectl apply -f - -n shop", Risk: "medium", ActionID: "act-apply", YAML: yaml,
		OnDeny: kubeqtest.Script{kubeqtest.Tokens("Not applied.")},
	}})
	var forms []*sdk.ElicitParams
	cs := f.dial(&sdk.Implementation{Name: "claims", Version: "1"}, &sdk.ClientOptions{
		ElicitationHandler: func(_ context.Context, req *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
			forms = append(forms, req.Params)
			return &sdk.ElicitResult{Action: "decline"}, nil
		},
	}, "stdio", "2025-11-25", &wireLog{})
	res := call(t, cs, map[string]any{"question": "apply the config"})
	require.False(t, res.IsError, textOf(res))
	require.Len(t, forms, 1)
	msg := forms[0].Message
	assert.Contains(t, msg, "kubectl apply -f - -n shop")
	assert.Contains(t, msg, "MEDIUM")
	assert.Contains(t, msg, yaml)
	assert.Contains(t, msg, "act-apply")
	assert.Contains(t, msg, "Approve: the command runs now, exactly as shown. Deny: it does not run.")
	decision, _ := json.Marshal(forms[0].RequestedSchema)
	assert.True(t, bytes.Contains(decision, []byte("approve runs the command on the cluster")),
		"the decision field says it too: %s", decision)
	assert.Equal(t, 1, f.backend.Received("deny"))
}

// formAnswer answers every approval form by accepting it with content.
func formAnswer(content map[string]any) func(context.Context, *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
	return func(context.Context, *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
		return &sdk.ElicitResult{Action: "accept", Content: content}, nil
	}
}

// waitFor1 waits for the progress message that starts with prefix.
func waitFor1(t *testing.T, p *progressLog, prefix string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range p.messages() {
			if strings.HasPrefix(m, prefix) {
				return m
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no progress message starting with %q in %q", prefix, p.messages())
	return ""
}
