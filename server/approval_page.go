package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/kubeq-mcp/kubeq-mcp/approval"
	"github.com/kubeq-mcp/kubeq-mcp/approval/page"
	"github.com/kubeq-mcp/kubeq-mcp/schema"
)

// The approval page: the third way to ask a human, for clients that show no
// form. A stdio client gets the page opened in the user's browser by
// Config.ApprovalBrowser, served on a loopback listener that runs only
// while pages are open. A client that declares URL-mode elicitation gets
// the page's URL in a "url" elicitation instead (2025 era: elicitation/
// create from inside the call; 2026 era: input_required, and the second leg
// waits for the page), on stdio from the loopback listener and over HTTP
// from the MCP listener itself. Over HTTP nothing else is offered.
//
// The page's URL holds its token, the only credential to decide: it goes to
// the browser opener or to the client's URL elicitation, and nowhere else:
// not into progress, results, errors or logs.

// How a human was asked, in audit records.
const (
	viaForm = "form"
	viaPage = "page" // opened in the user's browser by kubeq-mcp
	viaURL  = "url"  // handed to the client as a URL-mode elicitation
)

// pageIdle is how long the loopback listener stays up with no page open,
// so a page just decided can still answer a reload with 410.
const pageIdle = time.Minute

// pageWaiting is the progress message while a page waits for the human.
const (
	pageWaitingBrowser = "waiting for your decision in the approval page opened in your browser"
	pageWaitingClient  = "waiting for your decision in the approval page your client opened"
)

// pages is the server's approval pages and, for 2026-era URL mode, the
// tickets waiting for their client to come back, by page id.
type pages struct {
	set      *page.Pages
	loopback *page.Loopback
	opener   page.Opener // nil: stdio clients without forms are denied

	mu      sync.Mutex
	waiting map[string]parked
}

// parked is a 2026-era ticket waiting for its client's second leg.
type parked struct {
	ticket  *page.Ticket
	expires time.Time
}

func newPages(cfg Config) *pages {
	set := page.New(page.Options{Logger: cfg.Logger.With("component", "approval-page")})
	idle := cfg.PageIdle
	if idle <= 0 {
		idle = pageIdle
	}
	return &pages{set: set, opener: cfg.ApprovalBrowser, waiting: map[string]parked{},
		loopback: page.NewLoopback(set, idle, cfg.Logger.With("component", "approval-page"))}
}

// park keeps a 2026-era ticket until its client comes back, or its
// expiry passes (a client that never comes back leaves no entry behind:
// each park drops the expired ones; their pages expired with them).
func (p *pages) park(id string, t *page.Ticket, expires time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	for k, w := range p.waiting {
		if now.After(w.expires) {
			w.ticket.Close()
			delete(p.waiting, k)
		}
	}
	p.waiting[id] = parked{ticket: t, expires: expires}
}

// claim takes a parked ticket; nil when there is none (another process
// issued it, or it was claimed already).
func (p *pages) claim(id string) *page.Ticket {
	p.mu.Lock()
	defer p.mu.Unlock()
	w, ok := p.waiting[id]
	if !ok {
		return nil
	}
	delete(p.waiting, id)
	return w.ticket
}

// forget drops a parked ticket and withdraws its page.
func (p *pages) forget(id string) {
	if t := p.claim(id); t != nil {
		t.Close()
	}
}

// clientCanURLElicit reports whether the client declared URL-mode
// elicitation.
func clientCanURLElicit(ctx context.Context) bool {
	var caps *mcp.ClientCapabilities
	if info := mcpserver.RequestProtocolInfoFromContext(ctx); info != nil && info.Modern {
		caps = info.ClientCapabilities
	} else if s, ok := mcpserver.ClientSessionFromContext(ctx).(mcpserver.SessionWithClientInfo); ok {
		c := s.GetClientCapabilities()
		caps = &c
	}
	return caps != nil && caps.Elicitation != nil && caps.Elicitation.URL != nil
}

// pageVia is how a client without forms can be asked: viaURL, viaPage, or
// "" when it cannot be asked at all.
func (s *Server) pageVia(ctx context.Context) string {
	switch {
	case clientCanURLElicit(ctx):
		return viaURL
	case transportFrom(ctx) == "stdio" && s.pages.opener != nil:
		return viaPage
	}
	return ""
}

type pageBaseKey struct{}

