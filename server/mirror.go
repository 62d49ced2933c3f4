package server

import (
	"context"
	"encoding/json"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
	"github.com/kubeq-mcp/kubeq-mcp/schema"
)

// With a shared store, a detached run is mirrored into it, so kube_answer
// works from any replica: the turn runs on the replica that started it,
// and its status, answer so far, result, or the gate it waits at are
// written (at most once a second while it streams) for the others to read.

// mirrorEvery bounds how often a streaming run is written to the store.
const mirrorEvery = time.Second

// runMirror is what other replicas read of a detached run.
type runMirror struct {
	Replica   string             `json:"replica"`
	State     string             `json:"state"` // running, complete, awaiting
	Latest    string             `json:"latest,omitempty"`
	User      string             `json:"user,omitempty"`
	Started   time.Time          `json:"started"`
	Parts     []string           `json:"parts,omitempty"`
	Approvals []schema.Approval  `json:"approvals,omitempty"`
	Notices   []string           `json:"notices,omitempty"`
	Usage     *schema.Usage      `json:"usage,omitempty"`
	Gate      *kubeq.HitlRequest `json:"gate,omitempty"` // awaiting: the gate, recorded unasked in the ledger
	// complete: the result as kube_query would have returned it.
	Text       string          `json:"text,omitempty"`
	Structured json.RawMessage `json:"structured,omitempty"`
	IsError    bool            `json:"is_error,omitempty"`
}

// mirror writes lr as it stands, while it runs.
func (s *Server) mirror(lr *liveRun) {
	if !s.ledger.Shared() {
		return
	}
	so, status, done := lr.soFar()
	if done != nil {
		return // settled: mirrorSettled writes it
	}
	s.putMirror(so.conv, runMirror{State: "running", Latest: status, User: so.user, Started: so.started,
		Parts: so.parts, Approvals: so.approvals, Notices: so.notices, Usage: so.usage}, s.cfg.AnswerTTL)
}

// mirrorSettled writes lr once its driver has settled it.
func (s *Server) mirrorSettled(lr *liveRun) {
	if !s.ledger.Shared() {
		return
	}
	run := lr.run
	m := runMirror{User: run.user, Started: run.started, Parts: run.parts, Approvals: run.approvals,
		Notices: run.notices, Usage: run.usage}
	ttl := s.cfg.AnswerTTL
	switch {
	case lr.hitl != nil:
		m.State, m.Gate, m.Latest = "awaiting", lr.hitl, "waiting for approval: "+lr.hitl.Action
		ttl = s.cfg.ApprovalTimeout
	case lr.result != nil:
		m.State = "complete"
		m.Text, m.IsError = resultText(lr.result), lr.result.IsError
		if lr.result.StructuredContent != nil {
			m.Structured, _ = json.Marshal(lr.result.StructuredContent)
		}
	default:
		return
	}
	s.putMirror(run.conv, m, ttl)
}

func (s *Server) putMirror(conv string, m runMirror, ttl time.Duration) {
	m.Replica = s.ledger.Replica()
	blob, err := json.Marshal(m)
	if err == nil {
		err = s.ledger.SetMirror(context.Background(), conv, blob, ttl)
	}
	if err != nil {
		s.log.Warn("could not mirror a detached run to the store; other replicas cannot answer for it",
			"conversation", conv, "err", err)
	}
}

// readMirror reads conv's mirror, nil when there is none (or no shared store).
func (s *Server) readMirror(ctx context.Context, conv string) *runMirror {
	if !s.ledger.Shared() {
		return nil
	}
	blob, err := s.ledger.GetMirror(ctx, conv)
	if err != nil || blob == nil {
		return nil
	}
	var m runMirror
	if json.Unmarshal(blob, &m) != nil {
		return nil
	}
	return &m
}

// run is the mirrored run as a queryRun.
func (m *runMirror) run(conv string) *queryRun {
	return &queryRun{conv: conv, user: m.User, started: m.Started, parts: m.Parts, approvals: m.Approvals,
		notices: m.Notices, usage: m.Usage}
}

// result is the mirrored result of a complete run.
func (m *runMirror) result() *mcp.CallToolResult {
	if m.IsError {
		return mcp.NewToolResultError(m.Text)
	}
	var structured any
	if len(m.Structured) > 0 {
		_ = json.Unmarshal(m.Structured, &structured)
	}
	return mcp.NewToolResultStructured(structured, m.Text)
}

func resultText(res *mcp.CallToolResult) string {
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			return tc.Text
		}
	}
	return ""
}
