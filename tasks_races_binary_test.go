package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// Tasks at the edges of an approval: an approve and a cancel that arrive
// together, a cancel after an approved change ran, an answer replayed into
// a later round, and the TTL or a shutdown while a form is open.

var approveWeb5 = map[string]any{"action": "accept", "content": map[string]any{"decision": "approve", "confirm": "web-5"}}

// awaitForm polls task id until it asks for input and returns its one key.
func awaitForm(t *testing.T, c *taskClient, id string, not ...string) string {
	t.Helper()
	task, _ := c.poll(id, 30*time.Second, func(task map[string]any) bool {
		reqs, _ := task["inputRequests"].(map[string]any)
		for _, old := range not {
			if _, ok := reqs[old]; ok {
				return false
			}
		}
		return task["status"] == "input_required"
	})
	require.Equal(t, "input_required", task["status"], task)
	reqs := task["inputRequests"].(map[string]any)
	require.Len(t, reqs, 1)
	for k := range reqs {
		return k
	}
	return ""
}

// auditDecisions reads the audit log's decisions, in order.
func auditDecisions(t *testing.T, b *binInstance) []string {
	t.Helper()
	raw, err := os.ReadFile(b.audit)
	require.NoError(t, err)
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
		out = append(out, fmt.Sprint(rec["decision"], "/", rec["reason"]))
	}
	return out
}

// An approve and a cancel written together: the cancel wins unless the
// approve was already sent. Either way the gate is decided at once (never
// left open for the sweeper), the audit log says what was sent, and a
// change that ran is reported in a completed task.
func TestBinaryTaskApproveThenCancelAtOnce(t *testing.T) {
	for i := range 3 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			backend := kubeqtest.NewServer()
			t.Cleanup(backend.Close)
			backend.Handle("clean up web-5", binScript(podGate("web-5", "")))
			// The sweeper would deny an open gate only after 60 s.
			b := startBinaryWith(t, "stdio", backend, "--approval-timeout", "60s", "--approval-browser", "none")
			c := newTaskClient(t, b, true)
			id := created(t, c.callQuery(map[string]any{"question": "clean up web-5"}))
			key := awaitForm(t, c, id)
			m, err := json.Marshal(c.meta())
			require.NoError(t, err)
			upd, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 9001, "method": "tasks/update", "params": map[string]any{
				"taskId": id, "inputResponses": map[string]any{key: approveWeb5}, "_meta": json.RawMessage(m)}})
			require.NoError(t, err)
			cnl, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 9002, "method": "tasks/cancel", "params": map[string]any{
				"taskId": id, "_meta": json.RawMessage(m)}})
			require.NoError(t, err)
			c.mu.Lock()
			_, err = c.in.Write([]byte(string(upd) + "\n" + string(cnl) + "\n"))
			c.mu.Unlock()
			require.NoError(t, err)

			task, _ := c.poll(id, 30*time.Second, nil)
			require.Eventually(t, func() bool { return len(backend.Decisions()) == 1 }, 30*time.Second, 20*time.Millisecond,
				"the gate is decided at once, not left to the sweeper")
			d := backend.Decisions()[0]
			require.Eventually(t, func() bool { return len(auditDecisions(t, b)) == 1 }, 10*time.Second, 20*time.Millisecond)
			audit := auditDecisions(t, b)[0]
			if d.Approved {
				assert.Equal(t, "completed", task["status"], "a change that ran is reported: %v", task)
				assert.Equal(t, "approved/user_approved", audit)
			} else {
				assert.Equal(t, "cancelled", task["status"], task)
				assert.Equal(t, "denied/user_cancelled", audit, "the audit log says what was sent")
			}
			t.Logf("approve then cancel: backend approved=%v, task %v, audit %s", d.Approved, task["status"], audit)
		})
	}
}

