package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// notifier sends one tool call's notifications and remembers the last one,
// so the call can wait for it to reach the client before returning.
type notifier struct {
	s *Server

	progressMu sync.Mutex // held across numbering and sending, so progress arrives increasing

	mu       sync.Mutex
	last     *delivery
	sent     int
	dropped  int
	progress int64 // last progress value sent, under progressMu
	out      *outbox
}

type notifierKey struct{}

// notifierMiddleware counts every tool call in flight (Close waits for
// them and cancels them), gives it a notifier and, when the handler
// returns, waits until its last notification was written to the client.
func (s *Server) notifierMiddleware(next mcpserver.ToolHandlerFunc) mcpserver.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if !s.inflight.enter() {
			return mcp.NewToolResultError("kubeq-mcp is shutting down: nothing was sent to KubeIntellect and " +
				"nothing was approved; any approval still pending is denied as it stops."), nil
		}
		defer s.inflight.leave()
		ctx, cancel := s.callContext(ctx)
		defer cancel()
		n := &notifier{s: s}
		if req.Params.Task != nil {
			// A 2025-11-25 task: its approval form names it. (Its progress
			// cannot: mcp-go v1.6.0's SendNotificationToClient drops a
			// _meta from the params it is given.)
			lt := legacyTask{id: s.legacyIDs.take(req)}
			ctx = context.WithValue(ctx, legacyTaskKey{}, lt)
		}
		res, err := next(context.WithValue(ctx, notifierKey{}, n), req)
		n.flush(ctx)
		if sent, dropped := n.stats(); dropped > 0 {
			s.log.Warn("notifications dropped: the client's queue was full", "tool", req.Params.Name,
				"sent", sent, "dropped", dropped)
		}
		return res, err
	}
}

func notifierFrom(ctx context.Context) *notifier {
	n, _ := ctx.Value(notifierKey{}).(*notifier)
	return n
}

// Notify sends a notification from inside a tool handler and tracks its
// delivery: the tool call does not return until it was written (bounded by
// Config.FlushTimeout). Handlers should send every notification through it.
func Notify(ctx context.Context, method string, params map[string]any) error {
	n := notifierFrom(ctx)
	if n == nil {
		return errors.New("notify: not inside a kubeq-mcp tool call")
	}
	return n.send(ctx, method, params)
}

func (n *notifier) send(ctx context.Context, method string, params map[string]any) error {
	// Only stdio needs the write tracked (see deliveryTracker); on HTTP,
	// mcp-go v1.6.0 writes a call's notifications on its POST stream ahead
	// of its result by itself, so the marker is not even built there.
	var d *delivery
	if key := streamKeyFrom(ctx); key != "" {
		// mcp-go marshals params as a map (sorted keys), so this exact
		// JSON is a substring of what reaches the wire.
		marker, err := json.Marshal(params)
		if err != nil {
			return fmt.Errorf("notify %s: %w", method, err)
		}
		d = n.s.tracker.expect(key, marker)
	}
	if err := n.s.mcp.SendNotificationToClient(ctx, method, params); err != nil {
		n.s.tracker.forget(d)
		n.mu.Lock()
		n.dropped++
		n.mu.Unlock()
		n.s.counters.droppedNotifications.Add(1)
		n.s.log.Debug("notification not sent", "method", method, "err", err)
		return fmt.Errorf("notify %s: %w", method, err)
	}
	n.mu.Lock()
	prev := n.last
	n.last = d
	n.sent++
	n.mu.Unlock()
	// Notifications of one call are written in order, so only the last one
	// needs waiting for.
	n.s.tracker.forget(prev)
	n.s.counters.sentNotifications.Add(1)
	return nil
}

// progress sends a progress notification with the next progress value.
func (n *notifier) sendProgress(ctx context.Context, token mcp.ProgressToken, message string) error {
	n.progressMu.Lock()
	defer n.progressMu.Unlock()
	n.progress++
	p := n.progress
	return n.send(ctx, string(mcp.MethodNotificationProgress), map[string]any{
		"progressToken": token,
		"progress":      p,
		"message":       message,
	})
}

// flush waits until the progress queued was handed on and the last
// notification sent was written, or gives up after Config.FlushTimeout.
func (n *notifier) flush(ctx context.Context) {
	n.drainOutbox(ctx)
	n.mu.Lock()
	d := n.last
	n.last = nil
	n.mu.Unlock()
	if d == nil {
		return
	}
	if !n.s.tracker.wait(ctx, d, n.s.cfg.FlushTimeout) {
		n.s.counters.unflushedNotifications.Add(1)
		n.s.log.Debug("last notification not seen on the wire before the result", "timeout", n.s.cfg.FlushTimeout)
		return
	}
	// The ping barrier is for 2025-era TypeScript clients; the 2026-07-28
	// revision removed ping, so a 2026-era client never gets one.
	if link := stdioLinkFrom(ctx); link != nil && !isModern(ctx) && !link.barrier(ctx, n.s.cfg.FlushTimeout) {
		n.s.log.Debug("the client did not answer a ping; progress may reach it after the result")
	}
}

func (n *notifier) stats() (sent, dropped int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sent, n.dropped
}
