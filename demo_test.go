package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/demo"
)

// TestDemoMode runs the built binary with --demo over stdio, the way a
// newcomer's MCP client does, and goes through the scripted tour.
func TestDemoMode(t *testing.T) {
	bin := buildDemoBinary(t)

	for _, era := range []struct{ name, version string }{{"2025-11-25", "2025-11-25"}, {"latest", ""}} {
		t.Run("diagnosis/"+era.name, func(t *testing.T) {
			t.Parallel()
			// The latest-era run keeps some pacing, to see that it is honoured.
			pace := map[string]string{"2025-11-25": "0", "latest": "0.1"}[era.name]
			cs, prog, stderr := connectDemo(t, bin, pace, era.version, nil)
			res := callDemoQuery(t, cs, demo.QuestionCrash)
			require.False(t, res.IsError, demoText(res))
			out := demoStructured(t, res)
			answer, _ := out["answer"].(string)
			assert.Contains(t, answer, "checkout is crash-looping: `DB_URL` is empty (simulated)")
			assert.Contains(t, answer, "kubectl patch secret checkout-db -n shop")
			assert.Contains(t, demoText(res), "[SIMULATED: kubeq-mcp demo mode", "the server labels the answer")
			assert.Equal(t, []any{}, out["approvals"])
			assert.NotNil(t, out["usage"])

			msgs := prog.waitFor(t, "[loading] Loading conversation context…",
				"[investigating] Investigating checkout-7d4b9cf6-xk2lp in shop…",
				"running: kubectl get pods -n shop",
				"running: kubectl logs checkout-7d4b9cf6-xk2lp -n shop --previous --tail=20",
				"plan: 1/4 steps done; now: Read the logs of the crashing container",
				"[synthesizing] Composing answer…")
			assert.GreaterOrEqual(t, len(msgs), 15, "a progress stream, not a single message")

			// Bounds from the script itself: at pace 1 its pauses add up to
			// full (seconds); pace 0 drops them, so even a loaded machine
			// finishes well inside them; pace 0.1 sleeps a tenth of them.
			elapsed := time.Duration(out["elapsed_ms"].(float64)) * time.Millisecond
			full := demo.Pauses(demo.QuestionCrash, 1)
			require.Greater(t, full, time.Second, "the crash script pauses for seconds at pace 1")
			if pace == "0" {
				assert.Zero(t, demo.Pauses(demo.QuestionCrash, 0))
				assert.Less(t, elapsed, full, "pace 0 must not sleep the scripted pauses")
			} else {
				assert.GreaterOrEqual(t, elapsed, demo.Pauses(demo.QuestionCrash, 0.1), "pace 0.1 keeps a tenth of the scripted pauses")
			}
			assert.Contains(t, stderr.String(), "DEMO MODE")
		})

		t.Run("delete-approved/"+era.name, func(t *testing.T) {
			t.Parallel()
			var forms demoForms
			cs, prog, _ := connectDemo(t, bin, "0", era.version, forms.answer("approve"))
			res := callDemoQuery(t, cs, demo.QuestionDelete)
			require.False(t, res.IsError, demoText(res))
			out := demoStructured(t, res)
			approval := onlyApproval(t, out)
			assert.Equal(t, "approved", approval["decision"])
			assert.Equal(t, "user_approved", approval["reason"])
			assert.Equal(t, "high", approval["risk"])
			assert.Equal(t, "kubectl delete pod checkout-7d4b9cf6-xk2lp -n shop", approval["action"])
			assert.Contains(t, out["answer"], "Deleted `checkout-7d4b9cf6-xk2lp` (simulated).")
			assert.Contains(t, out["answer"], "crashes the same way")
			assert.Contains(t, demoText(res), "[SIMULATED")

			form := forms.only(t)
			assert.Equal(t, "checkout-7d4b9cf6-xk2lp", form.confirm, "high risk: the human types the pod's name")
			assert.Contains(t, form.message, "kubectl delete pod checkout-7d4b9cf6-xk2lp -n shop")
			assert.Contains(t, form.message, "[SIMULATED", "the form says it is simulated too")
			prog.waitFor(t, "approval needed (high risk): kubectl delete pod checkout-7d4b9cf6-xk2lp -n shop")
		})

		t.Run("delete-declined/"+era.name, func(t *testing.T) {
			t.Parallel()
			var forms demoForms
			cs, _, _ := connectDemo(t, bin, "0", era.version, forms.answer("decline"))
			res := callDemoQuery(t, cs, demo.QuestionDelete)
			require.False(t, res.IsError, demoText(res))
			out := demoStructured(t, res)
			approval := onlyApproval(t, out)
			assert.Equal(t, "denied", approval["decision"])
			assert.Equal(t, "user_declined", approval["reason"])
			assert.Contains(t, out["answer"], "I did not delete `checkout-7d4b9cf6-xk2lp` (simulated). Nothing was changed.")
			assert.NotContains(t, out["answer"], "Deleted `checkout")
			assert.Contains(t, demoText(res), "DENIED")
		})
	}

	t.Run("scale-approved-medium-risk", func(t *testing.T) {
		t.Parallel()
		var forms demoForms
		cs, _, _ := connectDemo(t, bin, "0", "2025-11-25", forms.answer("approve"))
		res := callDemoQuery(t, cs, demo.QuestionScale)
		require.False(t, res.IsError, demoText(res))
		out := demoStructured(t, res)
		approval := onlyApproval(t, out)
		assert.Equal(t, "approved", approval["decision"])
		assert.Equal(t, "medium", approval["risk"])
		assert.Equal(t, "kubectl scale deployment/frontend --replicas=3 -n shop", approval["action"])
		assert.Contains(t, out["answer"], "Scaled `deployment/frontend` to 3 replicas (simulated).")
		assert.Equal(t, []string{"decision"}, forms.only(t).required, "medium risk needs no typed confirmation")
	})

	t.Run("fallback-lists-the-questions", func(t *testing.T) {
		t.Parallel()
		cs, _, _ := connectDemo(t, bin, "0", "2025-11-25", nil)
		res := callDemoQuery(t, cs, "how many nodes does my cluster have?")
		require.False(t, res.IsError, demoText(res))
		for _, q := range demo.Questions() {
			assert.Contains(t, demoText(res), q)
		}
	})

	t.Run("stdout-is-json-rpc-only", func(t *testing.T) {
		t.Parallel()
		testDemoStdoutPurity(t, bin)
	})
}

