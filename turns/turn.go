package turns

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
)

// Turn is one backend turn being read, or read to its end.
type Turn struct {
	reg     *Registry
	conv    string
	cancel  context.CancelCauseFunc
	started time.Time

	mu         sync.Mutex
	entries    []entry
	seq        int // the next entry's seq
	progress   int // progress events in entries
	progBytes  int // their size (progressSize)
	letGo      int // progress events let go (see maxProgressEvents)
	answer     strings.Builder
	cutAt      int // answer bytes kept when the cap was reached; 0 while under it
	dropped    int // answer bytes past the cap
	err        error
	done       bool
	endedAt    time.Time
	watchers   int
	detachedAt time.Time
	wake       chan struct{} // closed and replaced on every change
	ended      chan struct{} // closed once the turn is done

	// pushMu orders the runner's hand-over to a follower (see Follow)
	// against the follower's start and stop; the runner holds it while it
	// records an event and hands it on.
	pushMu   sync.Mutex
	follower func(kubeq.Event) // guarded by pushMu and mu
}

// entry is one event of the turn; answer text is a range of Turn.answer,
// grown while tokens keep coming. seq numbers entries in the order they
// were recorded; entries let go leave gaps.
type entry struct {
	ev         kubeq.Event // nil for text
	seq        int
	start, end int
}

// Cursor is how far a watcher has read.
type Cursor struct {
	seq int // the seq of the next event to hand over
	pos int // answer bytes handed over
}

// A turn keeps at most maxProgressEvents progress events (status lines,
// tool calls and their output, plan updates, heartbeats, errors that are
// not fatal), and at most maxProgressBytes of their text; past either, the
// oldest half is let go at once (so letting go costs O(1) per event). The
// rest (the answer text up to its cap, gates, usage, fatal errors, the
// end) is always kept. Without this a turn held every status line the
// backend ever sent, whole, for as long as it ran: tens of MB for a
// chatty investigation, whether its client read or not. Progress is a
// view: watchers follow the turn as it runs (a call, the driver of a
// detached call, kube_answer from the end), so only one far behind misses
// any, as a client whose queue is full does.
const (
	maxProgressEvents = 1024
	maxProgressBytes  = 256 << 10
)

// Conversation is the turn's conversation.
func (t *Turn) Conversation() string { return t.conv }

// Started is when the turn was started.
func (t *Turn) Started() time.Time { return t.started }

func (t *Turn) run(ctx context.Context, stream Stream) {
	var err error
	for ev, e := range stream(ctx) {
		if e != nil {
			err = e
			break
		}
		t.add(ev)
	}
	if cause := context.Cause(ctx); cause != nil && err != nil {
		// A stream stopped by Cancel says why, not just "context canceled".
		err = errors.Join(cause, err)
	}
	t.mu.Lock()
	t.err, t.done, t.endedAt = err, true, time.Now()
	t.changedLocked()
	t.mu.Unlock()
	close(t.ended)
	t.cancel(nil) // release the context's resources
}

// add records ev and hands it to the follower, if any, in the same step:
// a follower sees every event once, in order, with no goroutine between.
func (t *Turn) add(ev kubeq.Event) {
	t.pushMu.Lock()
	defer t.pushMu.Unlock()
	t.mu.Lock()
	handed := ev
	if tok, ok := ev.(kubeq.Token); ok {
		switch kept := t.addText(tok.Content); kept {
		case tok.Content: // all of it: ev as it came
		case "":
			handed = nil
		default:
			handed = kubeq.Token{Content: kept}
		}
	} else {
		t.entries = append(t.entries, entry{ev: ev, seq: t.seq})
		t.seq++
		if n, ok := progressSize(ev); ok {
			t.progress++
			t.progBytes += n
			if t.progress > maxProgressEvents || t.progBytes > maxProgressBytes {
				t.letGoLocked()
			}
		}
	}
	t.changedLocked()
	follow := t.follower
	t.mu.Unlock()
	if follow != nil && handed != nil {
		follow(handed)
	}
}

// addText keeps s, or what of it fits under the cap, and returns what it
// kept.
func (t *Turn) addText(s string) string {
	if room := t.reg.opts.MaxAnswerBytes - t.answer.Len(); len(s) > room {
		if t.cutAt == 0 {
			t.cutAt = t.reg.opts.MaxAnswerBytes
		}
		t.dropped += len(s) - max(room, 0)
		s = s[:max(room, 0)]
	}
	if s == "" {
		return ""
	}
	start := t.answer.Len()
	if start == 0 {
		t.answer.Grow(max(len(s), answerStart)) // not eight doublings for a short answer
	}
	t.answer.WriteString(s)
	if n := len(t.entries); n > 0 && t.entries[n-1].ev == nil {
		t.entries[n-1].end = t.answer.Len()
		return s
	}
	t.entries = append(t.entries, entry{seq: t.seq, start: start, end: t.answer.Len()})
	t.seq++
	return s
}

