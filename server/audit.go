package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
	"github.com/kubeq-mcp/kubeq-mcp/schema"
)

// auditRecord is one approval decision, written as one JSON line.
type auditRecord struct {
	Time          time.Time       `json:"time"`
	Conversation  string          `json:"conversation_id"`
	ApprovalID    string          `json:"approval_id"`
	Action        string          `json:"action"`
	Risk          string          `json:"risk"`
	Decision      schema.Decision `json:"decision"`
	Reason        schema.Reason   `json:"reason"`
	ClientName    string          `json:"client_name"`
	ClientVersion string          `json:"client_version"`
	Transport     string          `json:"transport"`
	Comment       string          `json:"comment,omitempty"` // the human's reason, as typed in the form
	// UserID is the backend user the turns were sent as; UserSource says who
	// chose it: "configured" (--user-id) or "model" (a user_id argument,
	// with --allow-user-override), which a prompt-injected model may forge.
	UserID     string `json:"user_id"`
	UserSource string `json:"user_source"`
	// Via is how the human was asked: form, page or url; absent when nobody was.
	Via string `json:"via,omitempty"`
}

// maxAuditComment bounds the human's reason in an audit record, in runes.
const maxAuditComment = 500

// auditor writes decisions to the log and to an optional audit file.
type auditor struct {
	log         *slog.Logger
	defaultUser string // the backend client's configured user
	mu          sync.Mutex
	sink        io.Writer
}

func newAuditor(log *slog.Logger, sink io.Writer, defaultUser string) *auditor {
	return &auditor{log: log, sink: sink, defaultUser: defaultUser}
}

// configuredUser is the user the backend client sends when a turn names none.
func configuredUser(c *kubeq.Client) string {
	if c == nil {
		return ""
	}
	return c.User()
}

// record writes one decision. user is the user_id the caller chose, "" for
// the configured one.
func (a *auditor) record(ctx context.Context, conv, user string, a2 schema.Approval, comment, via string) {
	name, version := clientInfo(ctx)
	rec := auditRecord{
		Time: time.Now().UTC(), Conversation: conv, ApprovalID: a2.ApprovalID, Action: a2.Action,
		Risk: a2.Risk, Decision: a2.Decision, Reason: a2.Reason,
		ClientName: name, ClientVersion: version, Transport: transportFrom(ctx), Comment: comment, Via: via,
		UserID: a.defaultUser, UserSource: "configured",
	}
	if user != "" {
		rec.UserID, rec.UserSource = user, "model"
	}
	line, err := json.Marshal(rec)
	if err != nil { // cannot happen: the record is plain data
		a.log.Error("audit record not encoded", "err", err)
		return
	}
	a.log.Info("approval decision", "audit", json.RawMessage(line))
	if a.sink == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.sink.Write(append(line, '\n')); err != nil {
		a.log.Error("audit log write failed", "err", err)
	}
}

// clientInfo names the MCP client of the call: from the 2026-era request's
// _meta, or from the 2025-era session's initialize.
func clientInfo(ctx context.Context) (name, version string) {
	var impl mcp.Implementation
	if known, ok := ctx.Value(clientKey{}).(mcp.Implementation); ok {
		impl = known
	} else if info := mcpserver.RequestProtocolInfoFromContext(ctx); info != nil && info.Modern && info.ClientInfo != nil {
		impl = *info.ClientInfo
	} else if s, ok := mcpserver.ClientSessionFromContext(ctx).(mcpserver.SessionWithClientInfo); ok {
		impl = s.GetClientInfo()
	}
	return impl.Name, impl.Version
}

// clientCanElicit reports whether the client declared form elicitation
// (an empty elicitation capability means form, per the 2025-11-25 spec).
// mcp-go's RequestElicitation does not check it.
func clientCanElicit(ctx context.Context) bool {
	var caps *mcp.ClientCapabilities
	if info := mcpserver.RequestProtocolInfoFromContext(ctx); info != nil && info.Modern {
		caps = info.ClientCapabilities
	} else if s, ok := mcpserver.ClientSessionFromContext(ctx).(mcpserver.SessionWithClientInfo); ok {
		c := s.GetClientCapabilities()
		caps = &c
	}
	if caps == nil || caps.Elicitation == nil {
		return false
	}
	e := caps.Elicitation
	return e.Form != nil || e.URL == nil
}

type clientKey struct{}

// withClient records the client of a call in ctx, for work done later on
// its behalf (the sweeper denying a gate the client never answered).
func withClient(ctx context.Context, name, version string) context.Context {
	return context.WithValue(ctx, clientKey{}, mcp.Implementation{Name: name, Version: version})
}
