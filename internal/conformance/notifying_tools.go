package conformance

import (
	"context"
	"fmt"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/kubeq-mcp/kubeq-mcp/server"
)

// stepDelay is the pause between notifications the scenarios ask for.
const stepDelay = 50 * time.Millisecond

// addNotifyingTools registers the tools that send notifications during the
// call (tools-call-with-logging, tools-call-with-progress). They send through
// server.Notify, so our middleware holds the result until the last
// notification was written: the very path kube_query's progress takes.
func addNotifyingTools(m *mcpserver.MCPServer) {
	m.AddTool(mcp.NewTool("test_tool_with_logging",
		mcp.WithDescription("Sends three info log messages during execution"),
	), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		msgs := []string{"Tool execution started", "Tool processing data", "Tool execution completed"}
		for i, msg := range msgs {
			if i > 0 && !sleep(ctx, stepDelay) {
				return nil, ctx.Err()
			}
			if err := logMessage(ctx, mcp.LoggingLevelInfo, msg); err != nil {
				return nil, err
			}
		}
		return mcp.NewToolResultText("Tool with logging executed successfully"), nil
	})

	m.AddTool(mcp.NewTool("test_tool_with_progress",
		mcp.WithDescription("Reports progress 0, 50 and 100 of 100"),
	), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var token mcp.ProgressToken
		if req.Params.Meta != nil {
			token = req.Params.Meta.ProgressToken
		}
		for i, p := range []int{0, 50, 100} {
			if i > 0 && !sleep(ctx, stepDelay) {
				return nil, ctx.Err()
			}
			if token == nil {
				continue
			}
			err := server.Notify(ctx, string(mcp.MethodNotificationProgress), map[string]any{
				"progressToken": token,
				"progress":      p,
				"total":         100,
				"message":       fmt.Sprintf("step %d of 3", i+1),
			})
			if err != nil {
				return nil, fmt.Errorf("progress %d: %w", p, err)
			}
		}
		return mcp.NewToolResultText("Tool with progress executed successfully"), nil
	})
}

// logMessage sends notifications/message at level through server.Notify
// when the client asked for that level: per session (logging/setLevel) on
// the 2025 era, per request (_meta) on the 2026 era, as mcp-go's own
// SendLogMessageToClient decides.
func logMessage(ctx context.Context, level mcp.LoggingLevel, data string) error {
	if !logEnabled(ctx, level) {
		return nil
	}
	err := server.Notify(ctx, "notifications/message", map[string]any{
		"level":  level,
		"logger": "conformance",
		"data":   data,
	})
	if err != nil {
		return fmt.Errorf("log %q: %w", data, err)
	}
	return nil
}

func logEnabled(ctx context.Context, level mcp.LoggingLevel) bool {
	if info := mcpserver.RequestProtocolInfoFromContext(ctx); info != nil && info.Modern {
		return info.LogLevel != "" && level.ShouldSendTo(info.LogLevel)
	}
	sess, ok := mcpserver.ClientSessionFromContext(ctx).(mcpserver.SessionWithLogging)
	return ok && level.ShouldSendTo(sess.GetLogLevel())
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
