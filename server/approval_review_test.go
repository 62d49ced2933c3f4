package server

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// denyChain is a gate whose every denial raises another gate, n gates in all.
func denyChain(n int) kubeqtest.Gate {
	var g kubeqtest.Gate
	for i := n; i >= 1; i-- {
		ng := kubeqtest.Gate{Command: fmt.Sprintf("kubectl scale deployment/web --replicas=%d", i),
			ActionID:  fmt.Sprintf("act-%d", i),
			OnApprove: kubeqtest.Script{kubeqtest.Tokens(afterApprove)}}
		if i < n {
			ng.OnDeny = kubeqtest.Script{kubeqtest.Tokens("then instead:"), g}
		} else {
			ng.OnDeny = kubeqtest.Script{kubeqtest.Tokens(afterDeny)}
		}
		g = ng
	}
	return g
}

// Found in review: denyPending -> denyReplies exhausts maxDenyChain, records the 7th
// gate as pending and returns nil; handleQuery then sends the new question
// on top of the open gate. On a V2 backend that question approves it.
func TestFailsafeDenyChainExhaustedSendsNothing(t *testing.T) {
	f := newFixture(t, nil, kubeqtest.WithV2())
	f.backend.Handle("start", kubeqtest.Script{denyChain(7)})
	f.backend.Handle("is checkout healthy?", kubeqtest.Answer("checkout is healthy."))
	cs := f.connectHuman("http", "", newHuman(t, declineForm), false) // 2026 era: G1 left pending
	leg := askGate(t, f, cs, map[string]any{"question": "start"})

	res, err := query(context.Background(), cs, map[string]any{"question": "is checkout healthy?", "conversation_id": leg.conv})
	require.NoError(t, err)
	assert.True(t, res.IsError, "the chain ran out: the question is not sent: %s", textOf(res))
	// G1 denied, then G2..G6 (the cap of 5); G7 stays open and nothing is
	// sent on top of it.
	assert.Equal(t, []string{"start", "deny", "deny", "deny", "deny", "deny", "deny"}, f.backend.MessagesFor(leg.conv))
	gi, pending := f.backend.PendingGate(leg.conv)
	assert.True(t, pending, "the seventh gate is left open")
	t.Logf("left open: %s", gi.ActionID)
	// and recorded, to be denied later: Close denies what is recorded.
	require.NoError(t, f.srv.Close())
	msgs := f.backend.MessagesFor(leg.conv)
	assert.Equal(t, []string{"deny", "deny", "deny", "deny", "deny", "deny", "deny"}, msgs[1:], "Close denied the gate left open")
	gi, pending = f.backend.PendingGate(leg.conv)
	assert.Falsef(t, pending, "gate %s left open after Close: it was not recorded", gi.ActionID)
	assertNeverApproved(t, f.backend)
}

// Found in review: a gate left by a long deny chain at shutdown stays open after Close
// (denyAllPending is one pass).
func TestShutdownDeniesWholeDenyChain(t *testing.T) {
	f := newFixture(t, nil)
	f.backend.Handle("start", kubeqtest.Script{denyChain(7)})
	cs := f.connectHuman("http", "", newHuman(t, declineForm), false)
	leg := askGate(t, f, cs, map[string]any{"question": "start"})
	require.NoError(t, f.srv.Close())
	g, pending := f.backend.PendingGate(leg.conv)
	assert.Falsef(t, pending, "gate %s left open after Close", g.ActionID)
}

