package conformance

import (
	"fmt"

	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/kubeq-mcp/kubeq-mcp/server"
)

// New builds a kubeq-mcp server without product tools (cfg.Backend is
// ignored) and with every conformance fixture registered.
func New(cfg server.Config) (*server.Server, error) {
	cfg.Backend = nil
	if cfg.Name == "" {
		cfg.Name = "kubeq-mcp-conformance"
	}
	s, err := server.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("conformance server: %w", err)
	}
	Register(s.MCPServer())
	return s, nil
}

// Register adds the fixtures to m. The capabilities the fixtures need
// (resource subscriptions, completions) are server options in mcp-go; they
// are applied here, before the server serves anything.
func Register(m *mcpserver.MCPServer) {
	mcpserver.WithResourceCapabilities(true, false)(m)
	mcpserver.WithPromptCapabilities(false)(m)
	mcpserver.WithCompletions()(m)
	mcpserver.WithPromptCompletionProvider(promptCompletions{})(m)
	addContentTools(m)
	addNotifyingTools(m)
	addClientRequestTools(m)
	addResources(m)
	addPrompts(m)
}
