package server

import (
	"context"
	"strings"
	"time"
)

// defaultCallDeadline is how long a synchronous kube_query or kube_answer
// waits for its turn when the client is not in clientLimits: under the
// shortest limit met in practice (about 60 s), so the call returns with
// what it has before the client gives up on it.
const defaultCallDeadline = 50 * time.Second

// clientLimits are MCP clients whose tool-call limit is known, matched by a
// case-insensitive substring of clientInfo.name, and the deadline kubeq-mcp
// uses for them: their limit less a margin for the result to travel.
var clientLimits = []struct {
	name     string
	limit    time.Duration // what the client does
	deadline time.Duration // what kubeq-mcp uses
}{
	{"zed", 60 * time.Second, 50 * time.Second},                  // progress does not reset its timer
	{"copilot", 60 * time.Second, 50 * time.Second},              // the GitHub Copilot CLI
	{"claude-ai", 300 * time.Second, 280 * time.Second},          // Claude Desktop and claude.ai
	{"visual studio code", 300 * time.Second, 280 * time.Second}, // VS Code has cancelled at 5 minutes
	{"openai", 5 * time.Second, 4 * time.Second},                 // the OpenAI Agents SDK's default
}

// callDeadline is the deadline of a synchronous call from the client of
// ctx: the configured one when set (0 = none), else the client's known
// one, else defaultCallDeadline.
func (s *Server) callDeadline(ctx context.Context) time.Duration {
	if s.cfg.CallDeadline != nil {
		return *s.cfg.CallDeadline
	}
	name, _ := clientInfo(ctx)
	return deadlineFor(name)
}

func deadlineFor(clientName string) time.Duration {
	n := strings.ToLower(clientName)
	for _, c := range clientLimits {
		if n != "" && strings.Contains(n, c.name) {
			return c.deadline
		}
	}
	return defaultCallDeadline
}
