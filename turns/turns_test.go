package turns

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync/atomic"
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

// A follower is handed the events on the runner's goroutine: one that
// gives up is not called again, and a watcher that resumes from its cursor
// sees the rest, so between them every byte arrives once, in order.
func TestFollowerStopsAndAWatcherResumes(t *testing.T) {
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

	var (
		first    collector
		returned atomic.Bool
		late     atomic.Int32
	)
	ctx, giveUp := context.WithCancel(context.Background())
	cur, err := turn.Follow(ctx, Cursor{}, func(ev kubeq.Event) {
		if returned.Load() {
			late.Add(1)
		}
		first.add(ev)
		if first.text.String() == "first part, " {
			giveUp()
		}
	})
	returned.Store(true)
	require.ErrorIs(t, err, context.Canceled)
	turn.Detach()

	close(release)
	var second collector
	turn.Attach()
	_, err = turn.Watch(context.Background(), cur, second.add)
	turn.Detach()
	require.NoError(t, err)
	require.NoError(t, turn.Err())
	assert.Zero(t, late.Load(), "the follower was called after Follow returned")
	assert.Equal(t, "first part, ", first.text.String())
	assert.True(t, slices.ContainsFunc(first.events, func(ev kubeq.Event) bool { _, ok := ev.(kubeq.Status); return ok }),
		"the follower got the status before the text")
	assert.Equal(t, "second part.", second.text.String())
	require.Len(t, second.events, 4, "the status, the text, the usage, the end")
	assert.IsType(t, kubeq.Status{}, second.events[0])
}

// A follower that starts late is handed what the turn has first, then the
// rest as it comes, in order; past the answer cap it gets only kept text.
func TestFollowerGetsTheBacklogThenTheRest(t *testing.T) {
	s := newSetup(t, Options{MaxAnswerBytes: 8})
	release := make(chan struct{})
	s.fake.Handle("q", kubeqtest.Script{
		kubeqtest.Status("analyzing", "Looking"),
		kubeqtest.Token("abc"),
		kubeqtest.WaitFor(release),
		kubeqtest.Token("def"),
		kubeqtest.Status("answering", "Writing"),
		kubeqtest.Token("ghijk"),
	})
	turn, err := s.reg.Start("conv", s.stream("q", "conv"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return turn.Snapshot().Answer == "abc" }, 5*time.Second, time.Millisecond)

	var got collector
	go func() {
		// Released while the follower may be starting or waiting: either
		// way nothing is lost or repeated.
		time.Sleep(5 * time.Millisecond)
		close(release)
	}()
	cur, err := turn.Follow(context.Background(), Cursor{}, got.add)
	require.NoError(t, err)
	assert.Equal(t, turn.End(), cur)
	assert.Equal(t, "abcdefgh", got.text.String(), "text past the cap is not handed on")
	var kinds []string
	for _, ev := range got.events {
		switch e := ev.(type) {
		case kubeq.Status:
			kinds = append(kinds, "status:"+e.Phase)
		case kubeq.Token:
			kinds = append(kinds, "text")
		}
	}
	assert.Equal(t, []string{"status:analyzing", "text", "text", "status:answering", "text"}, kinds)
}

// Only one follower at a time: a second is served as a watcher, and both
// see the whole turn.
func TestSecondFollowerIsAWatcher(t *testing.T) {
	s := newSetup(t, Options{})
	release := make(chan struct{})
	s.fake.Handle("q", kubeqtest.Script{kubeqtest.Token("one "), kubeqtest.WaitFor(release), kubeqtest.Token("two")})
	turn, err := s.reg.Start("conv", s.stream("q", "conv"))
	require.NoError(t, err)
	var a, b collector
	errs := make(chan error, 2)
	go func() { _, err := turn.Follow(context.Background(), Cursor{}, a.add); errs <- err }()
	go func() { _, err := turn.Follow(context.Background(), Cursor{}, b.add); errs <- err }()
	require.Eventually(t, func() bool {
		turn.mu.Lock()
		defer turn.mu.Unlock()
		return turn.follower != nil
	}, 5*time.Second, time.Millisecond)
	close(release)
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
	assert.Equal(t, "one two", a.text.String())
	assert.Equal(t, "one two", b.text.String())
}

