package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/kubeq-mcp/kubeq-mcp/internal/fakebackend"
	"github.com/kubeq-mcp/kubeq-mcp/schema"
)

// ServeFloor runs the floor of the CPU-per-call scenario: a bare mcp-go
// server whose kube_query does no backend work at all. It sends the same
// progress notifications kubeq-mcp sends for the diagnostic turn (its six
// steps, then the answer) and returns the same structured answer, so what
// kubeq-mcp spends above it is the cost of its own work: the backend
// request, the SSE parser, the forwarder, the approval bookkeeping.
//
// It takes the command line the driver gives kubeq-mcp (--transport http
// --addr) and serves /mcp and /healthz.
func ServeFloor(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kubeq-bench floor", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	_ = fs.String("transport", "http", "only http")
	if err := fs.Parse(args); err != nil {
		return err
	}
	srv := mcpserver.NewMCPServer("kubeq-floor", "1", mcpserver.WithToolCapabilities(false))
	tool := mcp.NewTool("kube_query", mcp.WithDescription("floor"),
		mcp.WithString("question", mcp.Required()), mcp.WithString("conversation_id"))
	srv.AddTool(tool, floorQuery(srv))
	streamable := mcpserver.NewStreamableHTTPServer(srv, mcpserver.WithStateful(true))
	mux := http.NewServeMux()
	mux.Handle("/mcp", streamable)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"status":"ok"}`)) })
	// The same profiling endpoints as the instrumented server, so the
	// floor's profile can be read next to kubeq-mcp's. Idle unless asked.
	var prof cpuProfile
	defer prof.stopProfile()
	mux.HandleFunc("POST "+CPUProfileStart, prof.start)
	mux.HandleFunc("POST "+CPUProfileStop, prof.stop)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("floor: %w", err)
	}
	return nil
}

func floorQuery(srv *mcpserver.MCPServer) mcpserver.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		start := time.Now()
		conv := req.GetString("conversation_id", "")
		if conv == "" {
			conv = "floor-conversation"
		}
		if req.Params.Meta != nil && req.Params.Meta.ProgressToken != nil {
			tok := req.Params.Meta.ProgressToken
			msgs := append(append([]string(nil), fakebackend.DiagnosticSteps...), fakebackend.DiagnosticAnswer)
			for i, m := range msgs {
				_ = srv.SendNotificationToClient(ctx, string(mcp.MethodNotificationProgress), map[string]any{
					"progressToken": tok, "progress": i + 1, "message": m,
				})
			}
		}
		out := schema.QueryOutput{
			Answer: fakebackend.DiagnosticAnswer, ConversationID: conv,
			Approvals: []schema.Approval{}, ElapsedMS: time.Since(start).Milliseconds(),
		}
		return mcp.NewToolResultStructured(out, out.Answer+"\n\nconversation_id: "+conv), nil
	}
}
