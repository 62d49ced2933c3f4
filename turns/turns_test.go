package turns

import (
	"context"
	"errors"
	"iter"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// setup is a registry in front of the fake backend; question's turn is
// script.
type setup struct {
	reg    *Registry
	fake   *kubeqtest.Server
	client *kubeq.Client
}

func newSetup(t *testing.T, o Options) *setup {
	t.Helper()
	fake := kubeqtest.NewServer()
	t.Cleanup(fake.Close)
	c, err := kubeq.New(fake.URL, kubeq.WithRetryDelays())
	require.NoError(t, err)
	reg := New(o)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		reg.Close(ctx)
	})
	return &setup{reg: reg, fake: fake, client: c}
}

func (s *setup) stream(question, conv string) Stream {
	return func(ctx context.Context) iter.Seq2[kubeq.Event, error] {
		return s.client.Stream(ctx, kubeq.Turn{Question: question, Conversation: conv})
	}
}

// text gathers the Token contents fn was handed.
type collector struct {
	text   strings.Builder
	events []kubeq.Event
}

func (c *collector) add(ev kubeq.Event) {
	c.events = append(c.events, ev)
	if tok, ok := ev.(kubeq.Token); ok {
		c.text.WriteString(tok.Content)
	}
}

// A watcher that gives up leaves the turn running; a later watcher picks up
// where the first stopped, and between them they saw every byte once.
func TestTurnOutlivesTheCallThatStartedIt(t *testing.T) {
	s := newSetup(t, Options{})
	release := make(chan struct{})
	s.fake.Handle("long", kubeqtest.Script{
		kubeqtest.Status("analyzing", "Looking"),
		kubeqtest.Tokens("first part, "),
		kubeqtest.WaitFor(release),
		kubeqtest.Status("answering", "Writing"),
		kubeqtest.Tokens("second part."),
	})
	turn, err := s.reg.Start("conv-long", s.stream("long", "conv-long"))
	require.NoError(t, err)

	var first collector
	ctx, giveUp := context.WithCancel(context.Background())
	cur, err := turn.Watch(ctx, Cursor{}, func(ev kubeq.Event) {
		first.add(ev)
		if first.text.String() == "first part, " {
			giveUp() // the client gave up mid-turn
		}
	})
	require.ErrorIs(t, err, context.Canceled)
	turn.Detach()
	assert.False(t, turn.Done())
	running, detached := s.reg.Running()
	assert.Equal(t, 1, running)
	assert.Equal(t, 1, detached)

	close(release)
	var second collector
	turn.Attach()
	_, err = turn.Watch(context.Background(), cur, second.add)
	turn.Detach()
	require.NoError(t, err)
	require.NoError(t, turn.Err())
	assert.Equal(t, "first part, ", first.text.String())
	assert.Equal(t, "second part.", second.text.String())
	assert.Equal(t, "first part, second part.", turn.Snapshot().Answer)
	require.Len(t, second.events, 4, "the status, the text, the usage, the end")
	assert.IsType(t, kubeq.Status{}, second.events[0])

	require.Eventually(t, func() bool {
		reqs := s.fake.ChatRequests()
		return len(reqs) == 1 && reqs[0].Finished && !reqs[0].Disconnected
	}, 5*time.Second, time.Millisecond, "the backend turn ran to [DONE], never disconnected")
}

// Cancel is the user's explicit stop: the backend request is closed.
func TestCancelClosesTheBackendRequest(t *testing.T) {
	s := newSetup(t, Options{})
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	s.fake.Handle("stop me", kubeqtest.Script{kubeqtest.Status("analyzing", "Looking"), kubeqtest.WaitFor(hold)})
	turn, err := s.reg.Start("conv-stop", s.stream("stop me", "conv-stop"))
	require.NoError(t, err)
	// Wait until the backend is streaming, then cancel.
	_, err = turn.Watch(ctxUntil(t, func() bool { return turn.Snapshot().Status != "" }), Cursor{}, func(kubeq.Event) {})
	require.ErrorIs(t, err, context.Canceled)
	turn.Cancel(nil)
	require.NoError(t, turn.Wait(context.Background()))
	assert.ErrorIs(t, turn.Err(), ErrCancelled)
	require.Eventually(t, func() bool {
		reqs := s.fake.ChatRequests()
		return len(reqs) == 1 && reqs[0].Disconnected
	}, 5*time.Second, 5*time.Millisecond, "the backend saw its client go away")
}

// ctxUntil is a context cancelled once cond holds (checked on every event
// the watcher sees through the polling below).
func ctxUntil(t *testing.T, cond func() bool) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		for !cond() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Millisecond):
			}
		}
		cancel()
	}()
	return ctx
}