// A cancel after the human's approved change ran: the task completes with
// what it did, so the client learns the change ran.
func TestBinaryTaskCancelAfterApprovedChangeRan(t *testing.T) {
	bothTransports(t, func(t *testing.T, transport string) {
		backend := kubeqtest.NewServer()
		t.Cleanup(backend.Close)
		backend.Handle("clean up web-5", kubeqtest.Script{kubeqtest.Gate{Command: "kubectl delete pod web-5 -n shop", ActionID: "web-5",
			OnApprove: kubeqtest.Script{kubeqtest.Tokens("Ran web-5. "), kubeqtest.Sleep(10 * time.Minute), kubeqtest.Tokens("never")},
			OnDeny:    kubeqtest.Script{kubeqtest.Tokens("Did not run web-5.")}}})
		b := startBinaryWith(t, transport, backend, "--approval-timeout", "60s", "--approval-browser", "none")
		c := newTaskClient(t, b, true)
		id := created(t, c.callQuery(map[string]any{"question": "clean up web-5"}))
		key := awaitForm(t, c, id)
		_, e := c.request("tasks/update", map[string]any{"taskId": id, "inputResponses": map[string]any{key: approveWeb5}})
		require.Nil(t, e)
		// The approve reached the backend: the change ran.
		require.Eventually(t, func() bool { return len(backend.Decisions()) == 1 }, 30*time.Second, 20*time.Millisecond)
		_, e = c.request("tasks/cancel", map[string]any{"taskId": id})
		require.Nil(t, e)
		task, _ := c.poll(id, 30*time.Second, nil)
		require.Equal(t, "completed", task["status"], task)
		out := structured(t, task["result"].(map[string]any))
		approvals, _ := out["approvals"].([]any)
		require.Len(t, approvals, 1, out)
		assert.Equal(t, "approved", approvals[0].(map[string]any)["decision"])
		require.Len(t, backend.Decisions(), 1)
		assert.True(t, backend.Decisions()[0].Approved)
	})
}

// Two gates in one turn: the first approved (its change ran), a cancel at
// the second. The second gate is denied at the backend, and the task still
// completes with the first approval in its result, so the client learns a
// change ran.
func TestBinaryTaskCancelAtSecondGateAfterApprovedChangeRan(t *testing.T) {
	bothTransports(t, func(t *testing.T, transport string) {
		backend := kubeqtest.NewServer()
		t.Cleanup(backend.Close)
		backend.Handle("clean up", binScript(scaleGate("web", ""), scaleGate("api", "")))
		b := startBinaryWith(t, transport, backend, "--approval-timeout", "60s", "--approval-browser", "none")
		c := newTaskClient(t, b, true)
		id := created(t, c.callQuery(map[string]any{"question": "clean up"}))
		k1 := awaitForm(t, c, id)
		approve := map[string]any{"action": "accept", "content": map[string]any{"decision": "approve"}}
		_, e := c.request("tasks/update", map[string]any{"taskId": id, "inputResponses": map[string]any{k1: approve}})
		require.Nil(t, e)
		awaitForm(t, c, id, k1)
		require.Len(t, backend.Decisions(), 1, "gate 1 was decided before gate 2 opened")
		_, e = c.request("tasks/cancel", map[string]any{"taskId": id})
		require.Nil(t, e)
		task, _ := c.poll(id, 30*time.Second, nil)
		require.Equal(t, "completed", task["status"], "a change that ran is reported: %v", task)
		out := structured(t, task["result"].(map[string]any))
		approvals, _ := out["approvals"].([]any)
		require.NotEmpty(t, approvals, out)
		assert.Equal(t, "approved", approvals[0].(map[string]any)["decision"], out)
		d := backend.Decisions()
		require.Len(t, d, 2, "gate 2 is decided at once, not left to the sweeper")
		assert.True(t, d[0].Approved)
		assert.False(t, d[1].Approved, "the cancel denied gate 2")
		assert.Empty(t, strays(backend))
	})
}

// An answer to round 1 sent again while round 2's form is open does not
// decide round 2: its key is of round 1.
func TestBinaryTaskAnswerReplayedIntoNextRound(t *testing.T) {
	bothTransports(t, func(t *testing.T, transport string) {
		backend := kubeqtest.NewServer()
		t.Cleanup(backend.Close)
		backend.Handle("clean up", binScript(scaleGate("web", ""), scaleGate("api", "")))
		b := startBinaryWith(t, transport, backend, "--approval-timeout", "60s", "--approval-browser", "none")
		c := newTaskClient(t, b, true)
		id := created(t, c.callQuery(map[string]any{"question": "clean up"}))
		approve := map[string]any{"action": "accept", "content": map[string]any{"decision": "approve"}}
		k1 := awaitForm(t, c, id)
		_, e := c.request("tasks/update", map[string]any{"taskId": id, "inputResponses": map[string]any{k1: approve}})
		require.Nil(t, e)
		k2 := awaitForm(t, c, id, k1)
		assert.NotEqual(t, k1, k2, "keys are unique over the task's life")
		for range 3 {
			_, e = c.request("tasks/update", map[string]any{"taskId": id, "inputResponses": map[string]any{k1: approve}})
			require.Nil(t, e)
		}
		task, e := c.request("tasks/get", map[string]any{"taskId": id})
		require.Nil(t, e)
		assert.Equal(t, "input_required", task["status"], "round 2 still waits for its own answer")
		require.Len(t, backend.Decisions(), 1, "only round 1 was decided")
		_, e = c.request("tasks/update", map[string]any{"taskId": id, "inputResponses": map[string]any{k2: map[string]any{"action": "decline"}}})
		require.Nil(t, e)
		task, _ = c.poll(id, 30*time.Second, nil)
		require.Equal(t, "completed", task["status"])
		d := backend.Decisions()
		require.Len(t, d, 2)
		assert.True(t, d[0].Approved)
		assert.False(t, d[1].Approved, "round 2 was declined, not approved by round 1's replay")
	})
}

