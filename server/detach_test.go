package server

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/approval"
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
	release := make(chan struct{})
	f.backend.Handle("clean up", kubeqtest.Script{
		kubeqtest.Status("investigating", "Looking"),
		kubeqtest.WaitFor(release),
		gate(podCommand, "act-waiting"),
	})
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
