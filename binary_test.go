package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"

	"github.com/kubeq-mcp/kubeq-mcp/internal/testskip"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// kubeqMCPBinary builds the product binary once per test run.
func kubeqMCPBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kubeq-mcp-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "kubeq-mcp")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = err
			binPath = string(out)
		}
	})
	require.NoError(t, binErr, binPath)
	return binPath
}

// syncBuffer is a bytes.Buffer safe for a process's writer and a test's reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var binaryAnswer = "Checkout is crash-looping: `DB_URL` is unset — set it in the Secret. ✅"

func binaryBackend(t *testing.T) *kubeqtest.Server {
	backend := kubeqtest.NewServer(kubeqtest.WithHeartbeat(20 * time.Millisecond))
	t.Cleanup(backend.Close)
	backend.Handle("why is checkout crashing?", kubeqtest.Script{
		kubeqtest.Status("analyzing", "Analyzing your request…"),
		kubeqtest.ToolCall("run_kubectl", "kubectl get pods -n shop"),
		kubeqtest.ToolResult("run_kubectl", "checkout-7d4b9cf6-xk2lp   0/1   CrashLoopBackOff"),
		kubeqtest.Tokens(binaryAnswer),
		kubeqtest.Usage(10, 5, 15, 1),
	})
	backend.Handle("slow", kubeqtest.Script{
		kubeqtest.Status("investigating", "Gathering evidence…"),
		kubeqtest.Sleep(time.Minute),
	})
	return backend
}

func TestBinaryStdioFullTurn(t *testing.T) {
	bin := kubeqMCPBinary(t)
	for _, version := range []string{"2025-11-25", ""} {
		t.Run("version="+version, func(t *testing.T) {
			backend := binaryBackend(t)
			var stderr syncBuffer
			cmd := exec.Command(bin, "--url", backend.URL, "--log-level", "debug")
			cmd.Stderr = &stderr
			var mu sync.Mutex
			var progress []string
			client := sdk.NewClient(&sdk.Implementation{Name: "binary-test", Version: "1"}, &sdk.ClientOptions{
				ProgressNotificationHandler: func(_ context.Context, r *sdk.ProgressNotificationClientRequest) {
					mu.Lock()
					progress = append(progress, r.Params.Message)
					mu.Unlock()
				},
			})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cs, err := client.Connect(ctx, &sdk.CommandTransport{Command: cmd}, &sdk.ClientSessionOptions{ProtocolVersion: version})
			require.NoError(t, err, stderr.String())
			defer cs.Close()
			p := &sdk.CallToolParams{Name: "kube_query", Arguments: map[string]any{"question": "why is checkout crashing?", "namespace": "shop"}}
			p.SetProgressToken("bin-1")
			res, err := cs.CallTool(ctx, p)
			require.NoError(t, err)
			require.False(t, res.IsError)
			out := res.StructuredContent.(map[string]any)
			assert.Equal(t, binaryAnswer, out["answer"])
			require.Eventually(t, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(progress) >= 4
			}, 5*time.Second, 5*time.Millisecond)
			mu.Lock()
			assert.Contains(t, progress, "[analyzing] Analyzing your request…")
			mu.Unlock()
			assert.NotContains(t, stderr.String(), "panic")
		})
	}
}

