package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// Telling a user's stop from a client that gave up.
//
// A long investigation must outlive a call whose client gave up (its own
// request timeout, a dropped connection), and stop when the user stops it.
// mcp-go cancels the handler's context in both cases and drops the reason a
// notifications/cancelled carried, so the transports note every
// cancellation with its reason before mcp-go sees it, and a call whose
// context ended asks whether its request was cancelled explicitly.
//
// A reason that speaks of a timeout (the TypeScript SDK's "Request timed
// out", the go-sdk's "context deadline exceeded") is the client giving up;
// any other reason, or none, is the user's stop. A closed connection sends
// no notification: that is giving up too. 2026-07-28 requests over HTTP
// carry no session to scope a notification by; their stop is the closed
// stream, which cannot be told from a client that gave up, so it counts as
// giving up (README, "Long investigations").
type cancelReasons struct {
	mu sync.Mutex
	m  map[string]time.Time // scope + request id → when an explicit stop was noted
	// A stop can arrive after the call already stopped watching (the go-sdk
	// closes its HTTP stream first, then sends the notification): what to
	// do then, for a while.
	later map[string]laterStop
}

type laterStop struct {
	fn func()
	at time.Time
}

const (
	cancelNoteTTL = time.Minute // a note nobody asked about is dropped after this
	maxCancelNote = 10_000      // notes kept at most: a client cannot grow memory with them
)

// requestIDHeader carries the JSON-RPC id of a tools/call from mcp-go's
// before-call hook to the handler, which mcp-go does not tell its id.
const requestIDHeader = "X-Kubeq-Mcp-Request-Id"

func newCancelReasons() *cancelReasons {
	return &cancelReasons{m: map[string]time.Time{}, later: map[string]laterStop{}}
}

// isTimeoutReason reports whether a cancellation's reason says the client
// gave up waiting.
func isTimeoutReason(reason string) bool {
	r := strings.ToLower(reason)
	return strings.Contains(r, "timed out") || strings.Contains(r, "timeout") || strings.Contains(r, "deadline")
}

// noteMessage looks at one JSON-RPC message from the client on scope and
// notes an explicit cancellation. Only messages that mention the method are
// decoded.
func (c *cancelReasons) noteMessage(scope string, msg []byte) {
	if scope == "" || !bytes.Contains(msg, []byte(mcp.MethodNotificationCancelled)) {
		return
	}
	var n struct {
		Method string `json:"method"`
		Params struct {
			RequestID json.RawMessage `json:"requestId"`
			Reason    string          `json:"reason"`
		} `json:"params"`
	}
	if json.Unmarshal(msg, &n) != nil || n.Method != string(mcp.MethodNotificationCancelled) || len(n.Params.RequestID) == 0 {
		return
	}
	if isTimeoutReason(n.Params.Reason) {
		return
	}
	id := mcp.NewRequestId(rawID(n.Params.RequestID)).String()
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	k := scope + "\x00" + id
	if l, ok := c.later[k]; ok {
		delete(c.later, k)
		go l.fn()
		return
	}
	if len(c.m) >= maxCancelNote {
		for k, at := range c.m {
			if now.Sub(at) > cancelNoteTTL {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxCancelNote {
			return
		}
	}
	c.m[k] = now
}

// rawID decodes a JSON-RPC id as mcp-go does (a number or a string).
func rawID(raw json.RawMessage) any {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	return v
}

// explicit reports, once, whether the request id on scope was stopped
// explicitly.
func (c *cancelReasons) explicit(scope, id string) bool {
	if scope == "" || id == "" {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := scope + "\x00" + id
	at, ok := c.m[k]
	delete(c.m, k)
	return ok && time.Since(at) <= cancelNoteTTL
}

// onStop runs fn if the request id on scope is stopped explicitly within
// cancelNoteTTL from now (at once if it already was). The func it returns
// drops fn once a stop can no longer matter (the turn ended): fn holds the
// turn, and a stale entry is pruned only by a later onStop.
func (c *cancelReasons) onStop(scope, id string, fn func()) (drop func()) {
	if scope == "" || id == "" {
		return func() {}
	}
	if c.explicit(scope, id) {
		go fn()
		return func() {}
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, l := range c.later {
		if now.Sub(l.at) > cancelNoteTTL {
			delete(c.later, k)
		}
	}
	k := scope + "\x00" + id
	if len(c.later) >= maxCancelNote {
		return func() {}
	}
	c.later[k] = laterStop{fn: fn, at: now}
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if l, ok := c.later[k]; ok && l.at.Equal(now) {
			delete(c.later, k)
		}
	}
}

// waiting counts the stops still watched for (for leak tests).
func (c *cancelReasons) waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.later)
}

// stampRequestID is mcp-go's before-call hook: it hands the call's JSON-RPC
// id to the handler, overwriting anything a client put in that header.
func stampRequestID(_ context.Context, id any, req *mcp.CallToolRequest) {
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set(requestIDHeader, mcp.NewRequestId(id).String())
}

// cancelScope names the channel a call's notifications/cancelled arrives
// on: the stdio connection, or the 2025-era HTTP session. "" when there is
// none (a 2026-era HTTP request).
func cancelScope(ctx context.Context) string {
	switch transportFrom(ctx) {
	case "stdio":
		return "stdio"
	case "http":
		if sess := mcpserver.ClientSessionFromContext(ctx); sess != nil && sess.SessionID() != "" && !isModern(ctx) {
			return "http:" + sess.SessionID()
		}
	}
	return ""
}

// stoppedByUser reports whether the call req, whose context has ended, was
// stopped explicitly (not a timeout, not a dropped connection).
func (s *Server) stoppedByUser(ctx context.Context, req mcp.CallToolRequest) bool {
	return s.cancels.explicit(cancelScope(ctx), req.Header.Get(requestIDHeader))
}

// noteCancellations peeks at HTTP request bodies for notifications/cancelled
// before mcp-go handles them. Bodies are read whole here only when they are
// small; the request body limit (if any) applies before this.
func (s *Server) noteCancellations(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sid := r.Header.Get(mcpserver.HeaderKeySessionID)
		// A notification is small; anything else passes untouched (and a
		// stop not noted counts as giving up).
		if r.Method == http.MethodPost && sid != "" && r.Body != nil {
			if body, err := requestBody(r); err == nil && len(body) <= 64<<10 {
				s.cancels.noteMessage("http:"+sid, body)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// stopped reports whether run's call ended by a stop, not by giving up:
// the user's (notifications/cancelled that is not a timeout; tasks/cancel,
// as a task's context ends only by its cancel, its TTL or shutdown), or
// the server's shutdown.
func (s *Server) stopped(ctx context.Context, run *queryRun) bool {
	return ctx.Err() != nil && (inTask(ctx) || s.callsCtx.Err() != nil || s.cancels.explicit(run.stopScope, run.requestID))
}
