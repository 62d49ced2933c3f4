package server

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/kubeq-mcp/kubeq-mcp/internal/fakebackend"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// BenchmarkQueryDiagnosticHTTP: the call of the bench's CPU-per-call
// scenario in one process: a go-sdk client over streamable HTTP asks the
// diagnostic question with a progress token, following up on one
// conversation, against the fake backend over loopback HTTP. Its allocs/op
// (client and fake included) compare two builds of the server exactly,
// where the bench's sampled profiles cannot.
func BenchmarkQueryDiagnosticHTTP(b *testing.B) {
	fake := kubeqtest.NewServer()
	b.Cleanup(fake.Close)
	fakebackend.Install(fake)
	backend := httptest.NewServer(fakebackend.Handler(fake))
	b.Cleanup(backend.Close)
	srv := benchServer(b, backend.URL)
	hs := httptest.NewServer(srv.HTTPHandler())
	b.Cleanup(hs.Close)
	var progress atomic.Int64
	c := sdk.NewClient(&sdk.Implementation{Name: "bench", Version: "1"}, &sdk.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *sdk.ProgressNotificationClientRequest) { progress.Add(1) },
	})
	cs, err := c.Connect(b.Context(), &sdk.StreamableClientTransport{Endpoint: hs.URL + MCPPath, MaxRetries: -1},
		&sdk.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cs.Close() })
	conv := ""
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		args := map[string]any{"question": fakebackend.DiagnosticQuestion}
		if conv != "" {
			args["conversation_id"] = conv
		}
		p := &sdk.CallToolParams{Name: "kube_query", Arguments: args}
		p.SetProgressToken(fmt.Sprintf("b-%d", i))
		i++
		res, err := cs.CallTool(b.Context(), p)
		if err != nil {
			b.Fatal(err)
		}
		out, _ := res.StructuredContent.(map[string]any)
		if res.IsError || out["answer"] != fakebackend.DiagnosticAnswer {
			b.Fatalf("not the diagnostic answer: %s", textOf(res))
		}
		if conv, _ = out["conversation_id"].(string); conv == "" {
			b.Fatalf("no conversation_id to follow up on: %s", textOf(res))
		}
	}
	// A build that stopped forwarding progress would allocate less. The
	// client may run its handler after returning the result: wait for it.
	want := int64(i * (len(fakebackend.DiagnosticSteps) + 1))
	for end := time.Now().Add(5 * time.Second); progress.Load() < want && time.Now().Before(end); {
		time.Sleep(time.Millisecond)
	}
	if got := progress.Load(); got != want {
		b.Fatalf("%d progress notifications in %d calls, want %d", got, i, want)
	}
	b.ReportMetric(float64(progress.Load())/float64(i), "progress/op")
}
