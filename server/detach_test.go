package server

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/approval"
	"github.com/kubeq-mcp/kubeq-mcp/internal/redistest"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// slowRelease is a real store whose next lease release on conv, once
// armed, returns only after delay: the lease is free meanwhile, as when
// the release's reply is slow to come back from a shared store.
type slowRelease struct {
	approval.Store
	conv  string
	delay time.Duration
	armed atomic.Bool
}

func (s *slowRelease) ReleaseLease(ctx context.Context, conv, owner string) error {
	err := s.Store.ReleaseLease(ctx, conv, owner)
	if conv == s.conv && s.armed.CompareAndSwap(true, false) {
		time.Sleep(s.delay)
	}
	return err
}

// A kube_query waiting for the conversation while a detached turn runs
// to a gate is woken when the driver lets the lease go: it must find the
// run settled and ask the human, not deny the gate unasked as a gate an
// earlier call left pending.
func TestGateRaisedWhileDetachedIsAskedOfAWaitingQuery(t *testing.T) {
	conv := "conv-waiting-query"
	store := &slowRelease{Store: approval.NewMemoryStore(), conv: conv, delay: 500 * time.Millisecond}
	deadline := 3 * time.Second // the second call waits for the lease within it
	f := newFixture(t, func(c *Config) {
		c.CallDeadline = &deadline
		c.Ledger = approval.NewLedger(store, approval.Options{})
	})
	release := gateOnRelease(f, "clean up", "act-waiting")
	f.backend.Handle("how are the pods?", kubeqtest.Answer("All running."))
	h := newHuman(t, accept("deny", ""))
	cs := f.connectHuman("stdio", "2025-11-25", h, false)

	res, err := callTool(t, cs, "kube_query", map[string]any{"question": "clean up", "conversation_id": conv}, 20*time.Second)
	require.NoError(t, err)
	require.Equal(t, "running", structured(t, res)["status"], textOf(res))

	type reply struct {
		res *sdk.CallToolResult
		err error
	}
	second := make(chan reply, 1)
	go func() {
		r, err := callTool(t, cs, "kube_query", map[string]any{"question": "how are the pods?", "conversation_id": conv}, 20*time.Second)
		second <- reply{r, err}
	}()
	require.Eventually(t, func() bool { _, busy := f.srv.live.lookup(conv); return busy }, 10*time.Second, time.Millisecond,
		"the second call is in its handler, waiting for the lease")
	store.armed.Store(true)
	close(release)

	r := <-second
	require.NoError(t, r.err)
	require.Len(t, h.shown(), 1, "the human was asked: %s", textOf(r.res))
	approvals := structured(t, r.res)["approvals"].([]any)
	require.Len(t, approvals, 1, textOf(r.res))
	assert.Equal(t, "denied", approvals[0].(map[string]any)["decision"])
	assert.Equal(t, "user_denied", approvals[0].(map[string]any)["reason"], "denied by the human, not unasked")
	assert.Zero(t, f.backend.Received("how are the pods?"), "the question waits for the next call")
	assertNeverApproved(t, f.backend)
}

// A client that gives up while the human is asked about a gate its
// detached investigation raised (by kube_answer, or by the next
// kube_query) loses nothing: the gate is denied, and the investigation's
// result is kept for kube_answer, as for a gate raised in a plain call.
func TestAdoptedGateResultIsKeptWhenTheClientGivesUp(t *testing.T) {
	for _, tool := range []string{"kube_answer", "kube_query"} {
		t.Run(tool, func(t *testing.T) {
			deadline := 300 * time.Millisecond
			f := newFixture(t, func(c *Config) { c.CallDeadline = &deadline })
			release := gateOnRelease(f, "clean up", "act-adopted")
			f.backend.Handle("how are the pods?", kubeqtest.Answer("All running."))
			h := newHuman(t, hangForm) // the client gives up before the human answers
			cs := f.connectHuman("stdio", "2025-11-25", h, false)
			conv := "conv-adopted-" + tool
			res, err := callTool(t, cs, "kube_query", map[string]any{"question": "clean up", "conversation_id": conv}, 20*time.Second)
			require.NoError(t, err)
			require.Equal(t, "running", structured(t, res)["status"], textOf(res))
			close(release)
			waitSettled(t, f, conv)

			args := map[string]any{"conversation_id": conv}
			if tool == "kube_query" {
				args["question"] = "how are the pods?"
			}
			// Long enough for the form to be shown even on a loaded machine.
			_, err = callTool(t, cs, tool, args, 3*time.Second)
			require.Error(t, err, "the client gave up at the form")
			require.Len(t, h.shown(), 1, "the human was asked")

			var out map[string]any
			require.Eventually(t, func() bool {
				r, err := callTool(t, cs, "kube_answer", map[string]any{"conversation_id": conv, "wait_seconds": 1}, 20*time.Second)
				if err != nil || r.IsError {
					return false
				}
				out = structured(t, r)
				return out["status"] == "complete"
			}, 15*time.Second, 20*time.Millisecond, "the denial's result is kept for kube_answer")
			assert.Contains(t, out["answer"], afterDeny)
			approvals := out["approvals"].([]any)
			require.Len(t, approvals, 1)
			assert.Equal(t, "denied", approvals[0].(map[string]any)["decision"])
			assert.Zero(t, f.backend.Received("how are the pods?"), "the question was not sent")
			assertNeverApproved(t, f.backend)
		})
	}
}

