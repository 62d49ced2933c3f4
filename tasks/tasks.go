// Package tasks keeps the tasks of the MCP Tasks extension
// (io.modelcontextprotocol/tasks, 2026-07-28): a record per task, owned by
// the identity that created it, with its status, the input it waits for,
// and its outcome.
//
// It knows nothing of what a task runs: the runner sets the status, reads
// the answers to its input requests from Responses, and stops when the
// context it was given ends (tasks/cancel, the TTL, Close).
//
// A task id is 128 random bits: it is a bearer of the task's state, so it
// must not be guessable. Every lookup also names the caller's identity; a
// task owned by another identity is not found, exactly as an unknown id.
package tasks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// Status is a task's state.
type Status string

// The statuses of the extension.
const (
	Working       Status = "working"
	InputRequired Status = "input_required"
	Completed     Status = "completed"
	Cancelled     Status = "cancelled"
	Failed        Status = "failed"
)

func (s Status) terminal() bool { return s == Completed || s == Cancelled || s == Failed }

// ErrExpired is the JSON-RPC error message of a task failed at its TTL.
const ErrExpired = "Task has expired"

// codeInternal is JSON-RPC's internal error, the error of an expired task.
const codeInternal = -32603

// Task is one task's record.
type Task struct {
	ID      string
	owner   string
	created time.Time
	ttl     time.Duration
	poll    time.Duration
	cancel  context.CancelFunc

	mu       sync.Mutex
	status   Status
	updated  time.Time
	message  string
	progress func() string // the latest progress line, while working
	shown    string        // the progress line last shown by View
	requests map[string]json.RawMessage
	result   json.RawMessage
	err      json.RawMessage
	answers  chan map[string]json.RawMessage // to the runner, one batch at a time
	stopped  bool                            // tasks/cancel was asked
	expired  bool                            // failed at its TTL
}

// Registry holds the tasks of this process.
type Registry struct {
	ttl  time.Duration
	poll time.Duration

	mu sync.Mutex
	m  map[string]*Task
}

// What a registry keeps of ended tasks, besides their TTL: the oldest
// ended are dropped first past either bound (as kube_answer's kept
// results are), so finished tasks cannot pile up for a whole TTL.
const (
	MaxEnded      = 1000
	MaxEndedBytes = 64 << 20
)

// New makes a registry whose tasks live ttl from creation and are polled
// every poll.
func New(ttl, poll time.Duration) *Registry {
	return &Registry{ttl: ttl, poll: poll, m: map[string]*Task{}}
}

// dropOldestEnded keeps at most MaxEnded ended tasks and MaxEndedBytes of
// their outcomes. Under r.mu.
func (r *Registry) dropOldestEnded() {
	type ended struct {
		id    string
		at    time.Time
		bytes int
	}
	var all []ended
	total := 0
	for id, t := range r.m {
		t.mu.Lock()
		if t.status.terminal() {
			n := len(t.result) + len(t.err)
			all = append(all, ended{id, t.updated, n})
			total += n
		}
		t.mu.Unlock()
	}
	if len(all) <= MaxEnded && total <= MaxEndedBytes {
		return
	}
	slices.SortFunc(all, func(a, b ended) int { return a.at.Compare(b.at) })
	for i := 0; i < len(all) && (len(all)-i > MaxEnded || total > MaxEndedBytes); i++ {
		delete(r.m, all[i].id)
		total -= all[i].bytes
	}
}

// Create records a new working task owned by owner; cancel stops its work.
// Once Create returns, Get finds it: the handle can be sent.
func (r *Registry) Create(owner string, cancel context.CancelFunc) (*Task, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("task id: %w", err)
	}
	now := time.Now()
	t := &Task{ID: hex.EncodeToString(b), owner: owner, created: now, updated: now, ttl: r.ttl, poll: r.poll,
		cancel: cancel, status: Working, answers: make(chan map[string]json.RawMessage, 1)}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dropOldestEnded()
	r.m[t.ID] = t
	return t, nil
}

// Remove forgets task id (one that could not be recorded where it had to
// be, so its handle was never sent).
func (r *Registry) Remove(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, id)
}

// Get returns the task id when owner created it.
func (r *Registry) Get(id, owner string) (*Task, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.m[id]
	if !ok || t.owner != owner {
		return nil, false
	}
	return t, true
}

// Sweep fails the tasks that outlived their TTL, stopping their work, and
// deletes them grace later (terminal tasks at once: their outcome was
// there to read for the whole TTL).
func (r *Registry) Sweep(now time.Time, grace time.Duration) {
	r.mu.Lock()
	var expired []*Task
	for id, t := range r.m {
		t.mu.Lock()
		end := t.created.Add(t.ttl)
		switch {
		case now.Before(end):
		case !t.status.terminal():
			expired = append(expired, t)
		case !t.expired || now.After(end.Add(grace)):
			delete(r.m, id)
		}
		t.mu.Unlock()
	}
	r.mu.Unlock()
	for _, t := range expired {
		t.mu.Lock()
		t.expired = true
		t.mu.Unlock()
		t.fail(codeInternal, ErrExpired)
		t.cancel()
	}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain data
	}
	return b
}

// Len is the number of tasks kept.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}

