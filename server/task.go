package server

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/kubeq-mcp/kubeq-mcp/schema"
	"github.com/kubeq-mcp/kubeq-mcp/tasks"
)

// kube_query as a task of the Tasks extension (io.modelcontextprotocol/
// tasks, 2026-07-28), for a client that declares the extension in the
// capabilities of its tools/call. The call is answered at once with the
// task's handle; the task runs the call as kube_query's handler would,
// from a context of its own. When the handler would answer input_required
// (an approval form, with its sealed state), the task shows the form in
// inputRequests instead and, once tasks/update brings the answer, calls the
// handler again with the answer and the state, exactly as a client's
// retry: the same sealing, ledger and judging rules decide what is sent.
// Cancel, TTL and shutdown while a form is open resume with no answer,
// which those rules turn into a deny.

// TasksExtension is the extension's identifier.
const TasksExtension = "io.modelcontextprotocol/tasks"

// taskMarker carries a task's handle from the handler to the transport,
// which sends it as the call's result (taskrpc.go): mcp-go's
// CallToolResult has no room for a CreateTaskResult.
const taskMarker = "kubeq-mcp/task"

// taskPollInterval is the pollIntervalMs of every task.
const taskPollInterval = time.Second

type taskKey struct{}

// taskTimedOutKey marks the retry of a task's approval left unanswered
// until its time ran out: it is denied as timed out.
type taskTimedOutKey struct{}

// taskFrom is the task whose work ctx is, if any.
func taskFrom(ctx context.Context) *tasks.Task {
	t, _ := ctx.Value(taskKey{}).(*tasks.Task)
	return t
}

// legacyTaskKey marks the work of a 2025-11-25 task (mcp-go runs it): its
// context ends by tasks/cancel, its TTL or shutdown, never by a client
// giving up.
type legacyTaskKey struct{}

// legacyTask is the value under legacyTaskKey: the task's id, "" when
// mcp-go's hooks did not tell it (tasklegacy.go).
type legacyTask struct{ id string }

// inTask reports whether ctx is a task's work, of either shape: a stop
// is the user's, and no call deadline applies.
func inTask(ctx context.Context) bool {
	_, legacy := ctx.Value(legacyTaskKey{}).(legacyTask)
	return legacy || taskFrom(ctx) != nil
}

// boundTaskTTL caps a 2025-11-25 task's TTL at --task-ttl (and gives one
// to a task that asked for none): mcp-go stops a task at its TTL, so no
// task runs unbounded.
func (s *Server) boundTaskTTL(_ context.Context, _ any, req *mcp.CallToolRequest) {
	if req.Params.Task == nil {
		return
	}
	limit := s.cfg.TaskTTL.Milliseconds()
	if req.Params.Task.TTL == nil || *req.Params.Task.TTL <= 0 || *req.Params.Task.TTL > limit {
		req.Params.Task.TTL = &limit
	}
}

type ownerKey struct{}

// withOwner records who makes requests on ctx: the HTTP bearer token,
// keyed-hashed (httpOwner; everyone without a token is one "http" client),
// or the stdio session.
func withOwner(ctx context.Context, owner string) context.Context {
	return context.WithValue(ctx, ownerKey{}, owner)
}

func ownerFrom(ctx context.Context) string {
	o, _ := ctx.Value(ownerKey{}).(string)
	return o
}

// declaresTasks reports whether a request's _meta declares the extension
// in its per-request client capabilities (2026-era requests only).
func declaresTasks(meta map[string]any) bool {
	caps, ok := meta[mcp.MetaKeyClientCapabilities].(map[string]any)
	if !ok {
		return false
	}
	ext, ok := caps["extensions"].(map[string]any)
	if !ok {
		return false
	}
	_, ok = ext[TasksExtension]
	return ok
}

