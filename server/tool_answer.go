package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/kubeq-mcp/kubeq-mcp/schema"
)

// answerTool is kube_answer's definition.
func answerTool() mcp.Tool {
	return newTool("kube_answer", "Get the rest of a running KubeIntellect investigation",
		"Get the answer of a kube_query investigation that was still running when its call returned "+
			"(its result had status \"running\"). Pass that result's conversation_id. With wait_seconds, "+
			"waits up to that long for the investigation to finish; it streams progress meanwhile. Returns "+
			"the whole answer so far with the same fields as kube_query, status \"complete\" once it is done. "+
			"If the agent proposed a change while nobody was watching, the human is asked to approve or "+
			"deny it now. Safe to call again: it only reads.",
		schema.MustFor(&schema.AnswerInput{}),
		schema.MustFor(&schema.QueryOutput{}),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(true),
	)
}

func (s *Server) addAnswerTool() {
	s.mcp.AddTool(answerTool(), s.handleAnswer)
}

// handleAnswer returns a detached run's answer: whole once it finished,
// else what came within wait_seconds; a gate it waits at is asked now.
func (s *Server) handleAnswer(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if req.Params.RequestState != "" || len(req.Params.InputResponses) > 0 {
		// A 2026-era client answering the sealed form this tool asked
		// (adopt): the approval's second leg, as for kube_query.
		return s.resumeQuery(ctx, req)
	}
	start := time.Now() // the call deadline counts from here, whatever this call waits for first
	conv, wait, err := decodeAnswerInput(req.Params.Arguments)
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	lr := s.live.get(conv)
	if lr == nil {
		lr = s.awaitDetach(ctx, conv)
	}
	if d := s.callDeadline(ctx); d > 0 {
		wait = min(wait, d)
	}
	if lr == nil {
		if m := s.readMirror(ctx, conv); m != nil {
			return s.answerFromMirror(ctx, req, start, conv, m, wait)
		}
		return mcp.NewToolResultError(fmt.Sprintf("no investigation is kept for conversation_id %q: it "+
			"finished more than %s ago, it never ran past its call, or it ran on a kubeq-mcp that has "+
			"restarted since. Ask again with kube_query.", conv, s.cfg.AnswerTTL)), nil
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	select {
	case <-lr.done:
	default:
		s.follow(wctx, req, lr)
	}
	select {
	case <-lr.done:
	default:
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return s.running(lr), nil
	}
	if lr.hitl == nil {
		return cloneResult(lr.result), nil
	}
	// The run waits at a gate: ask the human now, holding the lease.
	call := &queryRun{conv: conv}
	call.watchedBy(ctx, req)
	call.callStart = start
	// Another call may be asking it already, and then hold the conversation
	// for as long as the human and the turn after take: wait for it at most
	// until the call deadline.
	actx, acancel := s.watchContext(ctx, call)
	held, err := s.ledger.Acquire(actx, conv)
	acancel()
	if err != nil && ctx.Err() == nil && actx.Err() != nil {
		if cur := s.live.get(conv); cur != nil && !cur.finished() {
			return s.running(cur), nil // the approval was answered, and its turn goes on
		}
		return mcp.NewToolResultError(answeringElsewhere), nil
	}
	if err != nil {
		return s.storeFailure(ctx, call, err)
	}
	call.held = held
	defer call.release()
	p, err := held.Take(ctx)
	if err != nil {
		return s.storeFailure(ctx, call, err)
	}
	if p == nil || !p.Unasked || !lr.awaits(p.Gate) {
		if p != nil {
			_ = held.Set(ctx, p) // not ours: leave it as it was
		}
		if lr.result != nil {
			return cloneResult(lr.result), nil
		}
		return mcp.NewToolResultError("the approval this investigation waited for was already decided " +
			"(denied when its time ran out, or answered through another call); nothing was approved here. " +
			"Ask again with kube_query."), nil
	}
	call.fw = s.newForwarder(ctx, req)
	defer call.fw.close()
	return s.adopt(ctx, lr, call, "")
}

// answeringElsewhere is kube_answer's result when another call holds the
// conversation, asking the approval it came for, past the call deadline.
const answeringElsewhere = "another call on this conversation is answering the approval this " +
	"investigation waited for; call kube_answer again for its outcome."

// follow forwards the progress of lr's running turn to req's client until
// the turn ends or ctx ends.
func (s *Server) follow(ctx context.Context, req mcp.CallToolRequest, lr *liveRun) {
	fw := s.newForwarder(ctx, req)
	defer fw.close()
	lr.mu.Lock()
	tr := lr.turn
	lr.mu.Unlock()
	tr.Attach()
	defer tr.Detach()
	_, _ = tr.Follow(ctx, tr.End(), fw.event) // event never blocks
	// The driver settles the run right after the turn: wait for it.
	select {
	case <-lr.done:
	case <-ctx.Done():
	}
}

// decodeAnswerInput checks kube_answer's arguments as its schema states.
func decodeAnswerInput(args any) (conv string, wait time.Duration, err error) {
	m, err := rawArgs(args, "kube_answer", "conversation_id", "wait_seconds")
	if err != nil {
		return "", 0, err
	}
	c, ok := m["conversation_id"].(string)
	if !ok {
		if _, present := m["conversation_id"]; present {
			return "", 0, fmt.Errorf("invalid arguments: conversation_id must be a string, not %s", jsonType(m["conversation_id"]))
		}
		return "", 0, errors.New("invalid arguments: conversation_id: required (the conversation_id of a kube_query result whose status was running)")
	}
	if !conversationIDRe.MatchString(c) {
		return "", 0, fmt.Errorf("invalid arguments: conversation_id %q: must be a conversation_id returned by kube_query", oneLine(c, 80))
	}
	if v, present := m["wait_seconds"]; present && v != nil {
		n, ok := v.(float64)
		if !ok || n != float64(int64(n)) || n < 0 || n > schema.MaxWaitSeconds {
			return "", 0, fmt.Errorf("invalid arguments: wait_seconds must be a whole number from 0 to %d", schema.MaxWaitSeconds)
		}
		wait = time.Duration(n) * time.Second
	}
	return c, wait, nil
}

// awaitDetach covers a kube_answer that overtakes its own kube_query: the
// client gave up on the query and asked at once, before the query's
// handler saw its context end. While a kube_query call on conv is still in
// its handler, wait (bounded) for it to leave its run behind.
func (s *Server) awaitDetach(ctx context.Context, conv string) *liveRun {
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		lr, busy := s.live.lookup(conv)
		if lr != nil || !busy {
			return lr
		}
		select {
		case <-wctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// answerFromMirror answers kube_answer on a replica that is not running
// conv's investigation, from what the one running it mirrored into the
// shared store: the answer so far (polling up to wait while it runs), its
// result, or, when it waits at a gate, the human is asked here.
func (s *Server) answerFromMirror(ctx context.Context, req mcp.CallToolRequest, start time.Time, conv string, m *runMirror, wait time.Duration) (*mcp.CallToolResult, error) {
	deadline := time.Now().Add(wait)
	for m.State == "running" && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(250*time.Millisecond, time.Until(deadline))):
		}
		if next := s.readMirror(ctx, conv); next != nil {
			m = next
		}
	}
	switch m.State {
	case "complete":
		return m.result(), nil
	case "awaiting":
	default:
		return s.runningResult(m.run(conv), m.Latest), nil
	}
	// The run waits at a gate recorded unasked in the shared ledger: take
	// it under the lease and ask the human here.
	run := m.run(conv)
	run.watchedBy(ctx, req)
	run.callStart = start
	// Another call may be asking it already (on any replica), and hold the
	// conversation for as long as the human and the turn after take: wait
	// at most until the call deadline, as handleAnswer does.
	actx, acancel := s.watchContext(ctx, run)
	held, err := s.ledger.Acquire(actx, conv)
	acancel()
	if err != nil && ctx.Err() == nil && actx.Err() != nil {
		if cur := s.readMirror(ctx, conv); cur != nil && cur.State == "running" {
			return s.runningResult(cur.run(conv), cur.Latest), nil // the approval was answered, and its turn goes on
		}
		return mcp.NewToolResultError(answeringElsewhere), nil
	}
	if err != nil {
		return s.storeFailure(ctx, run, err)
	}
	run.held = held
	defer run.release()
	p, err := held.Take(ctx)
	if err != nil {
		return s.storeFailure(ctx, run, err)
	}
	if p == nil || !p.Unasked || m.Gate == nil || p.Gate.ApprovalID != m.Gate.ApprovalID || p.Gate.Action != m.Gate.Action {
		if p != nil {
			_ = held.Set(ctx, p) // not the mirrored gate: leave it as it was
		}
		return mcp.NewToolResultError("the approval this investigation waited for was already decided " +
			"(denied when its time ran out, or answered through another call); nothing was approved here. " +
			"Ask again with kube_query."), nil
	}
	run.fw = s.newForwarder(ctx, req)
	defer run.fw.close()
	res, err := s.gates(ctx, run, m.Gate)
	if res != nil && !run.detached {
		done := runMirror{State: "complete", User: run.user, Started: run.started, Text: resultText(res), IsError: res.IsError}
		if res.StructuredContent != nil {
			done.Structured, _ = json.Marshal(res.StructuredContent)
		}
		s.putMirror(conv, done, s.cfg.AnswerTTL)
	}
	return res, err
}
