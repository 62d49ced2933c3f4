package server

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The HTTP client's idle keep-alive connections outlive a test briefly.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// eras are the protocol versions a test runs in: pinned to the 2025 era,
// and unpinned (the client's latest: the 2026-07-28 draft).
var eras = []struct{ name, version string }{
	{"2025-11-25", "2025-11-25"},
	{"latest", ""},
}

var transports = []string{"http", "stdio"}

// fixture is one kubeq-mcp server in front of one fake backend.
type fixture struct {
	t       *testing.T
	backend *kubeqtest.Server
	srv     *Server
}

func newFixture(t *testing.T, mutate func(*Config), opts ...kubeqtest.Option) *fixture {
	t.Helper()
	backend := kubeqtest.NewServer(append([]kubeqtest.Option{kubeqtest.WithHeartbeat(20 * time.Millisecond)}, opts...)...)
	t.Cleanup(backend.Close)
	client, err := kubeq.New(backend.URL, kubeq.WithRetryDelays(5*time.Millisecond, 5*time.Millisecond), kubeq.WithTimeout(5*time.Second))
	require.NoError(t, err)
	cfg := Config{
		Backend:           client,
		ConfirmHighRisk:   true,
		ApprovalTimeout:   5 * time.Second,
		KeepAliveInterval: time.Hour,
	}
	if testing.Verbose() {
		cfg.Logger = newTestLogger(t)
	}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	return &fixture{t: t, backend: backend, srv: srv}
}

// progressLog collects progress notifications per token.
type progressLog struct {
	mu   sync.Mutex
	msgs []*sdk.ProgressNotificationParams
}

func (p *progressLog) add(n *sdk.ProgressNotificationParams) {
	p.mu.Lock()
	p.msgs = append(p.msgs, n)
	p.mu.Unlock()
}

func (p *progressLog) messages() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, len(p.msgs))
	for i, m := range p.msgs {
		out[i] = m.Message
	}
	return out
}

func (p *progressLog) values() []float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]float64, len(p.msgs))
	for i, m := range p.msgs {
		out[i] = m.Progress
	}
	return out
}

// clientOpts is what a test's simulated human and client can do.
type clientOpts struct {
	elicit  func(context.Context, *sdk.ElicitRequest) (*sdk.ElicitResult, error) // nil: no elicitation capability
	version string
}

// connect opens a go-sdk client session over transport.
func (f *fixture) connect(transport string, co clientOpts) (*sdk.ClientSession, *progressLog) {
	cs, prog, _ := f.connectWire(transport, co)
	return cs, prog
}

// connectWire is connect that also records what the client reads.
func (f *fixture) connectWire(transport string, co clientOpts) (*sdk.ClientSession, *progressLog, *wireLog) {
	t := f.t
	t.Helper()
	prog := &progressLog{}
	wire := &wireLog{}
	opts := &sdk.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *sdk.ProgressNotificationClientRequest) {
			prog.add(r.Params)
		},
	}
	if co.elicit != nil {
		opts.ElicitationHandler = co.elicit
	}
	cs := f.dial(&sdk.Implementation{Name: "kubeq-mcp-test", Version: "1"}, opts, transport, co.version, wire)
	return cs, prog, wire
}

// dial connects a go-sdk client to the fixture's server over a fresh
// transport ("http" or "stdio"), recording what it reads in wire. The
// session and the transport close when the test ends.
func (f *fixture) dial(impl *sdk.Implementation, opts *sdk.ClientOptions, transport, version string, wire *wireLog) *sdk.ClientSession {
	t := f.t
	t.Helper()
	client := sdk.NewClient(impl, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var tr sdk.Transport
	switch transport {
	case "http":
		hs := httptest.NewServer(f.srv.HTTPHandler())
		t.Cleanup(hs.Close)
		tr = &sdk.StreamableClientTransport{Endpoint: hs.URL + MCPPath, MaxRetries: -1, HTTPClient: wire.httpClient()}
	case "stdio":
		cr, sw := io.Pipe()
		sr, cw := io.Pipe()
		sctx, scancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = f.srv.ServeStdio(sctx, sr, sw)
		}()
		t.Cleanup(func() {
			scancel()
			_ = cw.Close()
			_ = sw.Close()
			<-done
		})
		tr = &sdk.IOTransport{Reader: io.NopCloser(wire.stdioReader(cr)), Writer: cw}
	default:
		t.Fatalf("unknown transport %q", transport)
	}
	cs, err := client.Connect(ctx, tr, &sdk.ClientSessionOptions{ProtocolVersion: version})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// call runs a kube_query with a progress token.
func call(t *testing.T, cs *sdk.ClientSession, args map[string]any) *sdk.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p := &sdk.CallToolParams{Name: "kube_query", Arguments: args}
	p.SetProgressToken(tokenFor(t))
	res, err := cs.CallTool(ctx, p)
	require.NoError(t, err)
	return res
}

func textOf(res *sdk.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func structured(t *testing.T, res *sdk.CallToolResult) map[string]any {
	t.Helper()
	m, ok := res.StructuredContent.(map[string]any)
	require.Truef(t, ok, "structuredContent is %T: %s", res.StructuredContent, textOf(res))
	return m
}

// tokenFor is the progress token call uses in test t.
func tokenFor(t *testing.T) string { return "tok-" + strings.ReplaceAll(t.Name(), "/", "-") }

// waitMessages waits until the client's handlers saw at least n progress
// messages (they run on their own goroutine) and returns them.
func waitMessages(t *testing.T, p *progressLog, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if m := p.messages(); len(m) >= n {
			return m
		}
		time.Sleep(5 * time.Millisecond)
	}
	return p.messages()
}
