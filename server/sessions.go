package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// sessionCap bounds the live sessions (Config.MaxSessions). Each costs
// memory and lives until it is deleted or idle for the session TTL, so a
// loop of initialize calls would otherwise grow the process without end.
// At the cap, a request that would open a session is refused with 503;
// no live session is evicted for a newcomer.
//
// A request that may open one holds a reservation while it is served, so
// that concurrent ones cannot overshoot; mcp-go's register hook, called
// with the request's context, turns the reservation into a session.
type sessionCap struct {
	mu      sync.Mutex
	live    int
	pending int
	log     rateLog
}

type reservationKey struct{}

// reservation is a place for one session, held by the request that may
// open it.
type reservation struct{ used bool }

func (c *sessionCap) reserve(limit int) (*reservation, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live+c.pending >= limit {
		return nil, c.live
	}
	c.pending++
	return &reservation{}, 0
}

// release gives back a reservation the request did not use.
func (c *sessionCap) release(r *reservation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !r.used {
		r.used = true
		c.pending--
	}
}

func (c *sessionCap) registered(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := ctx.Value(reservationKey{}).(*reservation); ok && !r.used {
		r.used = true
		c.pending--
	}
	c.live++
}

func (c *sessionCap) unregistered() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live = max(c.live-1, 0)
}

// sessionHooks counts sessions as mcp-go registers and drops them.
func (s *Server) sessionHooks() *mcpserver.Hooks {
	h := &mcpserver.Hooks{}
	h.AddOnRegisterSession(func(ctx context.Context, _ mcpserver.ClientSession) { s.sessions.registered(ctx) })
	h.AddOnUnregisterSession(func(context.Context, mcpserver.ClientSession) { s.sessions.unregistered() })
	return h
}

// capSessions refuses, at the cap, a request that would open a session: an
// initialize POST, or a GET stream without a session id. It runs after
// limitBody, so the body is in memory.
func (s *Server) capSessions(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(mcpserver.HeaderKeySessionID) != "" || !opensSession(r) {
			next.ServeHTTP(w, r)
			return
		}
		res, live := s.sessions.reserve(s.cfg.MaxSessions)
		if res == nil {
			s.sessions.log.warn(s.log, "refused a new session: the session cap is reached",
				"live_sessions", live, "max_sessions", s.cfg.MaxSessions)
			w.Header().Set("Retry-After", strconv.Itoa(sessionRetryAfter))
			writeJSONRPCError(w, http.StatusServiceUnavailable, fmt.Sprintf("too many sessions: the server "+
				"holds %d, the most it takes (--max-sessions); no session is evicted for a new one. Idle "+
				"sessions end after %s: try again later.", live, sessionIdleTTL))
			return
		}
		defer s.sessions.release(res)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), reservationKey{}, res)))
	})
}

// sessionIdleTTL is how long an idle HTTP session lives.
const sessionIdleTTL = 30 * time.Minute

// sessionRetryAfter is the Retry-After of a 503 at the session cap, in
// seconds.
const sessionRetryAfter = 60

func opensSession(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet:
		return true
	case http.MethodPost:
		body, ok := r.Body.(interface{ Bytes() []byte })
		if !ok || !mayMention(body.Bytes(), string(mcp.MethodInitialize)) {
			return false
		}
		var m struct {
			Method string `json:"method"`
		}
		return json.Unmarshal(body.Bytes(), &m) == nil && m.Method == string(mcp.MethodInitialize)
	default:
		return false
	}
}