// wantsTask reports whether this kube_query call becomes a task. The
// server decides per request: past --max-detached tasks running, a call
// is served as a normal call, within the limits of every call, so tasks
// cannot pile up unbounded.
func (s *Server) wantsTask(ctx context.Context, req mcp.CallToolRequest) bool {
	if s.tasks == nil || taskFrom(ctx) != nil || !isModern(ctx) || ownerFrom(ctx) == "" ||
		req.Params.Meta == nil || !declaresTasks(req.Params.Meta.AdditionalFields) {
		return false
	}
	if s.tasks.Running() >= s.cfg.MaxDetached {
		s.log.Warn("too many tasks running; serving a kube_query call without a task", "max", s.cfg.MaxDetached)
		return false
	}
	return true
}

// startTask records the call as a task, starts it, and returns its handle.
func (s *Server) startTask(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	tctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(s.callsCtx, cancel) // shutdown ends it
	t, err := s.tasks.Create(ownerFrom(ctx), func() { cancel() })
	if err != nil {
		stop()
		cancel()
		return nil, err
	}
	// Progress is not sent on a task: its latest line is its statusMessage.
	if req.Params.Meta != nil {
		m := *req.Params.Meta
		m.ProgressToken = nil
		req.Params.Meta = &m
	}
	// With a shared store the handle is sent only once the task is in it:
	// the client's next request may reach another replica.
	var shared []byte
	if s.sharesTasks(ownerFrom(ctx)) {
		shared = taskView(t)
		if err := s.recordNewTask(t, shared); err != nil {
			s.tasks.Remove(t.ID)
			stop()
			cancel()
			s.log.Error("could not record a task in the store; nothing sent", "store", s.ledger.Describe(), "err", err)
			return mcp.NewToolResultError(fmt.Sprintf("refused: kubeq-mcp cannot record this task in its store (%s), "+
				"so it sent nothing to KubeIntellect. Check that the store is running and reachable from kubeq-mcp "+
				"(--store / KUBEQ_MCP_STORE), then ask again; kube_health reports the store's state. (%v)",
				s.ledger.Describe(), err)), nil
		}
	}
	// The handle shows the task as created: taken before it runs, it can
	// never already carry an outcome.
	handle := t.View()
	s.drivers.Add(1)
	go func() {
		defer s.drivers.Done()
		defer stop()
		defer cancel()
		ctx := context.WithValue(tctx, taskKey{}, t)
		if shared != nil {
			var sh *taskSharer
			ctx, sh = s.startSharing(ctx, t, shared, cancel)
			defer sh.stop() // the last write, which no older one may overwrite
		}
		s.runTask(ctx, t, req)
	}()
	s.log.Info("kube_query runs as a task", "task", t.ID)
	return &mcp.CallToolResult{Result: mcp.Result{Meta: &mcp.Meta{AdditionalFields: map[string]any{taskMarker: handle}}}}, nil
}

// runTask runs the call to its end, through its approval forms.
func (s *Server) runTask(ctx context.Context, t *tasks.Task, req mcp.CallToolRequest) {
	rctx := ctx
	for round := 1; ; round++ {
		res, err := s.handleQuery(rctx, req)
		if err == nil && res != nil && res.ResultType == mcp.ResultTypeInputRequired && res.RequestState != "" {
			var timedOut bool
			var denied *mcp.CallToolResult
			req, timedOut, denied, err = s.taskInput(ctx, t, req, res, round)
			rctx = ctx
			if timedOut {
				rctx = context.WithValue(ctx, taskTimedOutKey{}, true)
			}
			if err == nil {
				continue
			}
			// Cancelled at a later gate, the deny's result still holds
			// the approvals of earlier rounds, whose changes ran.
			if t.Stopped() && ranApproved(denied) {
				res, err = denied, nil
			}
		}
		// Stopped after an approved change ran, the task still completes
		// with what it did, so the client learns it ran (the extension
		// lets a cancel end in another terminal status).
		ranAnyway := err == nil && ranApproved(res)
		switch {
		case t.Stopped() && !ranAnyway:
			t.Cancelled("cancelled by the client")
		case !t.Stopped() && ctx.Err() != nil:
			t.Fail(-32603, "the server is shutting down") // or the TTL, which failed it first
		case err != nil:
			t.Fail(-32603, err.Error())
		default:
			b, merr := json.Marshal(res)
			if merr != nil {
				t.Fail(-32603, merr.Error())
				return
			}
			t.Complete(b)
		}
		return
	}
}