// A chatty turn keeps a bounded number of progress events, however many
// the backend sends and however large: a watcher far behind (here, one
// that starts only after the turn ended) still gets every byte of the
// answer once and in order, the gate, the usage and the end, and the
// latest progress; one following as the turn runs gets every event.
func TestTurnLetsGoOfOldProgress(t *testing.T) {
	s := newSetup(t, Options{})
	const blocks = 3000
	line := strings.Repeat("z", 2000)
	var script kubeqtest.Script
	var want strings.Builder
	for i := range blocks {
		text := fmt.Sprintf("part %d. ", i)
		want.WriteString(text)
		script = append(script, kubeqtest.Token(text), kubeqtest.Status("looping", fmt.Sprintf("block %d %s", i, line)),
			kubeqtest.ToolResult("run_kubectl", line))
	}
	script = append(script, kubeqtest.Usage(1, 2, 3, 1), kubeqtest.Gate{Command: "kubectl delete pod web-1"})
	s.fake.Handle("chatty", script)
	turn, err := s.reg.Start("conv", s.stream("chatty", "conv"))
	require.NoError(t, err)

	var live collector
	_, err = turn.Follow(context.Background(), Cursor{}, live.add)
	require.NoError(t, err)
	require.NoError(t, turn.Err())
	countStatus := func(evs []kubeq.Event) (n int) {
		for _, ev := range evs {
			if _, ok := ev.(kubeq.Status); ok {
				n++
			}
		}
		return n
	}
	assert.Equal(t, blocks, countStatus(live.events), "the follower got every status as it came")
	assert.True(t, strings.HasPrefix(live.text.String(), want.String()))

	snap := turn.Snapshot()
	// Each block is three entries (text, status, tool result) when kept.
	assert.Positive(t, snap.ProgressLetGo)
	assert.LessOrEqual(t, snap.EventCount, 2*maxProgressEvents+16, "entries kept")
	turn.mu.Lock()
	assert.LessOrEqual(t, turn.progress, maxProgressEvents)
	assert.LessOrEqual(t, turn.progBytes, maxProgressBytes)
	turn.mu.Unlock()
	require.NotNil(t, snap.Hitl)
	assert.Equal(t, "kubectl delete pod web-1", snap.Hitl.Action)

	var late collector
	cur, err := turn.Watch(context.Background(), Cursor{}, late.add)
	require.NoError(t, err)
	assert.Equal(t, turn.End(), cur)
	assert.Equal(t, live.text.String(), late.text.String(), "every byte of the answer, once, in order")
	statuses := countStatus(late.events)
	assert.True(t, slices.ContainsFunc(late.events, func(ev kubeq.Event) bool {
		st, ok := ev.(kubeq.Status)
		return ok && st.Message == fmt.Sprintf("block %d %s", blocks-1, line)
	}), "the latest progress is kept")
	assert.Positive(t, statuses)
	assert.Less(t, statuses, blocks)
	assert.Equal(t, progressEvents(live.events), progressEvents(late.events)+snap.ProgressLetGo,
		"what was let go is counted")
	var usage, hitl, end int
	for _, ev := range late.events {
		switch ev.(type) {
		case kubeq.Usage:
			usage++
		case kubeq.HitlRequest:
			hitl++
		case kubeq.End:
			end++
		}
	}
	assert.Equal(t, []int{1, 1, 1}, []int{usage, hitl, end}, "usage, gate and end are always kept")

	// A watcher that stopped midway and comes back after progress was let
	// go around where it stopped goes on from the same byte.
	turn, err = s.reg.Start("conv-2", s.stream("chatty", "conv-2"))
	require.NoError(t, err)
	var first, rest collector
	ctx, giveUp := context.WithCancel(context.Background())
	cur, err = turn.Follow(ctx, Cursor{}, func(ev kubeq.Event) {
		first.add(ev)
		if strings.HasSuffix(first.text.String(), "part 100. ") {
			giveUp()
		}
	})
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, turn.Wait(context.Background()))
	require.Positive(t, turn.Snapshot().ProgressLetGo)
	_, err = turn.Watch(context.Background(), cur, rest.add)
	require.NoError(t, err)
	assert.Equal(t, live.text.String(), first.text.String()+rest.text.String())
}

func progressEvents(evs []kubeq.Event) (n int) {
	for _, ev := range evs {
		if _, ok := progressSize(ev); ok {
			n++
		}
	}
	return n
}
