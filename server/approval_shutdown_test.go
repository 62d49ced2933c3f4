package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// Failure paths found in review: gates raised by replies to denials, lost
// records, denials a resumed call must still send, and shutdown with calls,
// forms and denials in flight. Each must leave no gate open.

// approveFailed discards the gate raised by the reply to its deny.
func TestFailsafeGateRaisedByDenyAfterFailedApprove(t *testing.T) {
	f := newFixture(t, nil)
	f.backend.Handle(podQuestion, kubeqtest.Script{kubeqtest.Gate{
		Command: podCommand, ActionID: "act-pod",
		OnDeny: kubeqtest.Script{kubeqtest.Tokens("Then I will scale instead."), gate(scaleCommand, "act-scale")},
	}})
	h := newHuman(t, func(ctx context.Context, h *human, p *sdk.ElicitParams) (*sdk.ElicitResult, error) {
		f.backend.FailNext(1, kubeqtest.Respond(http.StatusServiceUnavailable))
		return accept("approve", podTarget)(ctx, h, p)
	})
	cs := f.connectHuman("http", "2025-11-25", h, true)
	res, err := query(context.Background(), cs, map[string]any{"question": podQuestion})
	require.NoError(t, err)
	t.Logf("result: %s", textOf(res))
	conv := f.backend.ChatRequests()[0].Session
	t.Logf("messages: %q; forms shown: %d", f.backend.MessagesFor(conv), len(h.shown()))
	require.NoError(t, f.srv.Close())
	g, pending := f.backend.PendingGate(conv)
	assert.Falsef(t, pending, "gate %s (%s) left open at the backend, even after Close", g.ActionID, g.Command)
}

// an approve that never arrived and was denied instead is still shown
// (and audited) as approved and "sent to KubeIntellect to run".
func TestFailsafeUndeliveredApproveAudited(t *testing.T) {
	audit := &syncBuffer{}
	f := newFixture(t, func(c *Config) { c.AuditLog = audit })
	f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
	h := newHuman(t, func(ctx context.Context, h *human, p *sdk.ElicitParams) (*sdk.ElicitResult, error) {
		f.backend.FailNext(1, kubeqtest.RateLimited(1))
		return accept("approve", podTarget)(ctx, h, p)
	})
	cs := f.connectHuman("http", "2025-11-25", h, true)
	res, err := query(context.Background(), cs, map[string]any{"question": podQuestion})
	require.NoError(t, err)
	txt := textOf(res)
	t.Logf("result: %s", txt)
	require.Contains(t, txt, "denied it instead")
	assert.NotContains(t, txt, "it was sent to KubeIntellect to run", "the result says the action was sent to run")
	lines := audit.lines()
	t.Logf("audit: %q", lines)
	var last map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &last))
	assert.Equal(t, "denied", last["decision"], "the audit log's last word on act-pod is what the backend got")
}

// a blind pending record is dropped when its deny fails to arrive. The
// approve whose answer was lost ran and raised a second gate: the next
// question must be preceded by a deny, and when that deny is refused the
// question is not sent and the deny is owed again before the one after.
// With the history readable the deny is aimed at the gate it shows; without
// it the deny goes blind.
func TestFailsafeBlindRecordKeptWhenDenyFails(t *testing.T) {
	for _, history := range []bool{true, false} {
		t.Run(fmt.Sprintf("history=%v", history), func(t *testing.T) {
			f, _, cs := lostApproveHistory(t, history)
			_, err := query(context.Background(), cs, map[string]any{"question": podQuestion})
			require.NoError(t, err)
			conv := f.backend.ChatRequests()[0].Session
			require.Equal(t, []string{podQuestion, "approve"}, f.backend.MessagesFor(conv))
			_, pending := f.backend.PendingGate(conv)
			require.True(t, pending, "the lost approve ran and raised a second gate")

			f.backend.Handle("what now?", kubeqtest.Answer("nothing."))
			f.backend.FailNext(1, kubeqtest.Respond(http.StatusServiceUnavailable)) // the deny is refused
			res, err := query(context.Background(), cs, map[string]any{"question": "what now?", "conversation_id": conv})
			require.NoError(t, err)
			require.True(t, res.IsError, textOf(res))
			chats := f.backend.ChatRequests()
			refused := chats[len(chats)-1]
			assert.Equal(t, http.StatusServiceUnavailable, refused.Status, "the last request on the backend is the refused one")
			assert.Contains(t, string(refused.Body), `"content":"deny"`, "a deny went first, for the gate the lost approve may have raised")
			assert.Equal(t, []string{podQuestion, "approve"}, f.backend.MessagesFor(conv), "nothing was sent on top of the gate")

			_, err = query(context.Background(), cs, map[string]any{"question": "what now?", "conversation_id": conv})
			require.NoError(t, err)
			assert.Equal(t, []string{podQuestion, "approve", "deny", "what now?"}, f.backend.MessagesFor(conv),
				"the undelivered deny is sent before the next question")
			_, pending = f.backend.PendingGate(conv)
			assert.False(t, pending, "the gate is denied")
			for _, d := range f.backend.Decisions() {
				assert.Falsef(t, d.ActionID == "act-scale" && d.Approved, "the second gate was approved, never shown")
			}
		})
	}
}

