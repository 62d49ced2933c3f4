package server

import (
	"context"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// drainSession is an initialized mcp-go client session whose notification
// channel a goroutine empties, so the forwarder can be measured on its
// own, without a transport.
type drainSession struct {
	ch   chan mcp.JSONRPCNotification
	seen atomic.Int64
}

func newDrainSession(b *testing.B) *drainSession {
	s := &drainSession{ch: make(chan mcp.JSONRPCNotification, 100)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range s.ch {
			s.seen.Add(1)
		}
	}()
	b.Cleanup(func() { close(s.ch); <-done })
	return s
}

func (s *drainSession) Initialize()                                         {}
func (s *drainSession) Initialized() bool                                   { return true }
func (s *drainSession) NotificationChannel() chan<- mcp.JSONRPCNotification { return s.ch }
func (s *drainSession) SessionID() string                                   { return "bench" }

// benchForwarder is a forwarder inside a tool call, as handleQuery has it.
func benchForwarder(b *testing.B) (*forwarder, *drainSession) {
	srv, err := New(Config{KeepAliveInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	sess := newDrainSession(b)
	ctx := srv.mcp.WithContext(context.WithValue(b.Context(), notifierKey{}, &notifier{s: srv}), sess)
	var req mcp.CallToolRequest
	req.Params.Meta = &mcp.Meta{ProgressToken: "bench"}
	f := srv.newForwarder(ctx, req)
	if f == nil {
		b.Fatal("no forwarder")
	}
	return f, sess
}

// BenchmarkForwarderTokens: one answer token (6 bytes) into the coalescer;
// every ~43 tokens make one progress notification (256-byte flushes).
func BenchmarkForwarderTokens(b *testing.B) {
	f, sess := benchForwarder(b)
	tok := kubeq.Token{Content: "token "}
	b.ReportAllocs()
	b.SetBytes(int64(len(tok.Content)))
	for b.Loop() {
		f.event(tok)
	}
	f.close()
	sent, dropped := f.n.stats()
	b.ReportMetric(float64(sent)/float64(b.N), "notifications/op")
	b.ReportMetric(float64(dropped)/float64(b.N), "dropped/op")
	_ = sess
}

// BenchmarkForwarderMixed: a status event after every 20 tokens, so each
// status flushes the tokens before it (two notifications per 21 events).
func BenchmarkForwarderMixed(b *testing.B) {
	f, _ := benchForwarder(b)
	tok := kubeq.Token{Content: "token "}
	st := kubeq.Status{Phase: "investigating", Message: "Gathering evidence…"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%21 == 20 {
			f.event(st)
		} else {
			f.event(tok)
		}
		i++
	}
	f.close()
	b.ReportMetric(float64(f.n.sent)/float64(b.N), "notifications/op")
}

// BenchmarkQueryTurnStdio: a whole kube_query of 10,000 answer-token frames
// from the fake backend through the real server and the go-sdk client over
// in-process stdio pipes: parse, forward, coalesce, accumulate, return.
// The client's decoding of the result is in the figure too.
func BenchmarkQueryTurnStdio(b *testing.B) {
	const tokens = 10_000
	backend := kubeqtest.NewServer(kubeqtest.WithHeartbeat(0))
	b.Cleanup(backend.Close)
	// One Raw write of pre-rendered frames, so the fake's per-frame cost
	// stays out of the measurement.
	var frames, want strings.Builder
	for i := range tokens {
		w := "tok" + strconv.Itoa(i%100) + " "
		frames.WriteString("data: " + kubeqtest.PyJSON(kubeqtest.Obj{
			{Key: "id", Val: "chatcmpl-0123456789ab"}, {Key: "object", Val: "chat.completion.chunk"},
			{Key: "created", Val: 1767225629}, {Key: "model", Val: "kubeintellect"},
			{Key: "choices", Val: []kubeqtest.Obj{{{Key: "index", Val: 0},
				{Key: "delta", Val: kubeqtest.Obj{{Key: "content", Val: w}, {Key: "role", Val: "assistant"}}},
				{Key: "finish_reason", Val: nil}}}},
		}) + "\n\n")
		want.WriteString(w)
	}
	backend.Handle("flood", kubeqtest.Script{kubeqtest.Raw([]byte(frames.String()))})
	srv := benchServer(b, backend.URL)
	cr, sw := io.Pipe()
	sr, cw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.ServeStdio(ctx, sr, sw) }()
	b.Cleanup(func() { cancel(); _ = cw.Close(); _ = sw.Close(); <-served })
	var progress atomic.Int64
	c := sdk.NewClient(&sdk.Implementation{Name: "bench", Version: "1"}, &sdk.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *sdk.ProgressNotificationClientRequest) { progress.Add(1) },
	})
	cs, err := c.Connect(b.Context(), &sdk.IOTransport{Reader: cr, Writer: cw}, &sdk.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cs.Close() })
	b.ReportAllocs()
	for b.Loop() {
		p := &sdk.CallToolParams{Name: "kube_query", Arguments: map[string]any{"question": "flood"}}
		p.SetProgressToken("bench")
		res, err := cs.CallTool(b.Context(), p)
		if err != nil {
			b.Fatal(err)
		}
		if m, _ := res.StructuredContent.(map[string]any); m == nil || m["answer"] != want.String() {
			b.Fatalf("wrong answer: %s", textOf(res))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tokens), "ns/token")
	b.ReportMetric(float64(progress.Load())/float64(b.N), "notifications/op")
}

// benchServer is a server with the default configuration (no retries, no
// keep-alives) in front of the backend at url, closed when b ends.
func benchServer(b *testing.B, url string) *Server {
	b.Helper()
	client, err := kubeq.New(url, kubeq.WithRetryDelays())
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(Config{Backend: client, KeepAliveInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	return srv
}
