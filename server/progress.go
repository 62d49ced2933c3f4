package server

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
)

const (
	// minTokenFlushGap is the least time between two size-triggered token
	// messages.
	minTokenFlushGap = 20 * time.Millisecond
	// maxProgressMessage flushes tokens whatever the gap.
	maxProgressMessage = 64 << 10
)

// forwarder turns one call's backend events into progress notifications.
//
// Answer tokens are coalesced: they wait until CoalesceBytes have gathered
// or CoalesceInterval has passed since the first of them, and any other
// event flushes them first so the client sees things in backend order.
// While nothing is sent for KeepAliveInterval (the backend only sends
// heartbeats during long tool runs), a keep-alive message is sent so idle
// timers in clients do not fire. Without a progress token nothing is sent.
type forwarder struct {
	ctx   context.Context
	n     *notifier
	token mcp.ProgressToken
	cfg   *Config

	mu       sync.Mutex
	buf      strings.Builder
	bufSince time.Time
	lastSent time.Time
	closed   bool
	idleMsg  string    // the keep-alive's text; "" for the default
	due      time.Time // when the timer fires next

	// One timer, not a goroutine per call: it flushes tokens that waited
	// long enough and sends keep-alives (tick), then sets itself again.
	timer  *time.Timer
	tickMu sync.Mutex // one tick at a time
}

// newForwarder starts a forwarder; close it when the call ends. It returns
// nil when the call has no progress token: all methods accept nil.
func (s *Server) newForwarder(ctx context.Context, req mcp.CallToolRequest) *forwarder {
	if req.Params.Meta == nil || req.Params.Meta.ProgressToken == nil {
		return nil
	}
	n := notifierFrom(ctx)
	if n == nil {
		return nil
	}
	now := time.Now()
	f := &forwarder{
		ctx:      ctx,
		n:        n,
		token:    req.Params.Meta.ProgressToken,
		cfg:      &s.cfg,
		lastSent: now,
		due:      now.Add(s.cfg.KeepAliveInterval),
	}
	f.mu.Lock() // tick reads f.timer under f.mu
	f.timer = time.AfterFunc(s.cfg.KeepAliveInterval, f.tick)
	f.mu.Unlock()
	return f
}

// event forwards one backend event.
func (f *forwarder) event(ev kubeq.Event) {
	if f == nil {
		return
	}
	switch e := ev.(type) {
	case kubeq.Token:
		f.mu.Lock()
		if f.buf.Len() == 0 {
			f.bufSince = time.Now()
			// The tokens are due before the timer fires: bring it forward.
			if due := f.bufSince.Add(f.cfg.CoalesceInterval); due.Before(f.due) && !f.closed {
				f.due = due
				f.timer.Reset(f.cfg.CoalesceInterval)
			}
		}
		f.buf.WriteString(e.Content)
		// Size flushes are spaced out too, so a token flood gives tens of
		// messages a second, not thousands the client queue would drop.
		full := f.buf.Len() >= f.cfg.CoalesceBytes && time.Since(f.lastSent) >= minTokenFlushGap ||
			f.buf.Len() >= maxProgressMessage
		f.mu.Unlock()
		if full {
			f.flushTokens()
		}
	case kubeq.Status:
		f.say(statusLine(e))
	case kubeq.ToolCall:
		f.say(toolCallLine(e))
	case kubeq.ToolResult:
		f.say(toolResultLine(e))
	case kubeq.Plan:
		f.say(planLine(e))
	case kubeq.HitlRequest:
		f.say(fmt.Sprintf("approval needed (%s risk): %s", e.Risk, e.Action))
	case kubeq.Error:
		f.say("backend error: " + oneLine(e.Message, 300))
	}
}

// waitingFor makes msg the keep-alive's text until the returned func runs.
func (f *forwarder) waitingFor(msg string) (restore func()) {
	if f == nil {
		return func() {}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.idleMsg = msg
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.idleMsg = ""
	}
}

// note sends a message of the server's own (approval outcomes, notices).
func (f *forwarder) note(msg string) {
	if f == nil {
		return
	}
	f.say(msg)
}

