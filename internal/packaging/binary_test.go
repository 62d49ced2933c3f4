package packaging

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The snippets' commands, flags and URLs work against the real kubeq-mcp: each stdio snippet
// starts the binary and a go-sdk client lists its tools through it; each HTTP snippet's URL
// and bearer header reach a running kubeq-mcp over streamable HTTP.
func TestSnippetsStartTheServer(t *testing.T) {
	bin := buildBinary(t)
	wantTools := manifestToolNames(t)

	t.Run("flags", func(t *testing.T) {
		out, _ := exec.Command(bin, "-h").CombinedOutput() // -h exits 0 or 2 by flag package rules
		for name := range knownFlags {
			if !regexp.MustCompile(`(?m)^\s+-` + regexp.QuoteMeta(name) + `\b`).Match(out) {
				t.Errorf("kubeq-mcp -h does not list -%s; the snippets' flag list is out of date", name)
			}
		}
	})

	launches, remotes := exampleServers(t)
	launches = append(launches, manifestLaunch(t))
	for _, l := range launches {
		t.Run("stdio "+l.source, func(t *testing.T) {
			got := stdioToolNames(t, bin, l)
			if !slices.Equal(got, wantTools) {
				t.Errorf("tools %v, want %v (the mcpb manifest's list)", got, wantTools)
			}
		})
	}

	t.Run("http", func(t *testing.T) {
		const token = "packaging-test-token-2f7c9e41"
		base := startHTTPServer(t, bin, token)
		resp, err := http.Post(base+"/mcp", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatalf("POST /mcp without a token: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST /mcp without a token: status %d, want 401 (docs/clients.md says so)", resp.StatusCode)
		}
		for _, r := range remotes {
			t.Run(r.source, func(t *testing.T) {
				got := httpToolNames(t, base, token, r)
				if !slices.Equal(got, wantTools) {
					t.Errorf("tools %v, want %v", got, wantTools)
				}
			})
		}
	})
}

// buildBinary builds the root package into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	bin := filepath.Join(t.TempDir(), "kubeq-mcp")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func manifestToolNames(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, tool := range readManifest(t).Tools {
		names = append(names, tool.Name)
	}
	sort.Strings(names)
	return names
}

// manifestLaunch is the process Claude Desktop starts from the bundle, with default settings.
func manifestLaunch(t *testing.T) launch {
	t.Helper()
	m := readManifest(t)
	cfg := m.Server.MCPConfig
	l := launch{source: "mcpb/manifest.json", command: m.substitute(cfg.Command, "/bundle"), env: map[string]string{}}
	for _, a := range cfg.Args {
		l.args = append(l.args, m.substitute(a, "/bundle"))
	}
	for k, v := range cfg.Env {
		l.env[k] = m.substitute(v, "/bundle")
	}
	return l
}

// isolatedEnv is a minimal environment, so a developer's own KUBE_Q_* settings do not leak in.
func isolatedEnv(extra map[string]string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}
	for k, v := range extra {
		if strings.Contains(v, "${") { // a client-side input or variable, filled in by the client
			v = "client-supplied-value"
		}
		env = append(env, k+"="+v)
	}
	return env
}

func stdioToolNames(t *testing.T, bin string, l launch) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.Command(bin, l.args...)
	cmd.Env = isolatedEnv(l.env)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	client := mcp.NewClient(&mcp.Implementation{Name: "packaging-test", Version: "0"}, nil)
	session, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: 2 * time.Second}, nil)
	if err != nil {
		t.Fatalf("start %v: %v", l.args, err)
	}
	names, err := toolNames(ctx, session)
	session.Close() // waits for the process, so stderr is complete below
	if err != nil {
		t.Fatalf("list tools: %v\nstderr:\n%s", err, stderr.String())
	}
	return names
}

// startHTTPServer runs kubeq-mcp over HTTP on a free loopback port, with the token from the
// environment as in the container, and returns its base URL once /healthz answers.
func startHTTPServer(t *testing.T, bin, token string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "--transport", "http", "--addr", addr, "--demo")
	cmd.Env = isolatedEnv(map[string]string{"KUBEQ_MCP_HTTP_TOKEN": token})
	var stderr syncBuffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz") // no token: probes must not need one
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("kubeq-mcp exited: %v\n%s", err, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz did not answer 200 within 15s (last error %v)\n%s", err, stderr.String())
		}
	}
}

// httpToolNames connects to the running server the way the snippet says: its path, and its
// Authorization header with the real token in place of the snippet's placeholder.
func httpToolNames(t *testing.T, base, token string, r remote) []string {
	t.Helper()
	u, err := url.Parse(r.url)
	if err != nil {
		t.Fatalf("url %q: %v", r.url, err)
	}
	endpoint := base + u.Path
	headers := http.Header{}
	for k, v := range r.headers {
		if k == "Authorization" {
			v = "Bearer " + token
		}
		headers.Set(k, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	transport := &mcp.StreamableClientTransport{
		Endpoint:   endpoint,
		HTTPClient: &http.Client{Transport: headerTransport{headers, http.DefaultTransport}},
		MaxRetries: -1,
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "packaging-test", Version: "0"}, nil)
	session, err := client.Connect(ctx, transport, nil)
	if err != nil {
		t.Fatalf("connect to %s: %v", endpoint, err)
	}
	defer session.Close()
	names, err := toolNames(ctx, session)
	if err != nil {
		t.Fatalf("list tools: %v", err)
	}
	return names
}

func toolNames(ctx context.Context, s *mcp.ClientSession) ([]string, error) {
	res, err := s.ListTools(ctx, nil)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	sort.Strings(names)
	return names, nil
}

// headerTransport adds the snippet's headers to every request, as the client would.
type headerTransport struct {
	headers http.Header
	next    http.RoundTripper
}

func (h headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for k, v := range h.headers {
		req.Header[k] = v
	}
	return h.next.RoundTrip(req)
}
