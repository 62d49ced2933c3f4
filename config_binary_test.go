package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// The README's configuration table, item by item, against the built
// binary: what each setting does as a user would see it.

const rawInitialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

// postMCP sends body to endpoint as an MCP client would, with extra headers.
func postMCP(t *testing.T, endpoint, body string, header map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = res.Body.Close() })
	return res
}

// README: `--allowed-origins '*'` allows every origin (with a token set);
// without it a foreign Origin gets 403.
func TestBinaryAllowedOriginsStar(t *testing.T) {
	bin := kubeqMCPBinary(t)
	backend := binaryBackend(t)
	const token = "tok-allowed-origins-0123456789"
	headers := map[string]string{"Origin": "https://dashboard.example.com", "Authorization": "Bearer " + token}

	_, strict := startHTTPBinary(t, bin, &syncBuffer{}, "--url", backend.URL, "--http-token", token)
	assert.Equal(t, http.StatusForbidden, postMCP(t, strict, rawInitialize, headers).StatusCode,
		"a foreign Origin is refused by default")

	stderr := &syncBuffer{}
	_, open := startHTTPBinary(t, bin, stderr, "--url", backend.URL, "--http-token", token, "--allowed-origins", "*")
	assert.Equal(t, http.StatusOK, postMCP(t, open, rawInitialize, headers).StatusCode, stderr.String())
	noToken := map[string]string{"Origin": "https://dashboard.example.com"}
	assert.Equal(t, http.StatusUnauthorized, postMCP(t, open, rawInitialize, noToken).StatusCode,
		"'*' opens origins, never the token")
}

// README: `--state-key` takes 32 bytes in standard base64 or in hex. The
// same key in either spelling is the same key: a 2026-era approval state
// sealed by a replica given it in base64 is opened by one given it in hex.
func TestBinaryStateKeyEncodings(t *testing.T) {
	bin := kubeqMCPBinary(t)
	backend := binaryBackend(t)
	backend.Handle("scale web", kubeqtest.Script{kubeqtest.Gate{
		Command: "kubectl scale deployment web --replicas=3 -n shop", Risk: "medium", ActionID: "act-scale",
		OnApprove: kubeqtest.Script{kubeqtest.Tokens("Scaled to 3.")},
	}})
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(200 - i)
	}
	_, viaB64 := startHTTPBinary(t, bin, &syncBuffer{}, "--url", backend.URL, "--state-key", base64.StdEncoding.EncodeToString(key))
	_, viaHex := startHTTPBinary(t, bin, &syncBuffer{}, "--url", backend.URL, "--state-key", hex.EncodeToString(key))

	connect := func(endpoint string) *sdk.ClientSession {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cs, err := sdk.NewClient(&sdk.Implementation{Name: "state-key", Version: "1"}, &sdk.ClientOptions{
			ElicitationHandler: func(context.Context, *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
				return &sdk.ElicitResult{Action: "decline"}, nil
			},
			MultiRoundTrip: &sdk.MultiRoundTripOptions{Disabled: true},
		}).Connect(ctx, &sdk.StreamableClientTransport{Endpoint: endpoint, MaxRetries: -1},
			&sdk.ClientSessionOptions{ProtocolVersion: "2026-07-28"})
		require.NoError(t, err)
		t.Cleanup(func() { _ = cs.Close() })
		return cs
	}
	first, err := binQuery(connect(viaB64), map[string]any{"question": "scale web"})
	require.NoError(t, err)
	require.True(t, first.NeedsInput(), "a 2026-era gate answers input_required: %v", first.Content)
	require.NotEmpty(t, first.RequestState)
	answer := sdk.InputResponseMap{}
	for name := range first.InputRequests {
		answer[name] = &sdk.ElicitResult{Action: "accept", Content: map[string]any{"decision": "approve"}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	second, err := connect(viaHex).CallTool(ctx, &sdk.CallToolParams{
		Name: "kube_query", Arguments: map[string]any{"question": "scale web"},
		InputResponses: answer, RequestState: first.RequestState,
	})
	require.NoError(t, err)
	require.False(t, second.IsError, "%v", second.Content)
	assert.Contains(t, second.StructuredContent.(map[string]any)["answer"], "Scaled to 3.")
	assert.Equal(t, 1, backend.Received("approve"), "the hex replica opened the base64 replica's state")
}

// README: `--log-level` sets what reaches stderr: each level lets through
// its own lines and those above it.
func TestBinaryLogLevel(t *testing.T) {
	bin := kubeqMCPBinary(t)
	backend := binaryBackend(t)
	turn := func(level string) string {
		stderr := &syncBuffer{}
		cmd := exec.Command(bin, "--url", backend.URL, "--log-level", level, "--retry-delays", "")
		cmd.Stderr = stderr
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cs, err := sdk.NewClient(&sdk.Implementation{Name: "log-level", Version: "1"}, nil).
			Connect(ctx, &sdk.CommandTransport{Command: cmd}, nil)
		require.NoError(t, err)
		backend.Fault(kubeqtest.Respond(http.StatusServiceUnavailable)) // the first call fails: a WARN line
		res, err := binQuery(cs, map[string]any{"question": "why is checkout crashing?", "conversation_id": "conv-" + level})
		require.NoError(t, err)
		require.True(t, res.IsError, "the 503 fails the call")
		res, err = binQuery(cs, map[string]any{"question": "why is checkout crashing?", "conversation_id": "conv-" + level})
		require.NoError(t, err)
		require.False(t, res.IsError, "%v", res.Content)
		require.NoError(t, cs.Close()) // waits for the process to exit
		return stderr.String()
	}
	for level, want := range map[string][]bool{ // DEBUG, INFO, WARN lines
		"debug": {true, true, true},
		"info":  {false, true, true},
		"warn":  {false, false, true},
		"error": {false, false, false},
	} {
		out := turn(level)
		for i, l := range []string{"level=DEBUG", "level=INFO", "level=WARN"} {
			assert.Equalf(t, want[i], strings.Contains(out, l), "--log-level %s: %s lines; stderr:\n%s", level, l, out)
		}
	}
}

// README: `--confirm-high-risk none`: approving a high-risk command needs
// no typed name; the form has no confirmation field.
func TestBinaryConfirmHighRiskNone(t *testing.T) {
	bin := kubeqMCPBinary(t)
	backend := binaryBackend(t)
	backend.Handle("delete web-1", kubeqtest.Script{kubeqtest.Gate{
		Command: "kubectl delete pod web-1 -n shop", Risk: "high", ActionID: "act-del",
		OnApprove: kubeqtest.Script{kubeqtest.Tokens("Deleted.")},
	}})
	var forms []*sdk.ElicitParams
	cmd := exec.Command(bin, "--url", backend.URL, "--confirm-high-risk", "none")
	cmd.Stderr = &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "confirm-none", Version: "1"}, &sdk.ClientOptions{
		ElicitationHandler: func(_ context.Context, req *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
			forms = append(forms, req.Params)
			return &sdk.ElicitResult{Action: "accept", Content: map[string]any{"decision": "approve"}}, nil
		},
	}).Connect(ctx, &sdk.CommandTransport{Command: cmd}, &sdk.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cs.Close() })
	res, err := binQuery(cs, map[string]any{"question": "delete web-1"})
	require.NoError(t, err)
	require.False(t, res.IsError, "%v", res.Content)
	require.Len(t, forms, 1)
	props, _ := forms[0].RequestedSchema.(map[string]any)["properties"].(map[string]any)
	assert.NotContains(t, props, "confirm", "no confirmation field with --confirm-high-risk none")
	assert.Contains(t, forms[0].Message, "Risk: HIGH")
	assert.Equal(t, 1, backend.Received("approve"))
}