// TestBinaryStdoutIsOnlyJSONRPC drives the binary by hand and checks that
// every line it writes to stdout is a JSON-RPC 2.0 message, with logging
// at debug so that any stray print would show.
func TestBinaryStdoutIsOnlyJSONRPC(t *testing.T) {
	bin := kubeqMCPBinary(t)
	backend := binaryBackend(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--url", backend.URL, "--log-level", "debug", "--api-key", "sk-secret-key-123")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())

	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	send := func(s string) { _, err := stdin.Write([]byte(s + "\n")); require.NoError(t, err) }
	send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	send(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	send(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"kube_query","arguments":{"question":"why is checkout crashing?"},"_meta":{"progressToken":7}}}`)
	send(`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"kube_health","arguments":{}}}`)
	send(`{"jsonrpc":"2.0","id":5,"method":"no/such/method"}`)
	send(`this is not json`)

	seen := map[float64]bool{}
	progress := 0
	for len(seen) < 6 { // ids 1..5 and the parse error (id null → 0)
		select {
		case line, ok := <-lines:
			require.True(t, ok, "stdout closed early; stderr:\n%s", stderr.String())
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &m), "stdout line is not JSON: %q", line)
			require.Equal(t, "2.0", m["jsonrpc"], "stdout line is not JSON-RPC 2.0: %q", line)
			if m["method"] == "notifications/progress" {
				progress++
				continue
			}
			id, _ := m["id"].(float64)
			seen[id] = true
			assert.NotContains(t, line, "sk-secret-key-123")
		case <-ctx.Done():
			t.Fatalf("timed out; saw ids %v; stderr:\n%s", seen, stderr.String())
		}
	}
	assert.Positive(t, progress)
	require.NoError(t, stdin.Close())
	require.NoError(t, cmd.Wait(), "the server must exit 0 when stdin closes")
	assert.NotContains(t, stderr.String(), "sk-secret-key-123", "the API key must never be logged")
	assert.Contains(t, stderr.String(), "kubeq-mcp starting")
}

// TestBinaryHTTPAndGracefulShutdown serves HTTP, starts a long call, and
// sends SIGTERM: the call is cancelled, the backend request closed, and
// the process exits 0.
func TestBinaryHTTPAndGracefulShutdown(t *testing.T) {
	bin := kubeqMCPBinary(t)
	backend := binaryBackend(t)
	stderr := &syncBuffer{}
	cmd, endpoint := startHTTPBinary(t, bin, stderr, "--url", backend.URL, "--http-token", "tok-123-binary-http-test")

	hc := &httpClientWithToken{token: "tok-123-binary-http-test"}
	client := sdk.NewClient(&sdk.Implementation{Name: "binary-http", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc.client(), MaxRetries: -1}, nil)
	require.NoError(t, err)
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "kube_query", Arguments: map[string]any{"question": "why is checkout crashing?"}})
	require.NoError(t, err)
	assert.Equal(t, binaryAnswer, res.StructuredContent.(map[string]any)["answer"])

	go func() {
		_, _ = cs.CallTool(ctx, &sdk.CallToolParams{Name: "kube_query", Arguments: map[string]any{"question": "slow"}})
	}()
	require.NoError(t, backend.Wait(ctx, func(log []kubeqtest.Request) bool {
		for _, r := range log {
			if r.Question == "slow" {
				return true
			}
		}
		return false
	}))
	var slow kubeqtest.Request
	for _, r := range backend.ChatRequests() {
		if r.Question == "slow" {
			slow = r
		}
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "exit status after SIGTERM; stderr:\n%s", stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("no exit within 10s of SIGTERM; stderr:\n%s", stderr.String())
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer wcancel()
	_, err = backend.WaitForDisconnect(wctx, slow.Session)
	require.NoError(t, err, "the in-flight backend request must be closed")
	assert.NotContains(t, stderr.String(), "tok-123-binary-http-test", "the HTTP token must never be logged")
	_ = cs.Close()
}

func TestBinaryRefusesBadConfiguration(t *testing.T) {
	bin := kubeqMCPBinary(t)
	cases := map[string]struct {
		args []string
		want string
	}{
		"bad url":          {[]string{"--url", "ftp//x"}, "--url"},
		"missing ca":       {[]string{"--ca-cert", "/does/not/exist.pem"}, "--ca-cert"},
		"open address":     {[]string{"--transport", "http", "--addr", "0.0.0.0:8080"}, "--http-token"},
		"bad transport":    {[]string{"--transport", "carrier-pigeon"}, "--transport"},
		"bad state key":    {[]string{"--state-key", "short"}, "--state-key"},
		"bad retry delays": {[]string{"--retry-delays", "1s,soon"}, "--retry-delays"},
		"bad confirm mode": {[]string{"--confirm-high-risk", "maybe"}, "--confirm-high-risk"},
		// Any web page could call the server and answer its approval form.
		"every origin, no token": {[]string{"--transport", "http", "--allowed-origins", "*"}, "--allowed-origins '*' lets any web page call this server: set --http-token"},
		"short token":            {[]string{"--transport", "http", "--http-token", "abc"}, "--http-token is 3 bytes: use at least 16"},
		"url trailing space":     {[]string{"--url", "http://localhost:8000/ "}, `--url "http://localhost:8000/": contains white space`},
		"url port too big":       {[]string{"--url", "http://localhost:80000"}, "--url: port 80000 is not a TCP port (1-65535)"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := exec.Command(bin, c.args...).CombinedOutput()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit)
			assert.Equal(t, 2, exit.ExitCode())
			assert.Contains(t, string(out), c.want)
			assert.Equal(t, 1, strings.Count(strings.TrimSpace(string(out)), "\n")+1, "one clear line: %s", out)
		})
	}
	out, err := exec.Command(bin, "--version").Output()
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(out), "kubeq-mcp "))
}

// A build without -X main.version reports the module version the go
// command stamped (a pseudo-version with the commit inside a checkout), not
// "dev", so `go install` and plain `docker build` users can say what they run.
// Both paths are built every time, wherever the tests run: the stamped one
// from a copy of the sources committed to a fresh git repository (a tarball
// or a CI checkout without .git is no excuse), the unstamped one with
// -buildvcs=false; -X main.version wins over both.
func TestVersionFromBuildInfo(t *testing.T) {
	if testing.Short() {
		testskip.Skip(t, "builds three binaries: skipped with -short")
	}
	version := func(t *testing.T, dir string, args ...string) string {
		t.Helper()
		bin := filepath.Join(t.TempDir(), "kubeq-mcp")
		build := exec.Command("go", append(append([]string{"build"}, args...), "-o", bin, ".")...)
		build.Dir = dir
		build.Env = append(os.Environ(), "GOWORK=off")
		out, err := build.CombinedOutput()
		require.NoError(t, err, "%s", out)
		out, err = exec.Command(bin, "--version").Output()
		require.NoError(t, err)
		return string(out)
	}
	t.Run("git checkout", func(t *testing.T) {
		dir, commit := committedCopy(t)
		got := version(t, dir, "-buildvcs=true")
		assert.Regexp(t, `^kubeq-mcp v0\.0\.0-\d{14}-`+commit[:12]+`\n$`, got)
	})
	t.Run("no vcs", func(t *testing.T) {
		assert.Equal(t, "kubeq-mcp dev\n", version(t, ".", "-buildvcs=false"))
	})
	t.Run("ldflags", func(t *testing.T) {
		assert.Equal(t, "kubeq-mcp v9.8.7\n", version(t, ".", "-buildvcs=false", "-ldflags", "-X main.version=v9.8.7"))
	})
}

// committedCopy copies the module's files (tracked and untracked, not
// ignored) into a fresh git repository with one commit, and returns its
// directory and commit hash.
func committedCopy(t *testing.T) (string, string) {
	t.Helper()
	git := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=kubeq-test", "-c", "user.email=test@kubeq.invalid",
			"-c", "commit.gpgsign=false"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.Output()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("git %v: %v\n%s", args, err, exit.Stderr)
		}
		require.NoError(t, err, "git %v", args)
		return string(out)
	}
	dst := t.TempDir()
	var files []string
	if _, err := os.Stat(".git"); err == nil {
		files = strings.Split(strings.TrimRight(git(".", "ls-files", "-z", "--cached", "--others", "--exclude-standard"), "\x00"), "\x00")
	} else {
		// Not a checkout (a source tarball): take every file but build output.
		require.NoError(t, filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (p == "dist" || strings.HasSuffix(p, "node_modules") || strings.HasPrefix(d.Name(), ".") && p != ".") {
				return filepath.SkipDir
			}
			if d.Type().IsRegular() {
				files = append(files, p)
			}
			return nil
		}))
	}
	copied := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the work tree, still in the index
		}
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Join(dst, filepath.Dir(f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dst, f), data, 0o644))
		copied++
	}
	require.Greater(t, copied, 10, "copied only %d files", copied)
	git(dst, "init", "-q")
	git(dst, "add", "-A")
	git(dst, "commit", "-q", "-m", "snapshot")
	return dst, strings.TrimSpace(git(dst, "rev-parse", "HEAD"))
}

// startHTTPBinary starts bin with --transport http on a free loopback port
// and the given flags, and returns it with its /mcp endpoint, read from the
// start-up log once it is serving. The process is killed at cleanup.
func startHTTPBinary(t testing.TB, bin string, stderr *syncBuffer, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, append(args, "--transport", "http", "--addr", "127.0.0.1:0")...)
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	re := regexp.MustCompile(`mcp=(http://127\.0\.0\.1:\d+/mcp)`)
	var endpoint string
	require.Eventually(t, func() bool {
		m := re.FindStringSubmatch(stderr.String())
		if m != nil {
			endpoint = m[1]
		}
		return m != nil
	}, 20*time.Second, 10*time.Millisecond, stderr.String())
	return cmd, endpoint
}