// progressSize is the size of a progress event's text, and whether ev is
// one: an event nothing but a progress message is made of.
func progressSize(ev kubeq.Event) (int, bool) {
	switch e := ev.(type) {
	case kubeq.Status:
		return len(e.Phase) + len(e.Message), true
	case kubeq.ToolCall:
		return len(e.Tool) + len(e.Command) + len(e.Message), true
	case kubeq.ToolResult:
		return len(e.Tool) + len(e.Output), true
	case kubeq.Plan:
		n := 0
		for _, st := range e.Steps {
			n += len(st.Description) + len(st.Status)
		}
		return n, true
	case kubeq.Heartbeat:
		return 0, true
	case kubeq.Error:
		return len(e.Message), !e.Fatal
	}
	return 0, false
}

// letGoLocked lets go of the oldest progress events until at most half of
// each cap is used, and joins the text entries that end up side by side,
// so entries stay few however long the turn. The caller holds t.mu.
func (t *Turn) letGoLocked() {
	kept := t.entries[:0]
	for _, e := range t.entries {
		if n, ok := progressSize(e.ev); ok && (t.progress > maxProgressEvents/2 || t.progBytes > maxProgressBytes/2) {
			t.progress--
			t.progBytes -= n
			t.letGo++
			continue
		}
		if last := len(kept) - 1; e.ev == nil && last >= 0 && kept[last].ev == nil {
			// Text follows text: one range (the answer is one text, in
			// order). The first's seq stands for both; see findLocked.
			kept[last].end = e.end
			continue
		}
		kept = append(kept, e)
	}
	clear(t.entries[len(kept):]) // let go of the events themselves
	t.entries = kept
}

// findLocked is the index of the first entry cur has not read all of.
func (t *Turn) findLocked(cur Cursor) int {
	i, _ := slices.BinarySearchFunc(t.entries, cur.seq, func(e entry, seq int) int { return cmp.Compare(e.seq, seq) })
	// Text before it may not have been read to its end: it was still
	// growing, or text recorded after cur.seq was joined to it.
	for i > 0 && t.entries[i-1].ev == nil && t.entries[i-1].end > cur.pos {
		i--
	}
	return i
}

// changedLocked wakes whoever waits for the turn to change. The channel is
// made only when someone waits (waitChanLocked), not for every event.
func (t *Turn) changedLocked() {
	if t.wake != nil {
		close(t.wake)
		t.wake = nil
	}
}

// waitChanLocked is closed at the turn's next change.
func (t *Turn) waitChanLocked() chan struct{} {
	if t.wake == nil {
		t.wake = make(chan struct{})
	}
	return t.wake
}

// Done reports whether the turn has read its stream to the end.
func (t *Turn) Done() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.done
}

// Err is how the stream ended: nil after [DONE], else the error (wrapping
// ErrCancelled or ErrDetachedCap for a cancelled turn). Only meaningful
// once Done.
func (t *Turn) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Dropped is how many answer bytes the turn did not keep (past its cap).
func (t *Turn) Dropped() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dropped
}

// Snapshot is what a result says of a turn at one moment.
type Snapshot struct {
	Answer     string // the answer text kept so far
	Status     string // the latest status line, command or plan step; "" if none yet
	Done       bool
	Err        error
	Hitl       *kubeq.HitlRequest // the gate the turn raised, if any
	CutAt      int                // > 0: answer text past this many bytes was not kept
	Dropped    int                // bytes not kept
	Elapsed    time.Duration
	Watchers   int
	EventCount int // entries kept: events and runs of text
	// ProgressLetGo is how many progress events the turn did not keep
	// (see maxProgressEvents).
	ProgressLetGo int
}

// Snapshot returns the turn's state now.
func (t *Turn) Snapshot() Snapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Snapshot{Answer: t.answer.String(), Done: t.done, Err: t.err, CutAt: t.cutAt, Dropped: t.dropped,
		Watchers: t.watchers, EventCount: len(t.entries), ProgressLetGo: t.letGo}
	end := time.Now()
	if t.done {
		end = t.endedAt
	}
	s.Elapsed = end.Sub(t.started)
	for i := len(t.entries) - 1; i >= 0; i-- {
		if line := StatusLine(t.entries[i].ev); line != "" && s.Status == "" {
			s.Status = line
		}
		if h, ok := t.entries[i].ev.(kubeq.HitlRequest); ok && s.Hitl == nil {
			s.Hitl = &h
		}
	}
	return s
}

// StatusLine is the one-line description of a progress-worthy event, ""
// for the others.
func StatusLine(ev kubeq.Event) string {
	switch e := ev.(type) {
	case kubeq.Status:
		if e.Phase != "" {
			return "[" + e.Phase + "] " + e.Message
		}
		return e.Message
	case kubeq.ToolCall:
		if e.Command != "" {
			return "running: " + e.Command
		}
		return "running: " + e.Tool
	case kubeq.Plan:
		for _, s := range e.Steps {
			if s.Status != "completed" && s.Status != "done" {
				return "plan: " + s.Description
			}
		}
	case kubeq.HitlRequest:
		return "waiting for approval: " + e.Action
	}
	return ""
}