// buildDemoBinary builds kubeq-mcp into a directory that lives as long as t.
func buildDemoBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kubeq-mcp")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// demoCommand is `kubeq-mcp --demo` over stdio, whatever the environment
// of the test says about transports.
func demoCommand(bin, pace string, stderr io.Writer) *exec.Cmd {
	cmd := exec.Command(bin, "--demo", "--transport", "stdio", "--log-level", "debug")
	// The page off: a client here that shows no form is denied, and no
	// test opens the desktop's browser.
	cmd.Env = append(os.Environ(), "KUBEQ_MCP_DEMO_PACE="+pace, "KUBEQ_MCP_APPROVAL_BROWSER=none")
	cmd.Stderr = stderr
	return cmd
}

// connectDemo starts the binary and connects a go-sdk client to it.
// version "" leaves the protocol version to the client (its latest).
func connectDemo(t *testing.T, bin, pace, version string,
	elicit func(context.Context, *sdk.ElicitRequest) (*sdk.ElicitResult, error),
) (*sdk.ClientSession, *demoProgress, *demoBuffer) {
	t.Helper()
	prog := &demoProgress{}
	stderr := &demoBuffer{}
	opts := &sdk.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *sdk.ProgressNotificationClientRequest) {
			prog.add(r.Params.Message)
		},
		ElicitationHandler: elicit,
	}
	client := sdk.NewClient(&sdk.Implementation{Name: "kubeq-mcp-demo-test", Version: "1"}, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr := &sdk.CommandTransport{Command: demoCommand(bin, pace, stderr), TerminateDuration: 3 * time.Second}
	cs, err := client.Connect(ctx, tr, &sdk.ClientSessionOptions{ProtocolVersion: version})
	require.NoError(t, err, "stderr: %s", stderr)
	t.Cleanup(func() {
		_ = cs.Close()
		if t.Failed() {
			t.Logf("kubeq-mcp stderr:\n%s", stderr)
		}
	})
	return cs, prog, stderr
}

