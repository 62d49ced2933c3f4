package tasks

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAnotherOwnersTaskIsNotFound(t *testing.T) {
	r := New(time.Hour, time.Second)
	task, err := r.Create("alice", func() {})
	require.NoError(t, err)
	got, ok := r.Get(task.ID, "alice")
	require.True(t, ok)
	assert.Same(t, task, got)
	_, ok = r.Get(task.ID, "bob")
	assert.False(t, ok, "another owner's task is not found")
	_, ok = r.Get("0123", "alice")
	assert.False(t, ok)
}

func TestIDsAre128RandomBits(t *testing.T) {
	r := New(time.Hour, time.Second)
	seen := map[string]bool{}
	for range 1000 {
		task, err := r.Create("o", func() {})
		require.NoError(t, err)
		require.Len(t, task.ID, 32)
		require.False(t, seen[task.ID])
		seen[task.ID] = true
	}
}

func TestUpdateTakesOnlyOutstandingKeysOnce(t *testing.T) {
	r := New(time.Hour, time.Second)
	task, err := r.Create("o", func() {})
	require.NoError(t, err)
	ans := map[string]json.RawMessage{"approval-1": json.RawMessage(`{"action":"accept"}`)}
	task.Update(ans) // not waiting for input: dropped
	task.Ask("waiting", map[string]json.RawMessage{"approval-1": json.RawMessage(`{}`)})
	assert.Equal(t, InputRequired, task.View()["status"])
	task.Update(map[string]json.RawMessage{"approval-7": json.RawMessage(`{"action":"accept"}`)})
	select {
	case <-task.Answers():
		t.Fatal("an unknown key was passed on")
	default:
	}
	task.Update(ans)
	task.Update(ans) // answered already: ignored
	got := <-task.Answers()
	assert.Equal(t, ans, got)
	select {
	case <-task.Answers():
		t.Fatal("a key was answered twice")
	default:
	}
	assert.Equal(t, Working, task.View()["status"])
}

func TestTerminalStatusesStick(t *testing.T) {
	r := New(time.Hour, time.Second)
	task, err := r.Create("o", func() {})
	require.NoError(t, err)
	task.Complete(json.RawMessage(`{"content":[]}`))
	task.Cancelled("late")
	task.Fail(-32603, "late")
	v := task.View()
	assert.Equal(t, Completed, v["status"])
	assert.JSONEq(t, `{"content":[]}`, string(v["result"].(json.RawMessage)))
}

func TestSweepFailsThenDeletes(t *testing.T) {
	r := New(time.Minute, time.Second)
	cancelled := 0
	running, err := r.Create("o", func() { cancelled++ })
	require.NoError(t, err)
	done, err := r.Create("o", func() {})
	require.NoError(t, err)
	done.Complete(json.RawMessage(`{}`))
	now := time.Now()
	r.Sweep(now, time.Minute)
	assert.Equal(t, 2, r.Len(), "nothing before the TTL")

	r.Sweep(now.Add(61*time.Second), time.Minute)
	_, ok := r.Get(done.ID, "o")
	assert.False(t, ok, "a finished task goes at its TTL")
	v := running.View()
	assert.Equal(t, Failed, v["status"])
	assert.JSONEq(t, `{"code":-32603,"message":"Task has expired"}`, string(v["error"].(json.RawMessage)))
	assert.Equal(t, 1, cancelled, "its work is stopped")

	r.Sweep(now.Add(3*time.Minute), time.Minute)
	assert.Equal(t, 0, r.Len(), "deleted after the grace")
}

// Answers of a round not taken (it ended by its timeout) are never read
// as the next round's.
func TestAskDropsAnUntakenRound(t *testing.T) {
	r := New(time.Hour, time.Second)
	task, err := r.Create("o", func() {})
	require.NoError(t, err)
	task.Ask("round 1", map[string]json.RawMessage{"approval-1": json.RawMessage(`{}`)})
	task.Update(map[string]json.RawMessage{"approval-1": json.RawMessage(`{"action":"accept"}`)})
	task.Ask("round 2", map[string]json.RawMessage{"approval-2": json.RawMessage(`{}`)})
	select {
	case got := <-task.Answers():
		t.Fatalf("round 1's answer was kept for round 2: %s", got)
	default:
	}
	task.Update(map[string]json.RawMessage{"approval-2": json.RawMessage(`{"action":"decline"}`)})
	assert.Equal(t, map[string]json.RawMessage{"approval-2": json.RawMessage(`{"action":"decline"}`)}, <-task.Answers())
}