// Found in review: approve refused (429) -> deny G1 delivered -> reply raises G2 ->
// deny of G2 fails (503). approveFailed overwrites decide's record of G2
// with G1 and says the denial of G1 did not arrive.
func TestFailsafeFailedApproveKeepsRecordOfOpenGate(t *testing.T) {
	f := newFixture(t, nil)
	f.backend.Handle(podQuestion, kubeqtest.Script{kubeqtest.Gate{
		Command: podCommand, ActionID: "act-pod",
		OnDeny: kubeqtest.Script{kubeqtest.Tokens("Then I will scale instead."), gate(scaleCommand, "act-scale")},
	}})
	g := f.behind(t, interceptDeny(func(n int32) bool { return n == 2 }, func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"detail":"unavailable"}`, http.StatusServiceUnavailable)
	}), nil)
	h := newHuman(t, func(ctx context.Context, h *human, p *sdk.ElicitParams) (*sdk.ElicitResult, error) {
		f.backend.FailNext(1, kubeqtest.RateLimited(1))
		return accept("approve", podTarget)(ctx, h, p)
	})
	cs := g.connectHuman("http", "2025-11-25", h, true)
	res, err := query(context.Background(), cs, map[string]any{"question": podQuestion})
	require.NoError(t, err)
	txt := textOf(res)
	t.Logf("result: %s", txt)
	conv := f.backend.ChatRequests()[0].Session
	gi, _ := f.backend.PendingGate(conv)
	t.Logf("pending at backend: %s; messages: %q", gi.ActionID, f.backend.MessagesFor(conv))
	assert.NotContains(t, txt, "neither did the denial sent after it", "the denial of act-pod did arrive")

	// The record must name the gate actually pending: the next question is
	// preceded by its denial, and the result says which gate that was.
	f.backend.Handle("what now?", kubeqtest.Answer("nothing."))
	res, err = query(context.Background(), cs, map[string]any{"question": "what now?", "conversation_id": conv})
	require.NoError(t, err)
	require.False(t, res.IsError, textOf(res))
	msgs := f.backend.MessagesFor(conv)
	assert.Equal(t, []string{"deny", "what now?"}, msgs[max(len(msgs)-2, 0):])
	assert.Contains(t, textOf(res), "An approval left pending on this conversation (`"+scaleCommand+"`) was denied",
		"the denial before the question is of the gate actually pending")
	_, pending := f.backend.PendingGate(conv)
	assert.False(t, pending)
}

// Found in review: a cancelled call's health read is negatively cached for 30 s: a
// current, healthy backend then counts as unknown/older.
func TestEraNotPoisonedByCancelledHealthRead(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.False(t, f.srv.strictBackend(ctx))
	start := time.Now()
	assert.True(t, f.srv.strictBackend(context.Background()), "healthy current backend, after one cancelled call")
	t.Logf("took %v", time.Since(start))
}

// starvedBudget is Close's budget in the tests of a call that cannot
// leave: the call gets half of it, and the denials the rest, which must
// be enough on a loaded machine (under -race with both cores busy, 500 ms
// was not). Without the split the call takes the whole budget and the
// denials get none, whatever its size.
const starvedBudget = 4 * time.Second

// Found in review: Close called from inside a tool call waits for that call to leave
// (it never can), so the whole budget is spent and the gates pending on
// other conversations are not denied.
func TestShutdownFromInsideToolCall(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.ShutdownBudget = starvedBudget })
	f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
	f.srv.MCPServer().AddTool(mcp.NewTool("fixture_close"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		start := time.Now()
		_ = f.srv.Close()
		return mcp.NewToolResultText(fmt.Sprintf("Close took %v", time.Since(start))), nil
	})
	cs := f.connectHuman("http", "", newHuman(t, declineForm), false)
	leg := askGate(t, f, cs, map[string]any{"question": podQuestion})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "fixture_close", Arguments: map[string]any{}})
	require.NoError(t, err)
	t.Logf("%s", textOf(res))
	g, pending := f.backend.PendingGate(leg.conv)
	assert.Falsef(t, pending, "gate %s left open after Close", g.ActionID)
}

// Found in review: one cancelled call whose deny is slow uses up the whole budget in
// closeAndWait; denyAllPending then gets an expired context and the gate
// pending on another conversation (whose deny would be instant) stays open.
func TestShutdownSlowCallDoesNotStarveDenials(t *testing.T) {
	f := newFixture(t, nil)
	f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
	f.backend.Handle(scaleQuestion, kubeqtest.Script{gate(scaleCommand, "act-scale")})
	g := f.behindWith(t, interceptDeny(func(n int32) bool { return n == 1 }, hangUntilCancelled),
		func(c *Config) { c.ShutdownBudget = starvedBudget })
	csY := g.connectHuman("http", "", newHuman(t, declineForm), false)
	legY := askGate(t, g, csY, map[string]any{"question": scaleQuestion})

	shown := make(chan struct{})
	csX := g.connectHuman("http", "2025-11-25", newHuman(t, func(ctx context.Context, h *human, p *sdk.ElicitParams) (*sdk.ElicitResult, error) {
		close(shown)
		<-ctx.Done()
		return nil, ctx.Err()
	}), true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = query(context.Background(), csX, map[string]any{"question": podQuestion})
	}()
	<-shown
	start := time.Now()
	require.NoError(t, g.srv.Close())
	t.Logf("Close took %v", time.Since(start))
	<-done
	gi, pending := f.backend.PendingGate(legY.conv)
	assert.Falsef(t, pending, "gate %s on another conversation left open after Close", gi.ActionID)
}

// Found in review: effect: after one cancelled health read, a follow-up on a healthy
// current backend without history is preceded by a blind "deny" sent as a
// question. The era learned by the first question expires (a short
// EraTTL), the next call is cancelled by its client while it reads
// /healthz again, and the call after it must send its question alone.
func TestEraCancelledHealthNoBlindDeny(t *testing.T) {
	const eraTTL = 50 * time.Millisecond
	f := newFixture(t, nil)
	f.backend.Handle("why is web slow?", kubeqtest.Answer("it is not."))
	f.backend.Handle("and now?", kubeqtest.Answer("fine."))
	g := f.behindWith(t, noHistory, func(c *Config) { c.EraTTL = eraTTL })
	cs := g.connectHuman("http", "2025-11-25", newHuman(t, declineForm), true)
	_, err := query(context.Background(), cs, map[string]any{"question": "why is web slow?"})
	require.NoError(t, err)
	conv := f.backend.ChatRequests()[0].Session
	time.Sleep(2 * eraTTL) // what the first question learned of the era has expired

	// A call cancelled by its client during its health read.
	f.backend.SetHealth(http.StatusOK, true)
	before := len(f.backend.Requests())
	hanging := func(log []kubeqtest.Request) (kubeqtest.Request, bool) {
		for _, r := range log[before:] {
			if r.Path == "/healthz" {
				return r, true
			}
		}
		return kubeqtest.Request{}, false
	}
	ctx, cancel := context.WithCancel(context.Background())
	called := make(chan error, 1)
	go func() {
		_, err := query(ctx, cs, map[string]any{"question": "and now?", "conversation_id": conv})
		called <- err
	}()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	require.NoError(t, f.backend.Wait(wctx, func(log []kubeqtest.Request) bool { _, ok := hanging(log); return ok }),
		"the call never read /healthz")
	cancel()
	require.Error(t, <-called)
	require.NoError(t, f.backend.Wait(wctx, func(log []kubeqtest.Request) bool {
		r, _ := hanging(log)
		return r.Disconnected
	}), "the cancelled call's health read was never closed")
	f.backend.SetHealth(http.StatusOK, false)

	_, err = query(context.Background(), cs, map[string]any{"question": "and now?", "conversation_id": conv})
	require.NoError(t, err)
	assert.Equal(t, []string{"why is web slow?", "and now?"}, f.backend.MessagesFor(conv))
}