// callDemoQuery asks kube_query with a progress token.
func callDemoQuery(t *testing.T, cs *sdk.ClientSession, question string) *sdk.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p := &sdk.CallToolParams{Name: "kube_query", Arguments: map[string]any{"question": question}}
	p.SetProgressToken("demo-" + strings.ReplaceAll(t.Name(), "/", "-"))
	res, err := cs.CallTool(ctx, p)
	require.NoError(t, err)
	return res
}

func demoText(res *sdk.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func demoStructured(t *testing.T, res *sdk.CallToolResult) map[string]any {
	t.Helper()
	m, ok := res.StructuredContent.(map[string]any)
	require.Truef(t, ok, "structuredContent is %T: %s", res.StructuredContent, demoText(res))
	return m
}

func onlyApproval(t *testing.T, out map[string]any) map[string]any {
	t.Helper()
	approvals, _ := out["approvals"].([]any)
	require.Len(t, approvals, 1, "approvals: %v", out["approvals"])
	a, ok := approvals[0].(map[string]any)
	require.True(t, ok)
	return a
}

// demoProgress collects progress messages; the client's handler runs on a
// goroutine of its own.
type demoProgress struct {
	mu   sync.Mutex
	msgs []string
}

func (p *demoProgress) add(m string) {
	p.mu.Lock()
	p.msgs = append(p.msgs, m)
	p.mu.Unlock()
}

// waitFor waits (bounded) until every one of want was received, and
// returns all messages so far.
func (p *demoProgress) waitFor(t *testing.T, want ...string) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.mu.Lock()
		msgs := append([]string(nil), p.msgs...)
		p.mu.Unlock()
		missing := ""
		for _, w := range want {
			if !containsString(msgs, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("progress message %q never arrived; got:\n%s", missing, strings.Join(msgs, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// demoForm is what one approval form asked.
type demoForm struct {
	message  string
	required []string
	confirm  string // what the simulated human typed, "" when not asked
}

// demoForms is a simulated human who answers approval forms.
type demoForms struct {
	mu    sync.Mutex
	forms []demoForm
}

// answer returns an elicitation handler: "approve" fills every required
// field from the requested schema (typing the confirmation its title asks
// for), "decline" declines the form.
func (f *demoForms) answer(action string) func(context.Context, *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
	return func(_ context.Context, req *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
		form := demoForm{message: req.Params.Message}
		schema, _ := req.Params.RequestedSchema.(map[string]any)
		props, _ := schema["properties"].(map[string]any)
		required, _ := schema["required"].([]any)
		content := map[string]any{}
		for _, r := range required {
			name, _ := r.(string)
			form.required = append(form.required, name)
			if name != "decision" {
				return nil, fmt.Errorf("unexpected required field %q in %v", name, schema)
			}
			content[name] = "approve"
		}
		// The confirmation is optional in the schema (needed only to
		// approve): a human who approves types what its title asks for.
		if field, ok := props["confirm"].(map[string]any); ok {
			title, _ := field["title"].(string)
			target, ok := strings.CutPrefix(title, "Type ")
			target, ok2 := strings.CutSuffix(target, " to confirm")
			if !ok || !ok2 {
				return nil, fmt.Errorf("confirm field title %q does not say what to type", title)
			}
			form.confirm = target
			content["confirm"] = target
		}
		f.mu.Lock()
		f.forms = append(f.forms, form)
		f.mu.Unlock()
		if action == "decline" {
			return &sdk.ElicitResult{Action: "decline"}, nil
		}
		return &sdk.ElicitResult{Action: "accept", Content: content}, nil
	}
}

func (f *demoForms) only(t *testing.T) demoForm {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Len(t, f.forms, 1, "exactly one approval form")
	return f.forms[0]
}

// demoBuffer is an io.Writer safe to read while the process writes.
type demoBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *demoBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *demoBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// testDemoStdoutPurity speaks JSON-RPC to the binary by hand and checks
// that every line it writes on stdout is a JSON-RPC 2.0 message: the logs
// go to stderr (DESIGN.md invariant 5).
func testDemoStdoutPurity(t *testing.T, bin string) {
	stderr := &demoBuffer{}
	cmd := demoCommand(bin, "0", stderr)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	lines := make(chan string)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		for range lines { // let the reader finish
		}
	})

	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var all []string
	// readUntil collects stdout lines until the response with id arrives.
	readUntil := func(id int) map[string]any {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case line, ok := <-lines:
				require.True(t, ok, "stdout closed before response %d; stderr:\n%s", id, stderr)
				all = append(all, line)
				var msg map[string]any
				require.NoError(t, json.Unmarshal([]byte(line), &msg), "stdout line is not JSON: %q", line)
				if got, _ := msg["id"].(float64); got == float64(id) && msg["method"] == nil {
					return msg
				}
			case <-timeout:
				t.Fatalf("no response %d within 10s; stderr:\n%s", id, stderr)
			}
		}
	}
	send := func(msg string) {
		t.Helper()
		_, err := io.WriteString(stdin, msg+"\n")
		require.NoError(t, err)
	}

	send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	initRes := readUntil(1)
	require.Contains(t, initRes, "result", "initialize: %v", initRes)
	send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	send(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	list := readUntil(2)
	raw, _ := json.Marshal(list["result"])
	assert.Contains(t, string(raw), `"name":"kube_query"`)

	send(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"kube_query","arguments":{"question":` +
		mustJSON(t, demo.QuestionCrash) + `},"_meta":{"progressToken":"raw-1"}}}`)
	call := readUntil(3)
	raw, _ = json.Marshal(call["result"])
	assert.Contains(t, string(raw), "SIMULATED")
	assert.Contains(t, string(raw), "crash-looping")

	// This client cannot show forms: only a human approves, so the
	// delete is denied and nothing runs.
	send(`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"kube_query","arguments":{"question":` +
		mustJSON(t, demo.QuestionDelete) + `}}}`)
	del := readUntil(4)
	raw, _ = json.Marshal(del["result"])
	assert.Contains(t, string(raw), `"reason":"elicitation_unsupported"`)
	assert.Contains(t, string(raw), `"decision":"denied"`)
	assert.NotContains(t, string(raw), "Deleted `checkout")

	require.NoError(t, stdin.Close())
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		assert.NoError(t, err, "kubeq-mcp exits cleanly when stdin closes")
	case <-time.After(10 * time.Second):
		t.Fatal("kubeq-mcp did not exit within 10s of stdin closing")
	}
	for line := range lines {
		all = append(all, line)
	}

	progress := 0
	for _, line := range all {
		var msg struct {
			JSONRPC string          `json:"jsonrpc"`
			Method  string          `json:"method"`
			ID      json.RawMessage `json:"id"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &msg), "stdout line is not JSON: %q", line)
		assert.Equal(t, "2.0", msg.JSONRPC, "line: %s", line)
		assert.True(t, msg.Method != "" || msg.ID != nil, "neither a request, a notification nor a response: %s", line)
		if msg.Method == "notifications/progress" {
			progress++
		}
	}
	assert.Greater(t, progress, 10, "progress notifications travel on stdout too")
	assert.Contains(t, stderr.String(), "DEMO MODE", "the startup log says demo mode, on stderr")
	assert.Contains(t, stderr.String(), demo.QuestionMemory, "the startup log lists the example questions")
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestDemoPaceFromEnvironment(t *testing.T) {
	for v, want := range map[string]float64{"": 1, "0": 0, " 0.25 ": 0.25, "2": 2} {
		got, err := demoPace(v)
		require.NoError(t, err, v)
		assert.Equal(t, want, got, v)
	}
	for _, v := range []string{"abc", "-1", "1e9", "NaN"} {
		_, err := demoPace(v)
		assert.ErrorContains(t, err, demoPaceEnv, v)
	}
}
