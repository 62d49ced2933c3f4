package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// ProtocolVersion is the MCP version the driver speaks: the 2025-11-25 era
// (initialize and sessions), which most clients use today.
const ProtocolVersion = "2025-11-25"

// OnProgress sees every progress notification with the time the go-sdk
// client's handler ran (the handler runs on the client's own goroutine,
// so this is when a user of the client would see it).
type OnProgress func(token any, msg string, at time.Time)

// NewClient is a go-sdk client that passes progress to onProgress.
func NewClient(onProgress OnProgress) *sdk.Client {
	opts := &sdk.ClientOptions{}
	if onProgress != nil {
		opts.ProgressNotificationHandler = func(_ context.Context, r *sdk.ProgressNotificationClientRequest) {
			onProgress(r.Params.ProgressToken, r.Params.Message, time.Now())
		}
	}
	return sdk.NewClient(&sdk.Implementation{Name: "kubeq-bench", Version: "1"}, opts)
}

// LoopbackHTTPClient is an HTTP client for many concurrent streams to one
// host: no overall timeout (streams last as long as the turn), enough idle
// connections to reuse them all.
func LoopbackHTTPClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     time.Minute,
	}}
}

// ConnectHTTP opens a session over streamable HTTP. The standalone GET
// stream is not opened: progress comes on each call's own POST stream, and
// the benchmarks measure calls, not an idle stream per session.
func ConnectHTTP(ctx context.Context, c *sdk.Client, endpoint string, hc *http.Client) (*sdk.ClientSession, error) {
	tr := &sdk.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc, MaxRetries: -1, DisableStandaloneSSE: true}
	cs, err := c.Connect(ctx, tr, &sdk.ClientSessionOptions{ProtocolVersion: ProtocolVersion})
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", endpoint, err)
	}
	return cs, nil
}

// ConnectStdio starts cmd and opens a session over its stdin and stdout.
func ConnectStdio(ctx context.Context, c *sdk.Client, cmd *exec.Cmd) (*sdk.ClientSession, error) {
	tr := &sdk.CommandTransport{Command: cmd, TerminateDuration: 2 * time.Second}
	cs, err := c.Connect(ctx, tr, &sdk.ClientSessionOptions{ProtocolVersion: ProtocolVersion})
	if err != nil {
		return nil, fmt.Errorf("connect to %s over stdio: %w", cmd.Path, err)
	}
	return cs, nil
}

// Query calls kube_query with a progress token and returns the answer from
// the structured result.
func Query(ctx context.Context, cs *sdk.ClientSession, question, progressToken string) (string, error) {
	p := &sdk.CallToolParams{Name: "kube_query", Arguments: map[string]any{"question": question}}
	if progressToken != "" {
		p.SetProgressToken(progressToken)
	}
	res, err := cs.CallTool(ctx, p)
	if err != nil {
		return "", fmt.Errorf("kube_query: %w", err)
	}
	if res.IsError {
		return "", fmt.Errorf("kube_query: tool error: %s", textOf(res))
	}
	m, ok := res.StructuredContent.(map[string]any)
	if !ok {
		return "", errors.New("kube_query: result has no structured content")
	}
	answer, ok := m["answer"].(string)
	if !ok {
		return "", errors.New("kube_query: structured result has no answer")
	}
	return answer, nil
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