func TestOneTurnAtATimePerConversation(t *testing.T) {
	s := newSetup(t, Options{})
	hold := make(chan struct{})
	s.fake.Handle("q", kubeqtest.Script{kubeqtest.WaitFor(hold), kubeqtest.Tokens("done")})
	turn, err := s.reg.Start("conv", s.stream("q", "conv"))
	require.NoError(t, err)
	_, err = s.reg.Start("conv", s.stream("q", "conv"))
	assert.ErrorIs(t, err, ErrBusy)
	close(hold)
	require.NoError(t, turn.Wait(context.Background()))
	again, err := s.reg.Start("conv", s.stream("q", "conv"))
	require.NoError(t, err, "a finished turn does not block the next")
	require.NoError(t, again.Wait(context.Background()))
}

// Past MaxDetached turns with nobody watching, the oldest is cancelled.
func TestDetachedCapCancelsTheOldest(t *testing.T) {
	s := newSetup(t, Options{MaxDetached: 1})
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	s.fake.Handle("q", kubeqtest.Script{kubeqtest.Status("analyzing", "Looking"), kubeqtest.WaitFor(hold)})
	older, err := s.reg.Start("a", s.stream("q", "a"))
	require.NoError(t, err)
	older.Detach()
	newer, err := s.reg.Start("b", s.stream("q", "b"))
	require.NoError(t, err)
	assert.False(t, older.Done(), "one detached turn is within the cap")
	newer.Detach()
	require.NoError(t, older.Wait(context.Background()))
	assert.ErrorIs(t, older.Err(), ErrDetachedCap)
	assert.False(t, newer.Done())
}

// A finished turn is kept for the TTL, then dropped.
func TestFinishedTurnExpiresAfterTheTTL(t *testing.T) {
	const ttl = 200 * time.Millisecond
	s := newSetup(t, Options{AnswerTTL: ttl})
	s.fake.Handle("q", kubeqtest.Answer("ok"))
	turn, err := s.reg.Start("conv", s.stream("q", "conv"))
	require.NoError(t, err)
	require.NoError(t, turn.Wait(context.Background()))
	turn.Detach()
	ended := time.Now()
	_, ok := s.reg.Get("conv")
	assert.True(t, ok, "kept right after it ended")
	require.Eventually(t, func() bool { _, ok := s.reg.Get("conv"); return !ok }, 50*ttl, ttl/10)
	assert.GreaterOrEqual(t, time.Since(ended), ttl, "not dropped before the TTL")
}

// Past the cap, answer text is not kept, but the turn is read to [DONE].
func TestAnswerCap(t *testing.T) {
	s := newSetup(t, Options{MaxAnswerBytes: 10})
	s.fake.Handle("q", kubeqtest.Script{kubeqtest.Tokens("0123456789abcdefghijklmno"), kubeqtest.Status("x", "after the cut")})
	turn, err := s.reg.Start("conv", s.stream("q", "conv"))
	require.NoError(t, err)
	require.NoError(t, turn.Wait(context.Background()))
	snap := turn.Snapshot()
	assert.Equal(t, "0123456789", snap.Answer)
	assert.Equal(t, 10, snap.CutAt)
	assert.Equal(t, 15, snap.Dropped)
	assert.Equal(t, "[x] after the cut", snap.Status, "events after the cut are kept")
	require.Eventually(t, func() bool { return s.fake.ChatRequests()[0].Finished }, 5*time.Second, time.Millisecond,
		"the turn was read to [DONE]")
}

// The gate a turn ends at is in its snapshot, and its status line says so.
func TestSnapshotCarriesTheGate(t *testing.T) {
	s := newSetup(t, Options{})
	s.fake.Handle("delete it", kubeqtest.Script{kubeqtest.Gate{Command: "kubectl delete pod web-1 -n shop"}})
	turn, err := s.reg.Start("conv", s.stream("delete it", "conv"))
	require.NoError(t, err)
	require.NoError(t, turn.Wait(context.Background()))
	snap := turn.Snapshot()
	require.NotNil(t, snap.Hitl)
	assert.Equal(t, "kubectl delete pod web-1 -n shop", snap.Hitl.Action)
	assert.Equal(t, "waiting for approval: kubectl delete pod web-1 -n shop", snap.Status)
}

// Close cancels what runs and waits for the runners.
func TestCloseCancelsRunningTurns(t *testing.T) {
	s := newSetup(t, Options{})
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	s.fake.Handle("q", kubeqtest.Script{kubeqtest.WaitFor(hold)})
	turn, err := s.reg.Start("conv", s.stream("q", "conv"))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.reg.Close(ctx)
	require.True(t, turn.Done())
	assert.True(t, errors.Is(turn.Err(), ErrCancelled))
	_, err = s.reg.Start("other", s.stream("q", "other"))
	assert.ErrorIs(t, err, ErrCancelled)
}