// ranApproved reports whether res records an approval the human gave and
// kubeq-mcp sent.
func ranApproved(res *mcp.CallToolResult) bool {
	if res == nil {
		return false
	}
	out, ok := res.StructuredContent.(schema.QueryOutput)
	if !ok {
		return false
	}
	for _, a := range out.Approvals {
		if a.Decision == schema.Approved {
			return true
		}
	}
	return false
}

// taskInput shows the handler's input requests in the task and waits for
// their answers; it returns the handler's retry. Keys are made unique over
// the task's life, as the extension requires. When the task is stopped
// before the answer, the retry carries none (a deny), and is run at once
// on a context that is not cancelled: the gate is closed before the task
// ends. The deny's result (nil if it failed) is returned with ctx's error,
// so that approvals of earlier rounds are not lost.
func (s *Server) taskInput(ctx context.Context, t *tasks.Task, req mcp.CallToolRequest, res *mcp.CallToolResult, round int) (_ mcp.CallToolRequest, timedOut bool, denied *mcp.CallToolResult, _ error) {
	keys := map[string]string{}
	requests := map[string]json.RawMessage{}
	for k, r := range res.InputRequests {
		b, err := json.Marshal(r)
		if err != nil {
			return req, false, nil, fmt.Errorf("input request: %w", err)
		}
		key := fmt.Sprintf("%s-%d", k, round)
		keys[key] = k
		requests[key] = b
	}
	s.askTask(ctx, t, "waiting for a human to approve or deny the proposed action", requests)
	retry := req
	retry.Params.RequestState = res.RequestState
	retry.Params.InputResponses = nil
	// Unanswered when the approval's time is about to run out, the retry
	// is a deny for the timeout, sent here so the task's result has the
	// backend's reply to it (a little before the form's own deadline,
	// which the sweeper keeps: if this runs late, the sweeper denies and
	// the retry finds the gate closed).
	timeout := time.NewTimer(s.cfg.ApprovalTimeout - min(time.Second, s.cfg.ApprovalTimeout/10))
	defer timeout.Stop()
	select {
	case <-timeout.C:
		t.Working()
		return retry, true, nil, nil
	case answers := <-t.Answers():
		retry.Params.InputResponses = mcp.InputResponses{}
		for key, raw := range answers {
			var ir mcp.InputResponse
			if err := json.Unmarshal(raw, &ir); err == nil {
				retry.Params.InputResponses[keys[key]] = ir
			}
		}
		t.Working()
		return retry, false, nil, nil
	case <-ctx.Done():
		// Bounded like every deny: the conversation's lease may be held.
		dctx, cancel := s.denyContext(ctx)
		defer cancel()
		dres, err := s.handleQuery(dctx, retry)
		if err != nil {
			return req, false, nil, ctx.Err()
		}
		if dres != nil && dres.ResultType == mcp.ResultTypeInputRequired {
			s.log.Warn("a task ended with a new approval form open; it is denied when its time runs out", "task", t.ID)
		}
		return req, false, dres, ctx.Err()
	}
}

// sweepTasks fails and deletes tasks past their TTL until Close. A failed
// one stays readable for a grace as long as its TTL, at most a minute.
func (s *Server) sweepTasks() {
	ttl := s.cfg.TaskTTL
	tick := time.NewTicker(max(min(ttl/8, 5*time.Second), time.Millisecond)) // a tiny --task-ttl must not make a zero period
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-tick.C:
			s.tasks.Sweep(now, min(ttl, time.Minute))
		}
	}
}