// withPageBase records where an HTTP client reached the server, so a URL
// handed to it points at the same listener.
func withPageBase(ctx context.Context, r *http.Request) context.Context {
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return context.WithValue(ctx, pageBaseKey{}, scheme+"://"+r.Host)
}

// openPage opens a page for gate, on the MCP listener when the call came
// over HTTP, else on the loopback listener. The URL is a secret.
func (s *Server) openPage(ctx context.Context, conv string, gate approval.Gate,
	deadline time.Time) (*page.Ticket, string, error) {
	req := page.Request{ApprovalID: gate.ApprovalID, Command: gate.Action, Risk: gate.Risk, YAML: gate.YAML,
		Conversation: conv, Confirm: gate.Confirm}
	if s.cfg.Demo {
		req.Note = demoLabel
	}
	judge := func(sub page.Submission) page.Outcome { return pageOutcome(gate, judgePage(gate, sub)) }
	if base, ok := ctx.Value(pageBaseKey{}).(string); ok {
		t, err := s.pages.set.Open(req, deadline, judge)
		if err != nil {
			return nil, "", err
		}
		return t, base + t.Path(), nil
	}
	return s.pages.loopback.Open(req, deadline, judge)
}

// judgePage reads a page's submission as the form's answer, judged by the
// same function as a form, so the page and the form follow one rule.
func judgePage(gate approval.Gate, sub page.Submission) approval.Verdict {
	content, err := json.Marshal(map[string]string{"decision": sub.Decision, "confirm": sub.Confirm,
		"reason": sub.Comment})
	if err != nil { // cannot happen: three strings
		return approval.Deny(schema.ReasonError)
	}
	return approval.Judge(gate, approval.Answer{Action: string(mcp.ElicitationResponseActionAccept), Content: content})
}

// pageOutcome is what the page says after the human decided.
func pageOutcome(gate approval.Gate, v approval.Verdict) page.Outcome {
	o := page.Outcome{Approved: v.Approves(gate), Reason: string(v.Reason)}
	switch v.Reason {
	case schema.ReasonUserApproved:
		o.Text = "You approved it. kubeq-mcp sends the approval to KubeIntellect, which runs the command " +
			"exactly as shown; the result appears in your chat."
	case schema.ReasonUserDenied:
		o.Text = "You denied it. kubeq-mcp sends the denial to KubeIntellect: the command does not run."
	case schema.ReasonConfirmationMismatch:
		o.Text = fmt.Sprintf("The name you typed is not %q, so it was denied: the command does not run. "+
			"Ask again in your chat to retry.", gate.Confirm)
	default:
		o.Text = "It was denied: the command does not run."
	}
	return o
}

