package server

import (
	"context"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/kubeq-mcp/kubeq-mcp/schema"
)

// healthTool is kube_health's definition.
func healthTool() mcp.Tool {
	return newTool("kube_health", "KubeIntellect health",
		"Check whether the KubeIntellect backend behind kube_query is reachable, "+
			"and if not, why (connection refused, DNS, timeout, authentication) and what to set. "+
			"Use it when kube_query fails. Takes no arguments; changes nothing.",
		schema.MustFor(&schema.HealthInput{}),
		schema.MustFor(&schema.HealthOutput{}),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(true),
	)
}

func (s *Server) addHealthTool() {
	s.mcp.AddTool(healthTool(), s.handleHealth)
}

func (s *Server) handleHealth(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if _, err := stringArgs(req.Params.Arguments, "kube_health"); err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	h := s.cfg.Backend.Health(ctx)
	out := schema.HealthOutput{
		Healthy:    h.OK,
		URL:        h.URL,
		StatusCode: h.StatusCode,
		LatencyMS:  h.Latency.Milliseconds(),
		Reason:     h.Reason,
	}
	text := "KubeIntellect at " + h.URL + " is healthy."
	if !h.OK {
		text = "KubeIntellect at " + h.URL + " is not healthy: " + h.Reason
	}
	if s.cfg.Demo {
		text = demoLabel + text
	}
	// An unhealthy backend is the answer to the question asked, not a
	// failure of the tool: isError stays false.
	return mcp.NewToolResultStructured(out, text), nil
}

// demoLabel marks every answer of demo mode.
const demoLabel = "[SIMULATED: kubeq-mcp demo mode, no real cluster] "