// The same for a 2026-era client: it gives up during the sealed form's
// second leg, while the denial it sent is answered; the result is kept.
func TestSealedSecondLegResultIsKeptWhenTheClientGivesUp(t *testing.T) {
	deadline := 300 * time.Millisecond
	f := newFixture(t, func(c *Config) { c.CallDeadline = &deadline })
	release, denied := make(chan struct{}), make(chan struct{})
	f.backend.Handle("clean up", kubeqtest.Script{
		kubeqtest.Status("investigating", "Looking"),
		kubeqtest.WaitFor(release),
		kubeqtest.Gate{
			Command: podCommand, ActionID: "act-sealed-kept",
			OnApprove: kubeqtest.Script{kubeqtest.Tokens(afterApprove)},
			OnDeny:    kubeqtest.Script{kubeqtest.WaitFor(denied), kubeqtest.Tokens(afterDeny)},
		},
	})
	cs := f.connectHuman("http", "", newHuman(t, declineForm), false)
	conv := "conv-sealed-kept"
	res, err := callTool(t, cs, "kube_query", map[string]any{"question": "clean up", "conversation_id": conv}, 20*time.Second)
	require.NoError(t, err)
	require.Equal(t, "running", structured(t, res)["status"], textOf(res))
	close(release)
	waitSettled(t, f, conv)

	args := map[string]any{"conversation_id": conv}
	res, err = callTool(t, cs, "kube_answer", args, 20*time.Second)
	require.NoError(t, err)
	require.Truef(t, res.NeedsInput(), "the sealed form: %s", textOf(res))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: "kube_answer", Arguments: args,
		InputResponses: denyAnswer(), RequestState: res.RequestState})
	require.Error(t, err, "the client gave up while the denial was answered")
	// The server sees the closed stream a moment later (its request's
	// context ends); nothing it exposes says when, so the reply to the
	// denial comes a generous while after: before it, the result would
	// go to a call still counted as watching.
	time.Sleep(time.Second)
	close(denied)

	var out map[string]any
	var last string
	assert.Eventually(t, func() bool {
		r, err := callTool(t, cs, "kube_answer", map[string]any{"conversation_id": conv, "wait_seconds": 1}, 20*time.Second)
		if err != nil || r.IsError {
			last = fmt.Sprint(err)
			if r != nil {
				last = textOf(r)
			}
			return false
		}
		out = structured(t, r)
		return out["status"] == "complete"
	}, 15*time.Second, 20*time.Millisecond)
	require.NotNil(t, out, "the second leg's result is kept for kube_answer; last: %s", last)
	assert.Contains(t, out["answer"], afterDeny)
	approvals := out["approvals"].([]any)
	require.Len(t, approvals, 1)
	assert.Equal(t, "denied", approvals[0].(map[string]any)["decision"])
	assertNeverApproved(t, f.backend)
}

// sharedLedger is a ledger on the redis at url, as each replica has its own.
func sharedLedger(t *testing.T, url string) *approval.Ledger {
	t.Helper()
	store, err := approval.NewRedisStore(url, "kubeq-test:")
	require.NoError(t, err)
	return approval.NewLedger(store, approval.Options{})
}

// kube_answer on a replica that does not run the investigation, for a gate
// another call is already asking (it holds the conversation), waits at
// most its call deadline, as on the replica that runs it, and says so.
func TestAnswerFromMirrorWaitsBoundedForAGateAnotherCallHolds(t *testing.T) {
	rd := redistest.Start(t)
	deadline := 300 * time.Millisecond
	ledgerA := sharedLedger(t, rd.URL(0))
	f := newFixture(t, func(c *Config) { c.CallDeadline = &deadline; c.Ledger = ledgerA })
	b := f.behindWith(t, nil, func(c *Config) { c.CallDeadline = &deadline; c.Ledger = sharedLedger(t, rd.URL(0)) })
	release := gateOnRelease(f, "clean up", "act-mirror-held")
	csA := f.connectHuman("stdio", "2025-11-25", newHuman(t, declineForm), false)
	h := newHuman(t, declineForm)
	csB := b.connectHuman("stdio", "2025-11-25", h, false)
	conv := "conv-mirror-held"
	res, err := callTool(t, csA, "kube_query", map[string]any{"question": "clean up", "conversation_id": conv}, 20*time.Second)
	require.NoError(t, err)
	require.Equal(t, "running", structured(t, res)["status"], textOf(res))
	close(release)
	require.Eventually(t, func() bool {
		m := b.srv.readMirror(context.Background(), conv)
		return m != nil && m.State == "awaiting"
	}, 10*time.Second, 5*time.Millisecond, "replica B reads the gate the turn waits at")

	held, err := ledgerA.Acquire(context.Background(), conv) // another call asking it
	require.NoError(t, err)
	defer held.Release()
	// The client's own limit is far past the deadline: replica B must
	// answer before it.
	res, err = callTool(t, csB, "kube_answer", map[string]any{"conversation_id": conv}, 10*time.Second)
	require.NoError(t, err, "kube_answer returned within its call deadline")
	assert.True(t, res.IsError, textOf(res))
	assert.Contains(t, textOf(res), "another call on this conversation is answering the approval")
	assert.Empty(t, h.shown(), "nobody was asked on replica B")
	assertNeverApproved(t, f.backend)
}