// Watch hands fn every event from cur on, in order (answer text as Token
// events, coalesced as it was kept), until the turn ends or ctx ends. It
// returns the cursor after the last event handed over, and ctx's error if
// ctx ended first. The caller counts as a watcher meanwhile (see Watcher).
func (t *Turn) Watch(ctx context.Context, cur Cursor, fn func(kubeq.Event)) (Cursor, error) {
	var batch []kubeq.Event
	for {
		t.mu.Lock()
		batch, cur = t.sinceLocked(batch[:0], cur)
		done, wake := t.done, t.waitChanLocked()
		t.mu.Unlock()
		for _, ev := range batch {
			fn(ev)
		}
		if done {
			return cur, nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return cur, ctx.Err()
		}
	}
}

// sinceLocked appends to batch the events from cur to what the turn has
// now, and returns the cursor after them.
func (t *Turn) sinceLocked(batch []kubeq.Event, cur Cursor) ([]kubeq.Event, Cursor) {
	for _, e := range t.entries[t.findLocked(cur):] {
		if e.ev != nil {
			batch = append(batch, e.ev)
		} else if from := max(cur.pos, e.start); from < e.end {
			batch = appendText(batch, t.answer.String()[from:e.end])
			cur.pos = e.end
		}
		cur.seq = e.seq + 1
	}
	return batch, cur
}

// Follow is Watch for an fn that never blocks: after what the turn has
// already, fn runs on the runner's goroutine as the runner records each
// event, so no goroutine hand-off stands between the backend stream and
// fn (Watch wakes its caller for every batch). fn must return quickly and
// must not call the turn's methods: the runner waits for it. One follower
// at a time; a second caller is served by Watch. Follow returns as Watch
// does, and fn is not called once it has returned.
func (t *Turn) Follow(ctx context.Context, cur Cursor, fn func(kubeq.Event)) (Cursor, error) {
	t.pushMu.Lock()
	t.mu.Lock()
	if t.follower != nil {
		t.mu.Unlock()
		t.pushMu.Unlock()
		return t.Watch(ctx, cur, fn)
	}
	// The runner cannot record anything while pushMu is held: the backlog
	// is handed over before anything it records next.
	backlog, cur := t.sinceLocked(nil, cur)
	done := t.done
	if !done {
		t.follower = fn
	}
	t.mu.Unlock()
	for _, ev := range backlog {
		fn(ev)
	}
	t.pushMu.Unlock()
	if done {
		return cur, nil
	}
	var err error
	select {
	case <-t.ended:
	case <-ctx.Done():
		err = ctx.Err()
	}
	// Waits for an fn running now; after this, fn is not called again.
	t.pushMu.Lock()
	t.mu.Lock()
	t.follower = nil
	end := t.endLocked()
	t.mu.Unlock()
	t.pushMu.Unlock()
	if err == nil {
		return end, nil
	}
	return end, err
}

// End is the cursor after everything the turn has now: a watcher that
// starts there sees only what comes next.
func (t *Turn) End() Cursor {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.endLocked()
}

func (t *Turn) endLocked() Cursor {
	return Cursor{seq: t.seq, pos: t.answer.Len()}
}

// Attach counts a new watcher (kube_answer, a resumed call); Detach when it
// stops watching. Start counts its caller already.
func (t *Turn) Attach() {
	t.mu.Lock()
	t.watchers++
	t.mu.Unlock()
}

// Detach stops counting a watcher. The last one to leave a running turn
// makes it detached, which the registry caps.
func (t *Turn) Detach() {
	t.mu.Lock()
	t.watchers--
	last := t.watchers == 0 && !t.done
	if last {
		t.detachedAt = time.Now()
	}
	t.mu.Unlock()
	if last {
		t.reg.detached()
	}
}

// Cancel stops the turn and closes its backend request; why says what
// stopped it (ErrCancelled when nil).
func (t *Turn) Cancel(why error) {
	if why == nil {
		why = ErrCancelled
	}
	t.cancel(why)
}

// Wait blocks until the turn ends or ctx ends.
func (t *Turn) Wait(ctx context.Context) error {
	for {
		t.mu.Lock()
		done, wake := t.done, t.waitChanLocked()
		t.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (t *Turn) expired(now time.Time, ttl time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.done && t.watchers <= 0 && now.Sub(t.endedAt) > ttl
}

// answerStart is the room a turn's answer text starts with.
const answerStart = 512

// maxTokenEvent bounds the text of one Token a watcher is handed: text
// kept while nobody read it comes out in pieces, so a forwarder flushes it
// as it would have flushed the backend's own chunks.
const maxTokenEvent = 16 << 10

// appendText appends text as Token events of at most maxTokenEvent bytes,
// cut on rune boundaries.
func appendText(batch []kubeq.Event, text string) []kubeq.Event {
	for len(text) > maxTokenEvent {
		cut := maxTokenEvent
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		if cut == 0 {
			cut = maxTokenEvent
		}
		batch = append(batch, kubeq.Token{Content: text[:cut]})
		text = text[cut:]
	}
	return append(batch, kubeq.Token{Content: text})
}