// The TTL, or a shutdown, while a form is open: the gate is denied and the
// task ends; nothing is approved.
func TestBinaryTaskTTLOrShutdownAtAGateDenies(t *testing.T) {
	t.Run("ttl", func(t *testing.T) {
		t.Parallel()
		backend := kubeqtest.NewServer()
		t.Cleanup(backend.Close)
		backend.Handle("clean up web-5", binScript(podGate("web-5", "")))
		b := startBinaryWith(t, "http", backend, "--approval-timeout", "60s", "--task-ttl", "3s", "--approval-browser", "none")
		c := newTaskClient(t, b, true)
		id := created(t, c.callQuery(map[string]any{"question": "clean up web-5"}))
		awaitForm(t, c, id)
		task, _ := c.poll(id, 30*time.Second, nil)
		assert.Equal(t, "failed", task["status"])
		assert.Equal(t, "Task has expired", task["error"].(map[string]any)["message"])
		require.Eventually(t, func() bool { return len(backend.Decisions()) == 1 }, 30*time.Second, 20*time.Millisecond)
		assert.False(t, backend.Decisions()[0].Approved)
	})
	t.Run("sigterm", func(t *testing.T) {
		t.Parallel()
		backend := kubeqtest.NewServer()
		t.Cleanup(backend.Close)
		backend.Handle("clean up web-5", binScript(podGate("web-5", "")))
		stderr := &syncBuffer{}
		cmd, endpoint := startHTTPBinary(t, kubeqMCPBinary(t), stderr, "--url", backend.URL, "--approval-browser", "none",
			"--approval-timeout", "60s", "--retry-delays", "10ms")
		c := newTaskClient(t, &binInstance{t: t, transport: "http", endpoint: endpoint}, true)
		id := created(t, c.callQuery(map[string]any{"question": "clean up web-5"}))
		awaitForm(t, c, id)
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		_ = cmd.Wait()
		d := backend.Decisions()
		require.Len(t, d, 1, "the open gate was denied before the process ended")
		assert.False(t, d[0].Approved)
	})
}

// A form inside a task left unanswered until its time runs out: the gate
// is denied as timed out from inside the task, which completes with the
// backend's reply to the deny (not a late-answer notice).
func TestBinaryTaskApprovalTimesOut(t *testing.T) {
	bothTransports(t, func(t *testing.T, transport string) {
		backend := kubeqtest.NewServer()
		t.Cleanup(backend.Close)
		backend.Handle("clean up web-5", binScript(podGate("web-5", "")))
		b := startBinaryWith(t, transport, backend, "--approval-timeout", "3s", "--approval-browser", "none")
		c := newTaskClient(t, b, true)
		id := created(t, c.callQuery(map[string]any{"question": "clean up web-5"}))
		awaitForm(t, c, id)
		task, _ := c.poll(id, 30*time.Second, nil)
		require.Equal(t, "completed", task["status"], task)
		out := structured(t, task["result"].(map[string]any))
		assert.Contains(t, out["answer"], "Did not run web-5.", "the backend's reply to the deny is in the result")
		approvals, _ := out["approvals"].([]any)
		require.Len(t, approvals, 1, out)
		assert.Equal(t, "denied", approvals[0].(map[string]any)["decision"])
		assert.Equal(t, "timed_out", approvals[0].(map[string]any)["reason"])
		assert.NotContains(t, fmt.Sprint(task["result"]), "came after the approval timeout")
		d := backend.Decisions()
		require.Len(t, d, 1)
		assert.False(t, d[0].Approved)
		assert.Empty(t, strays(backend))
	})
}