// README: problems found as the server starts stop it with exit 1 and an
// ERROR line `msg="kubeq-mcp stopped" err=…`.
func TestBinaryStartupFailuresExitOne(t *testing.T) {
	bin := kubeqMCPBinary(t)
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("this is not a certificate\n"), 0o600))
	cases := map[string]struct {
		args []string
		env  string
		want string
	}{
		"audit log cannot be opened": {[]string{"--url", "http://127.0.0.1:9", "--audit-log", filepath.Join(t.TempDir(), "missing", "audit.jsonl")}, "", "--audit-log: open "},
		"CA file with no PEM":        {[]string{"--url", "https://127.0.0.1:9", "--ca-cert", notPEM}, "", "holds no PEM certificate"},
		"bad demo pace":              {[]string{"--demo"}, "KUBEQ_MCP_DEMO_PACE=fast", `KUBEQ_MCP_DEMO_PACE \"fast\": must be a number from 0`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(bin, c.args...)
			cmd.Env = append(os.Environ(), c.env)
			cmd.Stdin = strings.NewReader("")
			var stdout strings.Builder
			cmd.Stdout = &stdout
			stderr := &syncBuffer{}
			cmd.Stderr = stderr
			err := cmd.Run()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, stderr.String())
			assert.Equal(t, 1, exit.ExitCode())
			assert.Contains(t, stderr.String(), `level=ERROR msg="kubeq-mcp stopped" err=`)
			assert.Contains(t, stderr.String(), c.want)
			assert.Empty(t, stdout.String(), "stdout carries JSON-RPC only")
		})
	}
}

// README: kubeq-mcp serves the optional standalone GET stream, and stops
// on SIGINT, closing it, with exit 0 within the 10 s the README promises.
func TestBinaryGETStreamAndSIGINT(t *testing.T) {
	bin := kubeqMCPBinary(t)
	backend := binaryBackend(t)
	stderr := &syncBuffer{}
	cmd, endpoint := startHTTPBinary(t, bin, stderr, "--url", backend.URL)

	res := postMCP(t, endpoint, rawInitialize, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	session := res.Header.Get("Mcp-Session-Id")
	require.NotEmpty(t, session)
	sh := map[string]string{"Mcp-Session-Id": session, "Mcp-Protocol-Version": "2025-11-25"}
	assert.Equal(t, http.StatusAccepted, postMCP(t, endpoint, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, sh).StatusCode)

	req, err := http.NewRequest(http.MethodGet, endpoint, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range sh {
		req.Header.Set(k, v)
	}
	get, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer get.Body.Close()
	require.Equal(t, http.StatusOK, get.StatusCode, "the standalone GET stream is served")
	assert.True(t, strings.HasPrefix(get.Header.Get("Content-Type"), "text/event-stream"), get.Header.Get("Content-Type"))
	streamEnded := make(chan struct{})
	go func() {
		defer close(streamEnded)
		sc := bufio.NewScanner(get.Body)
		for sc.Scan() {
		}
	}()

	start := time.Now()
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "exit status after SIGINT; stderr:\n%s", stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("no exit within 10 s of SIGINT; stderr:\n%s", stderr.String())
	}
	t.Logf("exited %v after SIGINT", time.Since(start))
	select {
	case <-streamEnded:
	case <-time.After(5 * time.Second):
		t.Fatal("the GET stream stayed open after the process exited")
	}
}
