package kubeqtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Request is one request the fake received, as the log keeps it. Header and
// Body are raw (Authorization included: tests check it; see Bearer).
type Request struct {
	Seq    int // 1-based order of arrival
	Time   time.Time
	Method string
	Path   string
	Header http.Header
	Body   []byte

	SessionHeader string // X-Session-ID as sent ("" when absent)
	Session       string // the session used: the header, or a generated uuid4
	RequestID     string // X-Request-ID as sent, or the one generated and echoed

	// Decoded chat body. Has* tell absent keys from zero values.
	Model          string
	User           string
	Messages       []Message
	Stream         bool
	HasStream      bool
	StreamOptions  json.RawMessage // nil when absent
	AutoApprove    bool
	HasAutoApprove bool
	Message        string // the last user message, raw
	Question       string // Message without leading "[context: …] " prefixes
	Namespace      string // from "[context: namespace=X] ", if any
	KubeContext    string // from "[context: kube_context=X] ", if any
	ResolvedGate   bool   // this message answered a pending gate (see Decisions)

	Status         int    // HTTP status the fake answered (0: dropped before any response)
	Fault          string // the injected fault, if any
	Finished       bool   // the turn reached [DONE]
	Disconnected   bool   // the client went away before the turn finished
	DisconnectedAt time.Time
}

// Message is one entry of the body's messages list. Content is the raw JSON
// value (a string is decoded into Text).
type Message struct {
	Role    string
	Text    string
	Content json.RawMessage
}

// Bearer returns the token of "Authorization: Bearer <token>", or "".
func (r Request) Bearer() string {
	a := r.Header.Get("Authorization")
	if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return a[7:]
	}
	return ""
}

// IsChat reports whether this was a POST to /v1/chat/completions.
func (r Request) IsChat() bool {
	return r.Method == http.MethodPost && r.Path == chatPath
}

// Violation is a second turn that arrived on a session while another turn
// was still streaming on it.
type Violation struct {
	Session   string
	RequestID string
	At        time.Time
}

func (r *Request) clone() Request {
	c := *r
	c.Header = r.Header.Clone()
	c.Body = append([]byte(nil), r.Body...)
	c.Messages = append([]Message(nil), r.Messages...)
	return c
}

func (s *Server) addRequest(r *Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	r.Seq = s.seq
	s.log = append(s.log, r)
	if limit := s.opts.logLimit; limit > 0 && len(s.log) > limit {
		s.log = append(s.log[:0:0], s.log[len(s.log)-limit:]...)
	}
	s.notify()
}

// ResetLog forgets the requests, decisions and violations seen so far;
// sessions and their pending gates stay.
func (s *Server) ResetLog() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log, s.decisions, s.violations = nil, nil, nil
	s.notify()
}

// update changes a logged request under the lock.
func (s *Server) update(r *Request, f func(r *Request)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(r)
	s.notify()
}

func (s *Server) markFinished(r *Request) {
	s.update(r, func(r *Request) { r.Finished = true })
}

// Requests returns a copy of every request received, in order of arrival.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.log))
	for i, r := range s.log {
		out[i] = r.clone()
	}
	return out
}

// ChatRequests returns the chat requests only.
func (s *Server) ChatRequests() []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.IsChat() {
			out = append(out, r)
		}
	}
	return out
}

// LastRequest returns the most recent request; ok is false when none came.
func (s *Server) LastRequest() (r Request, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.log) == 0 {
		return Request{}, false
	}
	return s.log[len(s.log)-1].clone(), true
}

// MessagesFor returns the raw last user messages of every chat request on
// session, in order.
func (s *Server) MessagesFor(session string) []string {
	var out []string
	for _, r := range s.ChatRequests() {
		if r.Session == session && r.Status == http.StatusOK {
			out = append(out, r.Message)
		}
	}
	return out
}

// Received reports how many chat turns carried exactly message as their last
// user message (raw, prefixes included), on any session.
func (s *Server) Received(message string) int {
	n := 0
	for _, r := range s.ChatRequests() {
		if r.Status == http.StatusOK && r.Message == message {
			n++
		}
	}
	return n
}

// Decisions returns every gate decision, in order.
func (s *Server) Decisions() []Decision {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Decision(nil), s.decisions...)
}

func (s *Server) recordDecision(d Decision) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.decisions = append(s.decisions, d)
	s.notify()
}

// ConcurrentTurnViolations returns every turn that arrived on a session
// while another was streaming on it. The MCP server must never cause one.
func (s *Server) ConcurrentTurnViolations() []Violation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Violation(nil), s.violations...)
}

// PendingGate returns the gate waiting for an answer on session.
func (s *Server) PendingGate(session string) (GateInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss := s.sessions[session]; ss != nil && ss.pending != nil {
		return *ss.pending, true
	}
	return GateInfo{}, false
}

// OpenGate leaves g pending on session as if an earlier turn had raised it,
// and returns its action id. No frames are written.
func (s *Server) OpenGate(session string, g Gate) string {
	g = g.normalized(s)
	s.openGate(session, GateInfo{Session: session, ActionID: g.ActionID, Command: g.Command,
		Risk: g.Risk, YAML: g.YAML, Opened: time.Now(), gate: g})
	return g.ActionID
}

func (s *Server) openGate(session string, gi GateInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessionLocked(session).pending = &gi
	s.notify()
}

// Wait blocks until cond, called with the current request log, returns true,
// or ctx ends.
func (s *Server) Wait(ctx context.Context, cond func(log []Request) bool) error {
	for {
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		if cond(s.Requests()) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("kubeqtest: waiting for the request log: %w", ctx.Err())
		case <-s.done:
			return fmt.Errorf("kubeqtest: server closed while waiting")
		}
	}
}

// WaitForRequests waits until at least n requests have arrived.
func (s *Server) WaitForRequests(ctx context.Context, n int) error {
	return s.Wait(ctx, func(log []Request) bool { return len(log) >= n })
}

// WaitForDisconnect waits until a chat turn on session ("" for any session)
// was abandoned by its client, and returns that request.
func (s *Server) WaitForDisconnect(ctx context.Context, session string) (Request, error) {
	var found Request
	err := s.Wait(ctx, func(log []Request) bool {
		for _, r := range log {
			if r.Disconnected && (session == "" || r.Session == session) {
				found = r
				return true
			}
		}
		return false
	})
	return found, err
}