func (f *forwarder) say(msg string) {
	f.flushTokens()
	f.send(msg)
}

func (f *forwarder) send(msg string) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.lastSent = time.Now()
	f.mu.Unlock()
	// The timer is left as it is: it finds the later lastSent when it
	// fires and sets itself again; moving it on every message would cost
	// a timer update each.
	// A full outbox drops the message; the notifier counts and logs it.
	f.n.queueProgress(f.ctx, f.token, msg)
}

func (f *forwarder) flushTokens() {
	f.mu.Lock()
	if f.buf.Len() == 0 {
		f.mu.Unlock()
		return
	}
	text := f.buf.String()
	f.buf.Reset()
	f.mu.Unlock()
	f.send(text)
}

// close flushes what is left and stops the timer.
func (f *forwarder) close() {
	if f == nil {
		return
	}
	f.mu.Lock()
	f.timer.Stop()
	f.mu.Unlock()
	// A tick already running may hold tokens it took from the buffer and
	// not yet sent: wait for it, so they go out before the result, counted.
	f.tickMu.Lock()
	defer f.tickMu.Unlock()
	f.flushTokens()
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
}

// tick flushes tokens that waited long enough and sends keep-alives, then
// sets the timer for what is due next. It stops once the forwarder is
// closed or its call has ended.
func (f *forwarder) tick() {
	f.tickMu.Lock()
	defer f.tickMu.Unlock()
	if f.ctx.Err() != nil {
		return
	}
	now := time.Now()
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	tokensDue := f.buf.Len() > 0 && now.Sub(f.bufSince) >= f.cfg.CoalesceInterval
	idle := f.buf.Len() == 0 && now.Sub(f.lastSent) >= f.cfg.KeepAliveInterval
	idleMsg := f.idleMsg
	f.mu.Unlock()
	switch {
	case tokensDue:
		f.flushTokens()
	case idle && idleMsg != "":
		f.send(idleMsg)
	case idle:
		f.send("still working: waiting for KubeIntellect")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	next := f.lastSent.Add(f.cfg.KeepAliveInterval).Sub(now)
	if f.buf.Len() > 0 {
		next = min(next, f.bufSince.Add(f.cfg.CoalesceInterval).Sub(now))
	}
	next = max(next, time.Millisecond)
	f.due = now.Add(next)
	f.timer.Reset(next)
}

// folded reports whether s is already on one line as oneLine makes it:
// words separated by single spaces, none before or after (most progress
// lines are: no need to split and join them).
func folded(s string) bool {
	space := true // at the start, a space would be leading
	for _, r := range s {
		if unicode.IsSpace(r) {
			if r != ' ' || space {
				return false
			}
			space = true
		} else {
			space = false
		}
	}
	return !space || s == ""
}

func statusLine(e kubeq.Status) string {
	if e.Phase == "" {
		return oneLine(e.Message, 300)
	}
	return "[" + e.Phase + "] " + oneLine(e.Message, 300)
}

func toolCallLine(e kubeq.ToolCall) string {
	switch {
	case e.Command != "":
		return "running: " + oneLine(e.Command, 300)
	case e.Message != "":
		return oneLine(e.Message, 300)
	default:
		return "calling " + e.Tool
	}
}

func toolResultLine(e kubeq.ToolResult) string {
	out := oneLine(e.Output, 200)
	if out == "" {
		out = "(no output)"
	}
	if e.Tool == "" {
		return "result: " + out
	}
	return e.Tool + " → " + out
}

func planLine(e kubeq.Plan) string {
	done := 0
	current := ""
	for _, st := range e.Steps {
		switch st.Status {
		case "done", "skipped":
			done++
		case "in_progress":
			if current == "" {
				current = st.Description
			}
		}
	}
	line := fmt.Sprintf("plan: %d/%d steps done", done, len(e.Steps))
	if current != "" {
		line += "; now: " + oneLine(current, 200)
	}
	return line
}

// oneLine folds s onto one line and caps it at n runes.
func oneLine(s string, n int) string {
	if !folded(s) {
		s = strings.Join(strings.Fields(s), " ")
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}
