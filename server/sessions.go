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

// capSessions guards the sessions mcp-go opens. It runs after limitBody,
// so the body is in memory.
//
// A request that opens one holds a reservation, refused at the cap: an
// initialize POST, whatever Mcp-Session-Id it carries (mcp-go ignores the
// header there and always opens a new session), and a 2025-era GET without
// a session id.
//
// A 2025-era GET or DELETE naming a session that ids never issued, or that
// has ended, is answered 404, as the MCP spec asks, before mcp-go sees it:
// on a GET, mcp-go would open a session under that id, outside the cap,
// and with the event store on it outlives the connection. ids is the
// manager mcp-go checks such a POST against (it answers 404 itself), so
// all three methods agree on which sessions exist. The 2026-07-28 era has
// no sessions: mcp-go refuses its GET and DELETE, whatever id they carry.
func (s *Server) capSessions(ids mcpserver.SessionIdManager, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case opensSession(r):
			s.reserveSession(w, r, next)
		case namesUnknownSession(r, ids):
			s.log.Debug("refused a request naming an unknown or ended session", "method", r.Method)
			writeJSONRPCError(w, http.StatusNotFound, "session not found: it has ended or was never opened; "+
				"send initialize without Mcp-Session-Id to open a new one")
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// reserveSession serves r, which may open a session, with a reservation,
// or refuses it with 503 at the cap.
func (s *Server) reserveSession(w http.ResponseWriter, r *http.Request, next http.Handler) {
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
}

// sessionIdleTTL is how long an idle HTTP session lives.
const sessionIdleTTL = 30 * time.Minute

// sessionRetryAfter is the Retry-After of a 503 at the session cap, in
// seconds.
const sessionRetryAfter = 60

// opensSession: r has mcp-go open a session (see capSessions).
func opensSession(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet:
		return r.Header.Get(mcpserver.HeaderKeySessionID) == "" && !modernBodiless(r)
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

// namesUnknownSession: r is a 2025-era GET or DELETE whose Mcp-Session-Id
// ids did not issue, or issued for a session that has ended.
func namesUnknownSession(r *http.Request, ids mcpserver.SessionIdManager) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodDelete {
		return false
	}
	id := r.Header.Get(mcpserver.HeaderKeySessionID)
	if id == "" || modernBodiless(r) {
		return false
	}
	terminated, err := ids.Validate(id)
	return err != nil || terminated
}

// modernBodiless: a GET or DELETE of the 2026-07-28 era or later, told by
// its protocol version header alone as mcp-go tells it (it has no body).
func modernBodiless(r *http.Request) bool {
	return mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion))
}