// askByPage asks a client without forms through the approval page, in
// the same call, and waits at most the approval timeout.
func (s *Server) askByPage(ctx context.Context, run *queryRun, gate approval.Gate) approval.Verdict {
	via := s.pageVia(ctx)
	if via == "" || (via == viaURL && isModern(ctx)) { // the 2026 era gets URL mode by input_required
		return approval.Deny(schema.ReasonElicitationUnsupported)
	}
	deny := func(r schema.Reason) approval.Verdict {
		v := approval.Deny(r)
		v.Via = via
		return v
	}
	deadline := time.Now().Add(s.cfg.ApprovalTimeout)
	ticket, url, err := s.openPage(ctx, run.conv, gate, deadline)
	if err != nil {
		s.log.Warn("approval page could not be opened; denying", "approval_id", gate.ApprovalID, "err", err)
		return deny(schema.ReasonError)
	}
	defer ticket.Close()
	if n := notifierFrom(ctx); n != nil {
		n.flush(ctx) // progress so far goes ahead of the page
	}
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	waiting := pageWaitingBrowser
	if via == viaURL {
		waiting = pageWaitingClient
		id := randomID()
		res, err := s.mcp.RequestElicitation(wctx, mcp.ElicitationRequest{
			Request: mcp.Request{Method: string(mcp.MethodElicitationCreate)},
			Params:  withRelatedTask(ctx, mcp.ElicitationParams{Mode: mcp.ElicitationModeURL, ElicitationID: id, URL: url, Message: pageMessage(gate)}),
		})
		switch {
		case err != nil && errors.Is(wctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
			return deny(schema.ReasonTimedOut)
		case err != nil:
			s.log.Warn("approval page URL could not be given to the client; denying", "approval_id", gate.ApprovalID,
				"err", errors.New(strings.ReplaceAll(err.Error(), url, "<url>")))
			return deny(schema.ReasonError)
		case res == nil:
			return deny(schema.ReasonError)
		case res.Action == mcp.ElicitationResponseActionDecline:
			return deny(schema.ReasonUserDeclined)
		case res.Action != mcp.ElicitationResponseActionAccept:
			return deny(schema.ReasonUserCancelled)
		}
		defer func() {
			if err := s.mcp.SendElicitationComplete(ctx, mcpserver.ClientSessionFromContext(ctx), id); err != nil {
				s.log.Debug("elicitation/complete not sent", "err", err)
			}
		}()
	} else if err := s.pages.opener(wctx, url); err != nil {
		s.log.Warn("approval page could not be opened in a browser; denying (set --approval-browser)",
			"approval_id", gate.ApprovalID, "err", err)
		return deny(schema.ReasonError)
	}
	restore := run.fw.waitingFor(waiting)
	defer restore()
	run.fw.note(waiting)
	return s.pageVerdict(ctx, ticket, gate, via)
}

// pageVerdict waits for the page's decision and reads it as a verdict.
func (s *Server) pageVerdict(ctx context.Context, ticket *page.Ticket, gate approval.Gate, via string) approval.Verdict {
	d, err := ticket.Wait(ctx)
	var v approval.Verdict
	switch {
	case errors.Is(err, page.ErrExpired):
		v = approval.Deny(schema.ReasonTimedOut)
	case err != nil:
		v = approval.Deny(schema.ReasonError)
	default:
		v = judgePage(gate, d.Submission) // the judgement the page showed
	}
	v.Via = via
	return v
}

// pageMessage is the URL elicitation's text: the URL itself travels apart.
func pageMessage(gate approval.Gate) string {
	return fmt.Sprintf("KubeIntellect wants to run `%s` (risk: %s) on your cluster and needs your approval. "+
		"Open the approval page to see the exact command and approve or deny it.", gate.Action,
		strings.ToUpper(gate.Risk))
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand never fails on supported systems
	return hex.EncodeToString(b)
}

// askLaterByPage answers a 2026-era client that declared URL mode (and no
// forms) with input_required holding the page's URL; the second leg waits
// for the page (resumeByPage).
func (s *Server) askLaterByPage(ctx context.Context, run *queryRun, gate approval.Gate) (*mcp.CallToolResult, error) {
	expires := time.Now().Add(s.cfg.ApprovalTimeout)
	ticket, url, err := s.openPage(ctx, run.conv, gate, expires)
	if err != nil {
		return s.failAndDeny(ctx, run, gate, fmt.Errorf("approval page: %w", err))
	}
	id := randomID()
	s.pages.park(id, ticket, expires)
	res, err := s.askLaterWith(ctx, run, gate, expires, id, mcp.ElicitationParams{
		Mode: mcp.ElicitationModeURL, ElicitationID: id, URL: url, Message: pageMessage(gate)})
	if err != nil || res.IsError {
		s.pages.forget(id)
	}
	return res, err
}

// resumeByPage is the verdict of the second leg of a 2026-era URL-mode
// approval: the client's answer to the URL elicitation, then the page's
// decision, waited for until the state's expiry.
func (s *Server) resumeByPage(ctx context.Context, req mcp.CallToolRequest, gate approval.Gate, pageID string,
	run *queryRun) approval.Verdict {
	deny := func(r schema.Reason) approval.Verdict {
		v := approval.Deny(r)
		v.Via = viaURL
		return v
	}
	ticket := s.pages.claim(pageID)
	if ticket == nil { // issued by another process, or before a restart
		return deny(schema.ReasonError)
	}
	defer ticket.Close()
	ans := mcpserver.ElicitationResponse(req.Params.InputResponses, elicitationID)
	switch {
	case ans == nil:
		return deny(schema.ReasonError)
	case ans.Action == mcp.ElicitationResponseActionDecline:
		return deny(schema.ReasonUserDeclined)
	case ans.Action != mcp.ElicitationResponseActionAccept:
		return deny(schema.ReasonUserCancelled)
	}
	restore := run.fw.waitingFor(pageWaitingClient)
	defer restore()
	run.fw.note(pageWaitingClient)
	return s.pageVerdict(ctx, ticket, gate, viaURL)
}
