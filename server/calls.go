package server

import (
	"context"
	"fmt"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// callSlots counts the tool calls in flight, per session and in all, so
// that a client cannot start calls without limit: beyond
// Config.MaxCallsPerSession on its session, or Config.MaxCalls in the
// process, a call is refused at once with a busy error, never queued.
type callSlots struct {
	mu         sync.Mutex
	total      int
	perSession map[string]int
}

// take reserves a slot. It returns a release func, or nil and the busy
// message.
func (c *callSlots) take(session string, maxPerSession, maxAll int) (release func(), busy string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total >= maxAll {
		return nil, fmt.Sprintf("busy: %d calls in flight on this server, the most it takes (--max-calls); "+
			"this call was not started and nothing was sent to KubeIntellect. Try again shortly.", c.total)
	}
	// A 2026-era request has no session: the process-wide bound covers it.
	if session != "" && c.perSession[session] >= maxPerSession {
		return nil, fmt.Sprintf("busy: %d calls in flight on this session, the most it takes "+
			"(--max-calls-per-session); this call was not started and nothing was sent to KubeIntellect. "+
			"Wait for one of them to finish.", c.perSession[session])
	}
	if c.perSession == nil {
		c.perSession = make(map[string]int)
	}
	c.total++
	if session != "" {
		c.perSession[session]++
	}
	var once sync.Once
	return func() { once.Do(func() { c.give(session) }) }, ""
}

func (c *callSlots) give(session string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total--
	if session == "" {
		return
	}
	if c.perSession[session]--; c.perSession[session] <= 0 {
		delete(c.perSession, session)
	}
}

// limitCalls refuses a tool call beyond the limits on calls in flight.
func (s *Server) limitCalls(next mcpserver.ToolHandlerFunc) mcpserver.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		session := ""
		if cs := mcpserver.ClientSessionFromContext(ctx); cs != nil {
			session = cs.SessionID()
		}
		release, busy := s.calls.take(session, s.cfg.MaxCallsPerSession, s.cfg.MaxCalls)
		if release == nil {
			s.counters.busyCalls.Add(1)
			s.busyLog.warn(s.log, "refused a tool call: too many calls in flight", "tool", req.Params.Name)
			s.legacyIDs.take(req) // a 2025-11-25 task's id, kept for a handler that will not run
			return mcp.NewToolResultError(busy), nil
		}
		defer release()
		return next(ctx, req)
	}
}