// a human's DENY resumed where no local record exists and history is
// unavailable sends nothing; the gate stays open; the user is told it was
// "already decided".
func TestFailsafeResumedDenySentWithoutHistory(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	f := newFixture(t, func(c *Config) { c.StateKey = key })
	f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
	b := f.behind(t, noHistory, key)
	csA := f.connectHuman("http", "", newHuman(t, declineForm), false)
	csB := b.connectHuman("http", "", newHuman(t, declineForm), false)
	args := map[string]any{"question": podQuestion}
	leg := askGate(t, f, csA, args)
	dropRecord(t, f.srv, leg.conv) // replica A crashed: its record is gone

	res, err := answerGate(csB, args, leg.state, denyAnswer())
	require.NoError(t, err)
	t.Logf("B's result: %s", textOf(res))
	t.Logf("messages: %q", f.backend.MessagesFor(leg.conv))
	_, pending := f.backend.PendingGate(leg.conv)
	assert.False(t, pending, "the human denied, but the gate is still open at the backend")
	require.NoError(t, b.srv.Close())
	_, pending = f.backend.PendingGate(leg.conv)
	assert.False(t, pending, "still open after B's Close")
}

// Close returns while a 2025-era call holds an open gate (form shown):
// the gate is open at the backend when Close returns, and a deny that fails
// in flight is recorded after Close's snapshot and never sent.
func TestShutdownCancelsInFlightForms(t *testing.T) {
	f := newFixture(t, nil)
	f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
	shown := make(chan struct{})
	release := make(chan struct{})
	h := newHuman(t, func(ctx context.Context, h *human, p *sdk.ElicitParams) (*sdk.ElicitResult, error) {
		close(shown)
		<-release
		f.backend.FailNext(1, kubeqtest.Respond(http.StatusServiceUnavailable)) // the deny fails
		return declineForm(ctx, h, p)
	})
	cs := f.connectHuman("stdio", "2025-11-25", h, true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = query(context.Background(), cs, map[string]any{"question": podQuestion})
	}()
	<-shown
	conv := f.backend.ChatRequests()[0].Session
	start := time.Now()
	require.NoError(t, f.srv.Close())
	t.Logf("Close returned after %v", time.Since(start))
	_, pendingAtClose := f.backend.PendingGate(conv)
	close(release)
	<-done
	_, pendingAfter := f.backend.PendingGate(conv)
	t.Logf("pending at backend when Close returned: %v; after the call ended: %v", pendingAtClose, pendingAfter)
	assert.False(t, pendingAfter, "gate left open: its failed deny was recorded after Close had denied all pending")
}

// Close waits for a sweeper deny in flight, which stop does not cancel
// (denyContext drops cancellation): Close overruns its budget. The deny
// hangs until it is cut off, and would otherwise run to DenyTimeout or the
// backend client's idle timeout, both far beyond the bound.
func TestShutdownWithinBudget(t *testing.T) {
	const (
		budget      = time.Second
		denyTimeout = 20 * budget
		clientIdle  = 5 * time.Second // behindWith's kubeq.WithTimeout
		bound       = 3 * budget      // generous: a loaded machine, not the logic, takes the rest
	)
	require.Greater(t, min(denyTimeout, clientIdle), bound, "without the cut, Close must overrun the bound")
	f := newFixture(t, nil)
	f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
	sawDeny := make(chan struct{}, 10)
	hangDeny := interceptDeny(func(int32) bool { return true }, func(w http.ResponseWriter, r *http.Request) {
		select { // never block: a handler stuck here would hold the test server's Close
		case sawDeny <- struct{}{}:
		default:
		}
		hangUntilCancelled(w, r)
	})
	g := f.behindWith(t, hangDeny, func(c *Config) {
		c.ApprovalTimeout = 100 * time.Millisecond
		c.DenyTimeout = denyTimeout
		c.ShutdownBudget = budget
	}, 5*time.Millisecond)
	cs := g.connectHuman("http", "", newHuman(t, declineForm), false)
	askGate(t, g, cs, map[string]any{"question": podQuestion})
	select {
	case <-sawDeny: // the sweeper is sending its deny
	case <-time.After(5 * time.Second):
		t.Fatal("sweeper never denied")
	}
	start := time.Now()
	require.NoError(t, g.srv.Close())
	took := time.Since(start)
	t.Logf("Close took %v", took)
	assert.Lessf(t, took, bound, "Close overruns its budget (%v)", budget)
}

// a question whose answer was lost after the backend raised a gate
// (MaybeDelivered, not re-sent on an older backend) leaves no record: the
// gate stays open, and Close does not deny it.
func TestFailsafeLostQuestionOnOlderBackend(t *testing.T) {
	f := newFixture(t, nil, kubeqtest.WithV2())
	f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
	g := f.behind(t, loseOneAnswer(func([]byte) bool { return true }), nil)
	cs := g.connectHuman("http", "2025-11-25", newHuman(t, declineForm), true)
	res, err := query(context.Background(), cs, map[string]any{"question": podQuestion})
	require.NoError(t, err)
	require.True(t, res.IsError)
	conv := f.backend.ChatRequests()[0].Session
	require.NoError(t, g.srv.Close())
	_, pending := f.backend.PendingGate(conv)
	assert.False(t, pending, "V2 gate left open (any next message on the session approves it)")
}

// startSweeper (from a 2026-era call in flight) racing Close's sweepWG.Wait.
func TestShutdownRacesSweeperStart(t *testing.T) {
	for i := 0; i < 200; i++ {
		f := newFixture(t, nil)
		start := make(chan struct{})
		done := make(chan struct{})
		go func() { <-start; f.srv.startSweeper(); close(done) }()
		close(start)
		_ = f.srv.Close()
		<-done
		// Whichever won, no sweeper outlives Close: one that started is
		// stopped, and none starts after.
		f.srv.startSweeper()
		waited := make(chan struct{})
		go func() { f.srv.sweepWG.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(10 * time.Second):
			t.Fatal("a sweeper is still running after Close")
		}
	}
}
