package main

// Findings of the red-team run on the built binary (issue 19), each
// checked from outside the process.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// postRaw POSTs an initialize to endpoint with the given headers and
// returns the status and body.
func postRaw(t *testing.T, endpoint string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(rawInitialize))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// Issue 19 item 3: on a token-protected server, a client without the token
// gets 401 before anything else looks at its request, so a foreign Origin
// is neither logged nor echoed; with the token, a huge Origin is refused
// with a capped, escaped value in both the log and the answer.
func TestBinaryTokenBeforeOriginAndCappedHeaders(t *testing.T) {
	bin := kubeqMCPBinary(t)
	backend := binaryBackend(t)
	stderr := &syncBuffer{}
	_, endpoint := startHTTPBinary(t, bin, stderr, "--url", backend.URL, "--http-token", "tok-red-19-0123456789")

	huge := "https://evil.example/" + strings.Repeat("A", 900<<10)
	before := len(stderr.String())
	for range 5 {
		code, body := postRaw(t, endpoint, map[string]string{"Origin": huge})
		assert.Equal(t, http.StatusUnauthorized, code, "no token: 401, whatever the Origin")
		assert.Less(t, len(body), 1024)
		assert.NotContains(t, body, "evil.example")
	}
	logged := stderr.String()[before:]
	assert.NotContains(t, logged, "evil.example", "nothing of an unauthenticated request is logged")
	assert.Less(t, len(logged), 4096)

	// Authenticated but foreign, with a byte that is not UTF-8: refused,
	// the value capped and escaped.
	before = len(stderr.String())
	code, body := postRaw(t, endpoint, map[string]string{"Origin": "https://evil.example/\xff" + huge, "Authorization": "Bearer tok-red-19-0123456789"})
	assert.Equal(t, http.StatusForbidden, code)
	assert.Contains(t, body, "evil.example")
	assert.Less(t, len(body), 2048, "the 403 echoes at most a capped Origin")
	require.Eventually(t, func() bool { return strings.Contains(stderr.String()[before:], "foreign Origin") },
		10*time.Second, 10*time.Millisecond, "the refusal is logged")
	logged = stderr.String()[before:]
	assert.Less(t, len(logged), 4096, "the log line holds at most a capped Origin")
	// The stderr pipe keeps order: had the unauthenticated requests been
	// logged, they would show before this one.
	assert.Equal(t, 1, strings.Count(stderr.String(), "foreign Origin"), "only the authenticated refusal is logged: %s", stderr.String())
	assert.NotContains(t, logged, "\xff")
	assert.NotContains(t, body, "\xff")
}

// Issue 19 item 9: "Authorization: bearer <token>" is accepted (RFC 7235
// schemes are case-insensitive); a wrong token still is not.
func TestBinaryBearerSchemeAnyCase(t *testing.T) {
	bin := kubeqMCPBinary(t)
	backend := binaryBackend(t)
	_, endpoint := startHTTPBinary(t, bin, &syncBuffer{}, "--url", backend.URL, "--http-token", "tok-red-19-0123456789")
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		code, body := postRaw(t, endpoint, map[string]string{"Authorization": scheme + " tok-red-19-0123456789"})
		assert.Equal(t, http.StatusOK, code, "%s: %s", scheme, body)
	}
	for _, auth := range []string{"bearer tok-red-19-012345678", "Basic tok-red-19-0123456789", "bearertok-red-19-0123456789", "tok-red-19-0123456789"} {
		code, _ := postRaw(t, endpoint, map[string]string{"Authorization": auth})
		assert.Equal(t, http.StatusUnauthorized, code, auth)
	}
}

// Issue 19 item 9: the placeholders of our manifests and examples are
// refused at start-up, as an unusable state key already is.
func TestBinaryRefusesPlaceholderSecrets(t *testing.T) {
	bin := kubeqMCPBinary(t)
	manifest, err := os.ReadFile("deploy/kubernetes/secret.yaml")
	require.NoError(t, err)
	require.Contains(t, string(manifest), "replace-with-a-long-random-token")
	cases := map[string]struct {
		env  []string
		args []string
		want string
	}{
		"token from the manifest": {env: []string{"KUBEQ_MCP_HTTP_TOKEN=replace-with-a-long-random-token"},
			args: []string{"--transport", "http"}, want: "--http-token"},
		"token from the client examples": {args: []string{"--transport", "http", "--http-token", "your-kubeq-mcp-http-token"},
			want: "--http-token"},
		"unexpanded variable": {args: []string{"--http-token", "${KUBEQ_MCP_HTTP_TOKEN}"}, want: "--http-token"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			// A server that accepts the secret would serve: bound the run.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, append(c.args, "--addr", "127.0.0.1:0")...)
			cmd.Env = append(os.Environ(), c.env...)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "%s", out)
			require.NoError(t, ctx.Err(), "the server started with a placeholder secret: %s", out)
			assert.Equal(t, 2, exit.ExitCode())
			assert.Contains(t, string(out), c.want)
			assert.Contains(t, string(out), "placeholder")
		})
	}
}

