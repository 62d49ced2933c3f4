package e2etest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/kubeq-mcp/kubeq-mcp/internal/fakebackend"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"

	"github.com/kubeq-mcp/kubeq-mcp/internal/testskip"
)

// calls is how many kube_query calls each transport and era makes
// (KUBEQ_E2E_CALLS, default 1000).
func calls(t *testing.T) int {
	if testskip.InCI() && os.Getenv("KUBEQ_E2E_CALLS") != "" {
		t.Fatal("CI=true: KUBEQ_E2E_CALLS may not shorten the run")
	}
	n, err := strconv.Atoi(os.Getenv("KUBEQ_E2E_CALLS"))
	if err != nil || n <= 0 {
		return 1000
	}
	return n
}

func skipUnlessEnabled(t *testing.T) {
	t.Helper()
	if testing.Short() {
		testskip.Skip(t, "slow end-to-end test; skipped with -short")
	}
	if os.Getenv("KUBEQ_E2E_PROGRESS") != "1" {
		testskip.Skip(t, "set KUBEQ_E2E_PROGRESS=1 to run (scripts/test.sh does)")
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds kubeq-mcp once per test process.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kubeq-e2etest")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "kubeq-mcp")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/kubeq-mcp/kubeq-mcp").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// TestProgressBeforeResult makes many kube_query calls over each transport
// and protocol era with the go-sdk client and counts, on the wire, how many
// progress notifications came before their call's result. Every call must
// stream all its steps and its whole answer as progress before the result.
func TestProgressBeforeResult(t *testing.T) {
	skipUnlessEnabled(t)
	bin := binary(t)
	fake := kubeqtest.NewServer()
	t.Cleanup(fake.Close)
	fakebackend.Install(fake)

	// "http+get" keeps the client's standalone GET stream open during the
	// calls (a 2025-era session has one; the 2026-07-28 draft has none): a
	// call's progress must still come on its own POST stream, ahead of its
	// result.
	for _, transport := range []string{"stdio", "http", "http+get"} {
		for _, era := range []string{"2025-11-25", "2026-07-28"} {
			if transport == "http+get" && era != "2025-11-25" {
				continue
			}
			t.Run(transport+"/"+era, func(t *testing.T) {
				w := newWireLog()
				cs := connect(t, bin, fake.URL, transport, era, w)
				// A run that fell back to another era would measure that era
				// under this one's name.
				if got := cs.InitializeResult().ProtocolVersion; got != era {
					t.Fatalf("negotiated protocol %s, asked for %s", got, era)
				}
				if transport == "http+get" {
					waitGETStream(t, w)
				}
				measure(t, cs, w, transport, era)
				checkPings(t, w, transport, era)
			})
		}
	}
}

// checkPings: the 2026-07-28 revision removed ping, so a 2026-era client
// must never get one; over stdio a 2025-era client does (the ordering guard
// for TypeScript clients pings after a call's last progress).
func checkPings(t *testing.T, w *wireLog, transport, era string) {
	t.Helper()
	pings := w.serverPings()
	t.Logf("server pings on the wire: %d", pings)
	switch {
	case era == "2026-07-28" && pings > 0:
		t.Errorf("%s %s: the server sent %d pings to a 2026-era client", transport, era, pings)
	case era == "2025-11-25" && transport == "stdio" && pings == 0:
		t.Errorf("%s %s: no ping: the stdio ordering guard did not run", transport, era)
	}
}

// waitGETStream waits until the server answered the client's standalone GET
// stream, so the calls run while it is open.
func waitGETStream(t *testing.T, w *wireLog) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for w.getStreams() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the server never opened the standalone GET stream the client asked for")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func connect(t *testing.T, bin, backend, transport, era string, w *wireLog) *sdk.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := sdk.NewClient(&sdk.Implementation{Name: "kubeq-e2etest", Version: "0"}, nil)
	args := []string{"--url", backend, "--retry-delays", "", "--log-level", "error"}
	var tr sdk.Transport
	switch transport {
	case "stdio":
		cmd := exec.Command(bin, args...)
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = stdin.Close()
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
		tr = &sdk.IOTransport{Reader: w.tee(stdout), Writer: w.requestWriter(stdin)}
	case "http", "http+get":
		url := startHTTP(t, bin, args)
		tr = &sdk.StreamableClientTransport{Endpoint: url, HTTPClient: w.httpClient(), MaxRetries: -1,
			DisableStandaloneSSE: transport == "http"}
	}
	cs, err := client.Connect(ctx, tr, &sdk.ClientSessionOptions{ProtocolVersion: era})
	if err != nil {
		t.Fatalf("connect over %s (%s): %v", transport, era, err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// startHTTP runs the binary with --transport http on a free port and
// returns its /mcp URL once /healthz answers.
func startHTTP(t *testing.T, bin string, args []string) string {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(bin, append([]string{"--transport", "http", "--addr", addr}, args...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := httpGet("http://" + addr + "/healthz")
		if err == nil && res == 200 {
			return "http://" + addr + "/mcp"
		}
		if time.Now().After(deadline) {
			t.Fatalf("kubeq-mcp did not come up on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// measure makes the calls and reports the figures.
func measure(t *testing.T, cs *sdk.ClientSession, w *wireLog, transport, era string) {
	n := calls(t)
	steps := fakebackend.DiagnosticSteps
	incomplete, failed := 0, 0
	start := time.Now()
	for i := range n {
		token := fmt.Sprintf("%s-%s-%d", transport, era, i)
		p := &sdk.CallToolParams{Name: "kube_query", Arguments: map[string]any{"question": fakebackend.DiagnosticQuestion}}
		p.SetProgressToken(token)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res, err := cs.CallTool(ctx, p)
		cancel()
		if err != nil || res.IsError {
			failed++
			if failed <= 3 {
				t.Errorf("call %d: err=%v result=%v", i, err, res)
			}
			continue
		}
		if !w.waitResult(token, 5*time.Second) {
			t.Fatalf("call %d: result never seen on the wire", i)
		}
		if !w.complete(token, steps, fakebackend.DiagnosticAnswer) {
			incomplete++
			if incomplete <= 3 {
				t.Logf("call %d: progress before the result was %q", i, w.steps[token])
			}
		}
	}
	elapsed := time.Since(start)
	time.Sleep(200 * time.Millisecond) // stragglers count as "after"
	before, after := w.totals()
	line := fmt.Sprintf("progress-before-result transport=%s era=%s calls=%d failed=%d complete_before_result=%d "+
		"notifications_before=%d notifications_after=%d elapsed=%s",
		transport, era, n, failed, n-failed-incomplete, before, after, elapsed.Round(time.Millisecond))
	t.Log(line)
	fmt.Println(line)
	if failed > 0 || incomplete > 0 || after > 0 {
		if knownFailure(t, transport+"/"+era) {
			t.Logf("KNOWN FAILURE (KUBEQ_E2E_PROGRESS_XFAIL): %s %s: %d failed calls, %d calls without all progress before the result, %d notifications after their result",
				transport, era, failed, incomplete, after)
			return
		}
		t.Errorf("%s %s: %d failed calls, %d calls without all progress before the result, %d notifications after their result",
			transport, era, failed, incomplete, after)
	}
}

// complete reports whether token's call streamed every step, in order, and
// the whole answer as progress before its result.
func (w *wireLog) complete(token string, steps []string, answer string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	got := w.steps[token]
	if len(got) < len(steps)+1 {
		return false
	}
	for i, s := range steps {
		if got[i] != s {
			return false
		}
	}
	return strings.Join(got[len(steps):], "") == answer
}

func (w *wireLog) totals() (before, after int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, v := range w.before {
		before += v
	}
	for _, v := range w.after {
		after += v
	}
	return before, after
}

// knownFailure reports whether KUBEQ_E2E_PROGRESS_XFAIL (comma-separated
// transport/era) lists name: its misses are logged, not failed. Never in CI.
func knownFailure(t *testing.T, name string) bool {
	if testskip.InCI() && os.Getenv("KUBEQ_E2E_PROGRESS_XFAIL") != "" {
		t.Fatal("CI=true: KUBEQ_E2E_PROGRESS_XFAIL may not excuse a failure")
	}
	for _, k := range strings.Split(os.Getenv("KUBEQ_E2E_PROGRESS_XFAIL"), ",") {
		if strings.TrimSpace(k) == name {
			return true
		}
	}
	return false
}
