package server

import (
	"context"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
	"github.com/kubeq-mcp/kubeq-mcp/schema"
)

// healthTool is kube_health's definition.
func healthTool() mcp.Tool {
	return newTool("kube_health", "KubeIntellect health",
		"Check whether the KubeIntellect backend behind kube_query is reachable, ready and accepts "+
			"the API key, and if not, why (connection refused, DNS, timeout, key rejected or missing, "+
			"draining) and what to set. Also reports the backend's version, era, the API key's role "+
			"and any degraded features. Use it when kube_query fails. Takes no arguments; changes nothing.",
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
	h := s.cfg.Backend.Diagnose(ctx)
	out := schema.HealthOutput{
		Healthy:          h.OK,
		URL:              h.URL,
		StatusCode:       h.StatusCode,
		LatencyMS:        h.Latency.Milliseconds(),
		Reason:           h.Reason,
		Version:          h.Version,
		Era:              h.Era(),
		Ready:            h.Ready,
		DegradedFeatures: h.Degraded,
		APIKey:           string(h.Key),
		Role:             h.Role,
		Notes:            h.Checks,
		Store:            s.ledger.Describe(),
		StoreOK:          true,
	}
	text := healthText(h)
	if err := s.ledger.Ping(ctx); err != nil {
		out.StoreOK = false
		out.StoreReason = "the approval store does not answer (" + err.Error() + "); kube_query sends nothing " +
			"until it does. Check that it runs and is reachable, and --store / KUBEQ_MCP_STORE."
		text += " The approval store " + out.Store + " is NOT reachable: kube_query refuses every call until it is."
	} else {
		text += " Approval store: " + out.Store + ", reachable."
	}
	if s.cfg.Demo {
		text = demoLabel + text
	}
	// An unhealthy backend is the answer to the question asked, not a
	// failure of the tool: isError stays false.
	return mcp.NewToolResultStructured(out, text), nil
}

// healthText is the answer in a sentence or two: the verdict first, then
// what a person can act on.
func healthText(h kubeq.HealthResult) string {
	if !h.OK {
		return "KubeIntellect at " + h.URL + " is not healthy: " + h.Reason
	}
	var facts []string
	if h.Version != "" {
		facts = append(facts, "version "+h.Version)
	}
	if era := h.Era(); era != "" {
		facts = append(facts, "era "+era)
	}
	if h.Ready != nil {
		facts = append(facts, "ready")
	}
	switch h.Key {
	case kubeq.KeyAccepted:
		key := "API key accepted"
		if h.Role != "" {
			key += " (role " + h.Role + ")"
		}
		facts = append(facts, key)
	case kubeq.KeyUnchecked:
		facts = append(facts, "API key not checked")
	}
	text := "KubeIntellect at " + h.URL + " is healthy"
	if len(facts) > 0 {
		text += ": " + strings.Join(facts, ", ")
	}
	text += "."
	if len(h.Degraded) > 0 {
		text += " Degraded features (switched on, not running): " + strings.Join(h.Degraded, ", ") + "."
	}
	if h.Era() == "v2" {
		text += " This is an older (V2) KubeIntellect: any reply but a denial approves a pending action there."
	}
	for _, n := range h.Checks {
		text += " Note: " + n + "."
	}
	return text
}

// demoLabel marks every answer of demo mode.
const demoLabel = "[SIMULATED: kubeq-mcp demo mode, no real cluster] "