// Issue 19 item 6: a URL password never reaches the output, whether the
// URL is refused at start-up or shown by --help as the default from
// KUBE_Q_URL.
func TestBinaryMasksURLPassword(t *testing.T) {
	bin := kubeqMCPBinary(t)
	for _, u := range []string{
		"http://admin:S3cret%zzPW@host",      // not parseable: the start-up check
		"ftp://admin:S3cret-zzPW@host",       // wrong scheme
		"http://admin:S3cret-zzPW@host?x#y",  // refused by the client
		"http://admin:S3cret-zzPW@host:port", // bad port
	} {
		t.Run(u, func(t *testing.T) {
			out, err := exec.Command(bin, "--url", u).CombinedOutput()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "%s", out)
			assert.Contains(t, strings.ToLower(string(out)), "url")
			assert.NotContains(t, string(out), "S3cret")
		})
	}
	cmd := exec.Command(bin, "--help")
	cmd.Env = append(os.Environ(), "KUBE_Q_URL=http://admin:S3cret-zzPW@host:8000")
	out, _ := cmd.CombinedOutput()
	assert.Contains(t, string(out), "host:8000")
	assert.NotContains(t, string(out), "S3cret")
}

// Issue 19 item 7: a question of Python whitespace only (U+001C–U+001F
// included, which Go's TrimSpace keeps) is refused as empty, and nothing
// reaches the backend, whose strip() would make it empty.
func TestBinaryRefusesPythonWhitespaceQuestion(t *testing.T) {
	backend := binaryBackend(t)
	bin := startBinaryFor(t, "stdio", backend)
	cs := bin.connect("", nil)
	for _, q := range []string{"\x1c\x1d\x1e\x1f", " \x1f\t", "\u3000\x1c\u2029", "\u0085\x1e"} {
		res, err := binQuery(cs, map[string]any{"question": q})
		require.NoError(t, err)
		require.True(t, res.IsError, "%q must be refused", q)
		assert.Contains(t, res.Content[0].(*sdk.TextContent).Text, "question: must not be empty", "%q", q)
	}
	assert.Empty(t, backend.ChatRequests(), "nothing is sent for a blank question")
	// A question that only starts with a separator still goes.
	res, err := binQuery(cs, map[string]any{"question": "\x1cwhy is checkout crashing?"})
	require.NoError(t, err)
	assert.False(t, res.IsError, "%v", res.Content)
}

// Issue 19 item 4: a backend that redirects (302 or 307, to another port
// on the same host) gets no request followed: the API key never reaches
// the target, kube_health does not call it healthy, and kube_query fails
// with a message naming the target.
func TestBinaryDoesNotFollowBackendRedirects(t *testing.T) {
	const apiKey = "kq-red19-redirect-key"
	var mu sync.Mutex
	var reached []string // requests the redirect target received
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reached = append(reached, r.Method+" "+r.URL.Path+" auth="+r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok","arm":"v4"}`)
	}))
	t.Cleanup(target.Close)
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+r.URL.Path, code)
			}))
			t.Cleanup(redirector.Close)
			stderr := &syncBuffer{}
			cmd := exec.Command(kubeqMCPBinary(t), "--url", redirector.URL, "--api-key", apiKey, "--retry-delays", "10ms")
			cmd.Stderr = stderr
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cs, err := sdk.NewClient(&sdk.Implementation{Name: "redirect-test", Version: "1"}, nil).
				Connect(ctx, &sdk.CommandTransport{Command: cmd}, nil)
			require.NoError(t, err, stderr.String())
			defer cs.Close()

			res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "kube_health", Arguments: map[string]any{}})
			require.NoError(t, err)
			out := res.StructuredContent.(map[string]any)
			assert.Equal(t, false, out["healthy"], "a redirected service is not healthy: %v", out)
			assert.Contains(t, out["reason"], target.URL+"/healthz", "the reason names the target")

			// A known conversation: the history read and the denial sent
			// first go to the backend too.
			res, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: "kube_query",
				Arguments: map[string]any{"question": "what is running?", "conversation_id": "conv-redirect-1"}})
			require.NoError(t, err)
			require.True(t, res.IsError)
			text := res.Content[0].(*sdk.TextContent).Text
			assert.Contains(t, text, "redirect")
			assert.Contains(t, text, target.URL+"/v1/chat/completions")
			assert.NotContains(t, text, apiKey)

			mu.Lock()
			defer mu.Unlock()
			assert.Empty(t, reached, "the redirect target received nothing")
			assert.NotContains(t, stderr.String(), apiKey)
		})
	}
}

