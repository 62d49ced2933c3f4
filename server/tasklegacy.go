package server

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// The 2025-11-25 tasks say every message related to a task carries its id
// in _meta (io.modelcontextprotocol/related-task), such as the approval
// form sent while it runs. (Its progress cannot: mcp-go v1.6.0's
// SendNotificationToClient drops the _meta of the params.) mcp-go v1.6.0
// runs such a task but tells its id only to its task-created hook, not to
// the handler. That hook runs on the request's own context, after the
// tool-call hooks and before the handler starts, so the id is handed over
// in two steps: the before-call hook marks the request (a header of its
// own, which the handler's copy shares) and notes the context; the
// created hook finds the mark by that context and records the id under it.
// The handler takes the id by its mark. If mcp-go ever changes the
// context between the two hooks, the id is simply not found and the
// messages go without it, as before.

// legacySlotHeader marks a task-augmented tools/call for its handler.
const legacySlotHeader = "X-Kubeq-Mcp-Legacy-Task"

type legacyTaskIDs struct {
	mu    sync.Mutex
	seq   uint64
	byCtx map[context.Context]string // request context → mark, until the call returns
	ids   map[string]legacyID        // mark → task id, until the handler takes it
}

type legacyID struct {
	id      string
	created time.Time
}

func newLegacyTaskIDs() *legacyTaskIDs {
	return &legacyTaskIDs{byCtx: map[context.Context]string{}, ids: map[string]legacyID{}}
}

// dropModernTaskParam takes the 2025-11-25 task param off a 2026-era
// tools/call (a before-call-tool hook; mcp-go decides on a task after the
// hooks, from the request they changed). Such a request has no session,
// so mcp-go's task would belong to none: every 2025 session could list it
// and read its result. The call is served as any 2026-era call: as the
// extension's task if it declares the extension, else a normal call.
func dropModernTaskParam(ctx context.Context, _ any, req *mcp.CallToolRequest) {
	if req.Params.Task != nil && isModern(ctx) {
		req.Params.Task = nil
	}
}

// mark notes a task-augmented call (a before-call-tool hook).
func (l *legacyTaskIDs) mark(ctx context.Context, _ any, req *mcp.CallToolRequest) {
	if req.Params.Task == nil || req.Header == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	key := strconv.FormatUint(l.seq, 10)
	req.Header.Set(legacySlotHeader, key)
	l.byCtx[ctx] = key
}

// created records the id mcp-go gave the task (a task-created hook).
func (l *legacyTaskIDs) created(ctx context.Context, m mcpserver.TaskMetrics, ttl time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	key, ok := l.byCtx[ctx]
	if !ok {
		return
	}
	delete(l.byCtx, ctx)
	now := time.Now()
	// An id whose handler never ran (a task cancelled before it started)
	// is forgotten at the longest a task lives.
	for k, v := range l.ids {
		if now.Sub(v.created) > ttl {
			delete(l.ids, k)
		}
	}
	l.ids[key] = legacyID{id: m.TaskID, created: now}
}

// done forgets the call's context once mcp-go has answered it (an
// after-call-tool or error hook): a call that made no task leaves nothing.
func (l *legacyTaskIDs) done(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.byCtx, ctx)
}

// take returns the id of the task whose handler got req, "" when unknown.
func (l *legacyTaskIDs) take(req mcp.CallToolRequest) string {
	key := req.Header.Get(legacySlotHeader)
	if key == "" {
		return ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	v := l.ids[key]
	delete(l.ids, key)
	return v.id
}

// relatedTask is the related-task _meta of the 2025-11-25 task whose work
// ctx is, nil outside one (or when its id is not known).
func relatedTask(ctx context.Context) map[string]any {
	t, _ := ctx.Value(legacyTaskKey{}).(legacyTask)
	if t.id == "" {
		return nil
	}
	return map[string]any{mcp.RelatedTaskMetaKey: mcp.RelatedTaskMeta(t.id)}
}

// withRelatedTask is p with the related-task _meta of ctx's task, if any.
func withRelatedTask(ctx context.Context, p mcp.ElicitationParams) mcp.ElicitationParams {
	if meta := relatedTask(ctx); meta != nil {
		p.Meta = &mcp.Meta{AdditionalFields: meta}
	}
	return p
}