// Updates merge into a batch not yet read, and none blocks while the
// runner takes batches at the same time.
func TestUpdatesMergeAndNeverBlock(t *testing.T) {
	r := New(time.Hour, time.Second)
	task, err := r.Create("o", func() {})
	require.NoError(t, err)
	reqs := map[string]json.RawMessage{}
	for i := range 200 {
		reqs[fmt.Sprint("k", i)] = json.RawMessage(`{}`)
	}
	task.Ask("many", reqs)
	got := map[string]json.RawMessage{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for len(got) < len(reqs) {
			maps.Copy(got, <-task.Answers())
		}
	}()
	for k := range reqs {
		task.Update(map[string]json.RawMessage{k: json.RawMessage(`{"action":"decline"}`)})
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the runner got %d of %d answers", len(got), len(reqs))
	}
	assert.Len(t, got, len(reqs))
}

// Ended tasks are kept within MaxEnded and MaxEndedBytes, the oldest
// dropped first; a task still working is never dropped.
func TestEndedTasksAreBounded(t *testing.T) {
	r := New(time.Hour, time.Second)
	working, err := r.Create("o", func() {})
	require.NoError(t, err)
	var first *Task
	for i := range MaxEnded + 10 {
		task, err := r.Create("o", func() {})
		require.NoError(t, err)
		task.Complete(json.RawMessage(`{"n":1}`))
		if i == 0 {
			first = task
		}
	}
	_, err = r.Create("o", func() {}) // the bound is kept as tasks are created
	require.NoError(t, err)
	assert.LessOrEqual(t, r.Len(), MaxEnded+2, "ended tasks kept within MaxEnded (plus the two working)")
	_, ok := r.Get(first.ID, "o")
	assert.False(t, ok, "the oldest ended task was dropped first")
	_, ok = r.Get(working.ID, "o")
	assert.True(t, ok, "a working task is never dropped")

	big := json.RawMessage(`"` + strings.Repeat("x", MaxEndedBytes/3) + `"`)
	var bigs []*Task
	for range 4 {
		task, err := r.Create("o", func() {})
		require.NoError(t, err)
		task.Complete(big)
		bigs = append(bigs, task)
	}
	_, err = r.Create("o", func() {})
	require.NoError(t, err)
	_, ok = r.Get(bigs[0].ID, "o")
	assert.False(t, ok, "past MaxEndedBytes the oldest results go")
	_, ok = r.Get(bigs[3].ID, "o")
	assert.True(t, ok, "the newest result stays")
}

// A new progress line is an update: lastUpdatedAt moves with it, and
// stays while the line stays.
func TestProgressMovesLastUpdatedAt(t *testing.T) {
	r := New(time.Hour, time.Second)
	task, err := r.Create("o", func() {})
	require.NoError(t, err)
	line := "step 1"
	task.Progress(func() string { return line })
	first := task.View()
	assert.Equal(t, "step 1", first["statusMessage"])
	time.Sleep(2 * time.Millisecond)
	assert.Equal(t, first["lastUpdatedAt"], task.View()["lastUpdatedAt"], "the same line is no update")
	line = "step 2"
	second := task.View()
	assert.Equal(t, "step 2", second["statusMessage"])
	a, err := time.Parse(time.RFC3339Nano, first["lastUpdatedAt"].(string))
	require.NoError(t, err)
	b, err := time.Parse(time.RFC3339Nano, second["lastUpdatedAt"].(string))
	require.NoError(t, err)
	assert.True(t, b.After(a), "a new line moved lastUpdatedAt: %v then %v", a, b)
}