// Running is the number of tasks not yet ended.
func (r *Registry) Running() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, t := range r.m {
		t.mu.Lock()
		if !t.status.terminal() {
			n++
		}
		t.mu.Unlock()
	}
	return n
}

// Owner is the identity that created the task.
func (t *Task) Owner() string { return t.owner }

// Expires is when the task's TTL runs out.
func (t *Task) Expires() time.Time { return t.created.Add(t.ttl) }

// Status is the task's status now.
func (t *Task) Status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.status
}

// Expired reports whether the task was failed at its TTL.
func (t *Task) Expired() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.expired
}

// Outstanding lists the keys of the input requests not answered yet.
func (t *Task) Outstanding() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.status != InputRequired {
		return nil
	}
	return slices.Collect(maps.Keys(t.requests))
}

// Terminal reports whether s ends a task.
func (s Status) Terminal() bool { return s.terminal() }

// Progress sets where the latest progress line of a working task is read.
func (t *Task) Progress(f func() string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.progress = f
}

// Working moves the task back to working (its input arrived).
func (t *Task) Working() { t.set(Working, "", nil) }

// Ask moves the task to input_required with requests (by key, each a
// server-to-client request); message says what it waits for.
func (t *Task) Ask(message string, requests map[string]json.RawMessage) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.status.terminal() {
		return
	}
	// Answers of an earlier round not taken (it ended by its timeout) are
	// never read as this round's.
	select {
	case <-t.answers:
	default:
	}
	t.status, t.message, t.requests, t.updated = InputRequired, message, maps.Clone(requests), time.Now()
}

// Complete ends the task with result (a CallToolResult, tool errors
// included).
func (t *Task) Complete(result json.RawMessage) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.status.terminal() {
		return
	}
	t.result = result
	t.status, t.message, t.requests, t.updated = Completed, "", nil, time.Now()
}

// Fail ends the task with a JSON-RPC error.
func (t *Task) Fail(code int, message string) { t.fail(code, message) }

func (t *Task) fail(code int, message string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.status.terminal() {
		return
	}
	t.err = mustJSON(map[string]any{"code": code, "message": message})
	t.status, t.message, t.requests, t.updated = Failed, message, nil, time.Now()
}

// Cancelled ends the task as cancelled.
func (t *Task) Cancelled(message string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.status.terminal() {
		return
	}
	t.status, t.message, t.requests, t.updated = Cancelled, message, nil, time.Now()
}

func (t *Task) set(s Status, message string, requests map[string]json.RawMessage) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.status.terminal() {
		return
	}
	t.status, t.message, t.requests, t.updated = s, message, requests, time.Now()
}

// Cancel asks the task's work to stop (tasks/cancel). The runner decides
// the outcome: usually cancelled, or completed if the work was done.
func (t *Task) Cancel() {
	t.mu.Lock()
	t.stopped = true
	t.mu.Unlock()
	t.cancel()
}

// Stopped reports whether tasks/cancel was asked.
func (t *Task) Stopped() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stopped
}

// Update hands the runner the answers to outstanding input requests. Keys
// not outstanding (never issued, answered already, superseded) are
// ignored, as the extension says; an update with none outstanding is
// dropped whole.
func (t *Task) Update(answers map[string]json.RawMessage) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.status != InputRequired {
		return
	}
	got := map[string]json.RawMessage{}
	for k, v := range answers {
		if _, ok := t.requests[k]; ok {
			got[k] = v
		}
	}
	if len(got) == 0 {
		return
	}
	for k := range got {
		delete(t.requests, k) // answered: never accepted twice
	}
	if len(t.requests) == 0 {
		t.status, t.message, t.updated = Working, "", time.Now()
	}
	// Only Update sends, under t.mu, and the runner only receives: none of
	// these sends can block.
	select {
	case t.answers <- got:
	default:
		// An earlier batch is not read yet: merge (keys are disjoint),
		// unless the runner took it meanwhile.
		select {
		case prev := <-t.answers:
			maps.Copy(prev, got)
			t.answers <- prev
		default:
			t.answers <- got
		}
	}
}

// Answers delivers the answers given by Update.
func (t *Task) Answers() <-chan map[string]json.RawMessage { return t.answers }

// View is the task as tasks/get and CreateTaskResult show it (without
// resultType, which the caller sets).
func (t *Task) View() map[string]any {
	t.mu.Lock()
	defer t.mu.Unlock()
	msg := t.message
	if t.status == Working && t.progress != nil {
		if p := t.progress(); p != "" {
			msg = p
			if p != t.shown {
				// A new progress line updates the task: lastUpdatedAt is
				// when it was first shown.
				t.shown, t.updated = p, time.Now()
			}
		}
	}
	v := map[string]any{
		"taskId":         t.ID,
		"status":         t.status,
		"createdAt":      t.created.UTC().Format(time.RFC3339Nano),
		"lastUpdatedAt":  t.updated.UTC().Format(time.RFC3339Nano),
		"ttlMs":          t.ttl.Milliseconds(),
		"pollIntervalMs": t.poll.Milliseconds(),
	}
	if msg != "" {
		v["statusMessage"] = msg
	}
	switch t.status {
	case InputRequired:
		v["inputRequests"] = maps.Clone(t.requests)
	case Completed:
		v["result"] = t.result
	case Failed:
		v["error"] = t.err
	}
	return v
}