// Issue 19 item 5: a backend (or a gateway) that echoes the API key or the
// URL's password in a 200 answer — status, tool call and result, answer
// tokens (split across chunks), a fatal error event, a V2 "[Error: …]"
// chunk, a gate's command, a non-SSE Content-Type, an error body — never
// gets it into a result, a progress message, a form or a log line.
func TestBinaryRedactsSecretsFromBackendText(t *testing.T) {
	const key, password = "kq-RED19-echoed-api-key", "pw-RED19-echoed"
	backend := kubeqtest.NewServer(kubeqtest.WithHeartbeat(20*time.Millisecond), kubeqtest.WithTokenChunkSize(5))
	t.Cleanup(backend.Close)
	backend.Handle("echo everywhere", kubeqtest.Script{
		kubeqtest.Status("analyzing", "auth with "+key),
		kubeqtest.ToolCall("run_kubectl", "kubectl get pods --token="+key),
		kubeqtest.ToolResult("run_kubectl", "password was "+password),
		kubeqtest.Plan(kubeqtest.PlanStep{Description: "rotate " + key, Status: "pending"}),
		kubeqtest.Tokens("Your key is " + key + " and the password " + password + ", split in chunks."),
	})
	backend.Handle("fatal echo", kubeqtest.Script{kubeqtest.Tokens("partial "), kubeqtest.Fatal("upstream refused key " + key)})
	backend.Handle("v2 echo", kubeqtest.Script{kubeqtest.Token("\n\n[Error: bad password " + password + "]")})
	backend.Handle("gate echo", kubeqtest.Script{kubeqtest.Gate{ActionID: "gate-red19",
		Command: "kubectl create secret generic k -n shop --from-literal=key=" + key,
		OnDeny:  kubeqtest.Script{kubeqtest.Tokens("Not created.")}}})
	backend.Handle("content type echo", kubeqtest.Script{kubeqtest.Tokens("never read")})
	backend.Handle("error body echo", kubeqtest.Script{kubeqtest.Tokens("never read")})

	withPassword := strings.Replace(backend.URL, "http://", "http://admin:"+password+"@", 1)
	stderr := &syncBuffer{}
	cmd := exec.Command(kubeqMCPBinary(t), "--url", withPassword, "--api-key", key, "--log-level", "debug",
		"--retry-delays", "10ms")
	cmd.Stderr = stderr
	var mu sync.Mutex
	var seen []string // every progress message and form
	client := sdk.NewClient(&sdk.Implementation{Name: "redact-test", Version: "1"}, &sdk.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *sdk.ProgressNotificationClientRequest) {
			mu.Lock()
			seen = append(seen, "progress: "+r.Params.Message)
			mu.Unlock()
		},
		ElicitationHandler: func(_ context.Context, r *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
			mu.Lock()
			seen = append(seen, "form: "+r.Params.Message)
			mu.Unlock()
			return &sdk.ElicitResult{Action: "decline"}, nil
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, &sdk.CommandTransport{Command: cmd}, &sdk.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	require.NoError(t, err, stderr.String())
	defer cs.Close()

	var results []string
	call := func(question string, wantError bool) string {
		p := &sdk.CallToolParams{Name: "kube_query", Arguments: map[string]any{"question": question}}
		p.SetProgressToken(question)
		res, err := cs.CallTool(ctx, p)
		require.NoError(t, err, question)
		require.Equal(t, wantError, res.IsError, "%s: %v", question, res.Content)
		raw, err := json.Marshal(res)
		require.NoError(t, err)
		results = append(results, string(raw))
		return res.Content[0].(*sdk.TextContent).Text
	}
	text := call("echo everywhere", false)
	assert.Contains(t, text, "Your key is [redacted] and the password [redacted], split in chunks.")
	assert.Contains(t, call("fatal echo", true), "[redacted]")
	assert.Contains(t, call("v2 echo", true), "[redacted]")
	assert.Contains(t, call("gate echo", false), "--from-literal=key=[redacted]")
	backend.Fault(kubeqtest.RespondWith(200, "<html>"+key+"</html>", http.Header{"Content-Type": {"text/html; token=" + key}}))
	assert.Contains(t, call("content type echo", true), "[redacted]")
	backend.Fault(kubeqtest.RespondWith(500, "gateway saw "+password+" and "+key, http.Header{"Content-Type": {"text/plain"}}))
	assert.Contains(t, call("error body echo", true), "[redacted]")

	mu.Lock()
	all := strings.Join(seen, "\n")
	mu.Unlock()
	assert.Contains(t, all, "form: ", "the gate's form was shown")
	assert.Contains(t, all, "[analyzing] auth with [redacted]")
	all += "\n" + strings.Join(results, "\n") + "\n" + stderr.String()
	for _, secret := range []string{key, password} {
		assert.NotContains(t, all, secret)
		// Nor a piece long enough to rebuild it from chunks.
		assert.NotContains(t, all, secret[:len(secret)-3])
	}
}

// Issue 19 item 8: by default the model cannot choose the backend user:
// kube_query's schema has no user_id, a user_id argument is refused
// clearly and nothing is sent, and turns carry --user-id, which the audit
// line names as configured. With --allow-user-override the model's user_id
// is sent and the audit line says it was model-supplied.
func TestBinaryUserOverride(t *testing.T) {
	for _, allow := range []bool{false, true} {
		t.Run("allow="+strconv.FormatBool(allow), func(t *testing.T) {
			backend := kubeqtest.NewServer(kubeqtest.WithHeartbeat(20 * time.Millisecond))
			t.Cleanup(backend.Close)
			backend.Handle("who am i?", kubeqtest.Script{kubeqtest.Tokens("You are who the server says.")})
			backend.Handle("restart it", binScript(scaleGate("api-user", "deny")))
			bin := startBinaryFor(t, "stdio", backend)
			bin.args = append(bin.args, "--user-id", "ops-bot")
			if allow {
				bin.args = append(bin.args, "--allow-user-override")
			}
			h := &binHuman{backend: backend, gates: map[string]binGate{}, forms: map[string]*sdk.ElicitParams{}}
			h.plan(scaleGate("api-user", "deny"))
			cs := bin.connect("2025-11-25", &sdk.ClientOptions{ElicitationHandler: h.elicit})

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			tools, err := cs.ListTools(ctx, nil)
			require.NoError(t, err)
			var props map[string]any
			for _, tool := range tools.Tools {
				if tool.Name == "kube_query" {
					props = tool.InputSchema.(map[string]any)["properties"].(map[string]any)
				}
			}
			require.Contains(t, props, "question")
			if allow {
				assert.Contains(t, props, "user_id")
			} else {
				assert.NotContains(t, props, "user_id", "the model is not offered user_id")
			}

			res, err := binQuery(cs, map[string]any{"question": "who am i?", "user_id": "alice@corp.com"})
			require.NoError(t, err)
			if !allow {
				require.True(t, res.IsError)
				text := res.Content[0].(*sdk.TextContent).Text
				assert.Contains(t, text, "user_id")
				assert.Contains(t, text, "--allow-user-override")
				assert.Empty(t, backend.ChatRequests(), "nothing is sent")
				res, err = binQuery(cs, map[string]any{"question": "who am i?"})
				require.NoError(t, err)
			}
			require.False(t, res.IsError, "%v", res.Content)
			want := "ops-bot"
			args := map[string]any{"question": "restart it"}
			if allow {
				want = "alice@corp.com"
				args["user_id"] = want
			}
			res, err = binQuery(cs, args)
			require.NoError(t, err)
			require.False(t, res.IsError, "%v", res.Content)
			require.NotEmpty(t, backend.ChatRequests())
			for _, r := range backend.ChatRequests() {
				if r.Question == "who am i?" && allow {
					assert.Equal(t, "alice@corp.com", r.User)
				} else {
					assert.Equal(t, want, r.User, "%s", r.Message)
				}
			}

			var rec map[string]any
			require.Eventually(t, func() bool {
				raw, _ := os.ReadFile(bin.audit)
				return len(raw) > 0 && json.Unmarshal(raw, &rec) == nil
			}, 5*time.Second, 20*time.Millisecond)
			assert.Equal(t, "api-user", rec["approval_id"])
			assert.Equal(t, want, rec["user_id"])
			source := "configured"
			if allow {
				source = "model"
			}
			assert.Equal(t, source, rec["user_source"])
		})
	}
}

// Issue 19 item 2: two 2026-era clients over HTTP number their requests
// alike, so their calls share a request id. One client's cancellation
// reaches its own call, never the other client's. (Closing a 2026-era
// stream ends the call; the investigation behind it goes on, since that
// cannot be told from a client that gave up: README, "Long
// investigations".)
func TestBinaryModernCancelReachesOnlyItsOwnCall(t *testing.T) {
	backend := kubeqtest.NewServer(kubeqtest.WithHeartbeat(20 * time.Millisecond))
	t.Cleanup(backend.Close)
	releaseY := make(chan struct{})
	backend.Handle("slow x", kubeqtest.Script{kubeqtest.Status("investigating", "x"), kubeqtest.Sleep(time.Minute)})
	backend.Handle("slow y", kubeqtest.Script{kubeqtest.Status("investigating", "y"), kubeqtest.WaitFor(releaseY),
		kubeqtest.Tokens("y finished")})
	stderr := &syncBuffer{}
	_, endpoint := startHTTPBinary(t, kubeqMCPBinary(t), stderr, "--url", backend.URL, "--log-level", "debug")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	connect := func(name string) *sdk.ClientSession {
		cs, err := sdk.NewClient(&sdk.Implementation{Name: name, Version: "1"}, nil).
			Connect(ctx, &sdk.StreamableClientTransport{Endpoint: endpoint, MaxRetries: -1}, nil)
		require.NoError(t, err, stderr.String())
		t.Cleanup(func() { _ = cs.Close() })
		return cs
	}
	x, y := connect("client-x"), connect("client-y")
	asked := func(question string) func([]kubeqtest.Request) bool {
		return func(log []kubeqtest.Request) bool {
			for _, r := range log {
				if r.Question == question {
					return true
				}
			}
			return false
		}
	}

	// X's call first, then Y's: the same request id, Y registered last.
	xctx, xcancel := context.WithCancel(ctx)
	xdone := make(chan error, 1)
	go func() {
		_, err := x.CallTool(xctx, &sdk.CallToolParams{Name: "kube_query", Arguments: map[string]any{"question": "slow x"}})
		xdone <- err
	}()
	require.NoError(t, backend.Wait(ctx, asked("slow x")))
	type outcome struct {
		res *sdk.CallToolResult
		err error
	}
	ydone := make(chan outcome, 1)
	go func() {
		res, err := y.CallTool(ctx, &sdk.CallToolParams{Name: "kube_query", Arguments: map[string]any{"question": "slow y"}})
		ydone <- outcome{res, err}
	}()
	require.NoError(t, backend.Wait(ctx, asked("slow y")))

	// A well-formed 2026-era notifications/cancelled for that id, as X
	// would send it: it must not reach Y's call. (The go-sdk client sends
	// one without _meta, which mcp-go refuses with 400.)
	const cancelBody = `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":2,"reason":"x gave up",` +
		`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(cancelBody))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", "notifications/cancelled")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)

	// X cancels its own call the 2026 way: the go-sdk closes the response
	// stream. That ends X's call; its investigation is left running.
	xcancel()
	require.ErrorIs(t, <-xdone, context.Canceled)
	require.Eventually(t, func() bool {
		return strings.Contains(stderr.String(), "the call stopped watching; the turn goes on")
	}, 10*time.Second, 10*time.Millisecond, "X's call ended on the server")

	// Y's call is untouched: its backend request is still open, and it
	// ends with its answer once the backend goes on.
	for _, r := range backend.ChatRequests() {
		if r.Question == "slow y" {
			assert.False(t, r.Disconnected, "X's cancellation must not reach Y's call")
		}
	}
	select {
	case o := <-ydone:
		t.Fatalf("Y's call ended when X cancelled: %v %v", o.err, o.res)
	case <-time.After(300 * time.Millisecond):
	}
	close(releaseY)
	o := <-ydone
	require.NoError(t, o.err)
	require.False(t, o.res.IsError, "%v", o.res.Content)
	assert.Equal(t, "y finished", o.res.StructuredContent.(map[string]any)["answer"])
}
