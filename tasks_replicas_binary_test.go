package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/internal/redistest"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// Tasks of the 2026 extension across replicas sharing one Redis (issue 12):
// the proxy sends each request to the next replica and ignores Mcp-Name,
// so tasks/get, tasks/update and tasks/cancel reach replicas that do not
// run the task, and must answer from the store.

// replicaTaskClient is a client of the extension talking to rs.
func replicaTaskClient(t *testing.T, rs *replicaSet, bearer string) *taskClient {
	c := newTaskClient(t, &binInstance{t: t, transport: "http", endpoint: rs.proxy.URL + "/mcp"}, true)
	c.bearer = bearer
	return c
}

// others are the replicas of rs that are not i.
func others(n, i int) []int {
	var out []int
	for j := range n {
		if j != i {
			out = append(out, j)
		}
	}
	return out
}

// A task polled to completed through every replica: the progress line and
// the whole result are read from replicas that never ran it, the answer
// byte-exact; another client's id is not found on any replica.
func TestReplicasTaskPolledAnywhere(t *testing.T) {
	srv := redistest.Start(t)
	pieces := []string{"Pod web-1 is in CrashLoopBackOff.\n", "Its last exit code was 137 ", "(OOMKilled).\n", "Raise the limit — «ünïcode» kept.\n"}
	backend := liveBackend(t, "why is web-1 crashing?", pieces, 1500*time.Millisecond)
	rs := startReplicas(t, 3, backend, srv.URL(0))
	c := replicaTaskClient(t, rs, "alice")

	id := created(t, c.callQuery(map[string]any{"question": "why is web-1 crashing?"}))
	runner := rs.servedCalls()[0]
	// Whoever reads Redis cannot test guesses of the token offline: the
	// owner is keyed with the state key, not a plain hash of the token.
	owner := storedOwner(t, srv, id)
	sum := sha256.Sum256([]byte("alice"))
	assert.Regexp(t, `^http:[0-9a-f]{64}$`, owner)
	assert.NotContains(t, owner, hex.EncodeToString(sum[:]), "the owner in the store is not sha256(token)")
	task, msgs := c.poll(id, 60*time.Second, nil)
	require.Equal(t, "completed", task["status"], task)
	require.NotEmpty(t, msgs, "statusMessage while working, read through other replicas")
	for _, m := range msgs {
		assert.True(t, strings.HasPrefix(m, "[investigating]") || strings.HasPrefix(m, "Gathering"), m)
	}
	assert.Equal(t, strings.Join(pieces, ""), structured(t, task["result"].(map[string]any))["answer"])

	// Every replica answers with the same outcome.
	for range 3 {
		again, e := c.request("tasks/get", map[string]any{"taskId": id})
		require.Nil(t, e)
		assert.Equal(t, task["result"], again["result"])
	}
	gets := rs.routes("tasks/get")
	for _, o := range others(3, runner) {
		assert.Contains(t, gets, o, "replica %d (not the runner %d) answered tasks/get", o, runner)
	}

	// Another client (another bearer) finds nothing, on any replica.
	mallory := replicaTaskClient(t, rs, "mallory")
	for _, m := range []string{"tasks/get", "tasks/cancel", "tasks/get"} {
		_, e := mallory.request(m, map[string]any{"taskId": id})
		require.NotNil(t, e, m)
		assert.Equal(t, -32602, e.Code, "%s of another client's task", m)
		assert.Equal(t, "Failed to retrieve task: Task not found", e.Message)
	}
	final, e := c.request("tasks/get", map[string]any{"taskId": id})
	require.Nil(t, e)
	assert.Equal(t, "completed", final["status"], "mallory's cancel changed nothing")
	assert.Equal(t, 1, backend.Received("why is web-1 crashing?"))
}

// storedOwner reads task id's record from redis-server, as anyone who can
// read Redis can, and returns its owner.
func storedOwner(t *testing.T, srv *redistest.Server, id string) string {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	keys, err := rdb.Keys(ctx, "*:task:"+id).Result()
	require.NoError(t, err)
	require.Len(t, keys, 1, "the task's record")
	raw, err := rdb.Get(ctx, keys[0]).Bytes()
	require.NoError(t, err)
	var rec struct {
		Owner string `json:"o"`
	}
	require.NoError(t, json.Unmarshal(raw, &rec))
	require.NotEmpty(t, rec.Owner)
	return rec.Owner
}

// The runner shows a form only once the store has it: a client that reads
// input_required from the runner and answers at once through another
// replica is heard (the record lagged the runner's own view by up to one
// share tick, and such an answer was dropped).
func TestReplicasTaskAnsweredElsewhereAtOnce(t *testing.T) {
	srv := redistest.Start(t)
	backend := kubeqtest.NewServer()
	t.Cleanup(backend.Close)
	backend.Handle("clean up web-5", binScript(podGate("web-5", "")))
	rs := startReplicas(t, 2, backend, srv.URL(0), "--approval-timeout", "5s", "--approval-browser", "none")
	c := replicaTaskClient(t, rs, "")
	approve := map[string]any{"action": "accept", "content": map[string]any{"decision": "approve", "confirm": "web-5"}}
	for round := range 3 {
		rs.only(0)
		id := created(t, c.callQuery(map[string]any{"question": "clean up web-5"}))
		var key string
		for deadline := time.Now().Add(30 * time.Second); key == ""; time.Sleep(5 * time.Millisecond) {
			task, e := c.request("tasks/get", map[string]any{"taskId": id})
			require.Nil(t, e)
			reqs, _ := task["inputRequests"].(map[string]any)
			for k := range reqs {
				key = k
			}
			require.True(t, time.Now().Before(deadline), "no form within 30 s: %v", task)
		}
		rs.only(1)
		_, e := c.request("tasks/update", map[string]any{"taskId": id, "inputResponses": map[string]any{key: approve}})
		require.Nil(t, e)
		task, _ := c.poll(id, 30*time.Second, nil)
		require.Equal(t, "completed", task["status"], task)
		d := backend.Decisions()
		require.Len(t, d, round+1)
		assert.True(t, d[round].Approved, "round %d: the approve sent through replica 1 right after the runner showed the form was heard", round)
	}
	assert.Empty(t, strays(backend))
}

// With the store gone while a task runs, its replica says so once, not on
// every share tick.
func TestReplicasTaskStoreErrorLoggedOnce(t *testing.T) {
	srv := redistest.Start(t)
	backend := liveBackend(t, "slow one", []string{"first. ", "never sent"}, time.Minute)
	rs := startReplicas(t, 2, backend, srv.URL(0))
	c := replicaTaskClient(t, rs, "")
	rs.only(0)
	id := created(t, c.callQuery(map[string]any{"question": "slow one"}))
	c.poll(id, 30*time.Second, func(task map[string]any) bool { return task["statusMessage"] != nil })
	srv.Stop()
	const warning = "could not read a task's mail from the store"
	require.Eventually(t, func() bool { return strings.Contains(rs.reps[0].stderr.String(), warning) }, 10*time.Second, 50*time.Millisecond,
		"a store error while reading mail is logged")
	time.Sleep(12 * 250 * time.Millisecond) // a dozen share ticks
	assert.Equal(t, 1, strings.Count(rs.reps[0].stderr.String(), warning), "once per transition, not per tick")
	// The task itself goes on: the sharer never holds up its runner.
	task, e := c.request("tasks/get", map[string]any{"taskId": id})
	require.Nil(t, e)
	assert.Equal(t, "working", task["status"])
}

// An approval inside a task, answered by tasks/update on a replica that
// does not run it: an approve with the right confirmation approves, a
// decline denies, exactly once each.
func TestReplicasTaskApproval(t *testing.T) {
	srv := redistest.Start(t)
	backend := kubeqtest.NewServer()
	t.Cleanup(backend.Close)
	backend.Handle("clean up web-5", binScript(podGate("web-5", "")))
	rs := startReplicas(t, 3, backend, srv.URL(0), "--approval-timeout", "60s", "--approval-browser", "none")
	c := replicaTaskClient(t, rs, "")

	for i, tc := range []struct {
		answer   map[string]any
		approved bool
		says     string
	}{
		{map[string]any{"action": "accept", "content": map[string]any{"decision": "approve", "confirm": "web-5"}}, true, "Ran web-5."},
		{map[string]any{"action": "decline"}, false, "Did not run web-5."},
	} {
		rs.only(0, 1, 2)
		id := created(t, c.callQuery(map[string]any{"question": "clean up web-5"}))
		runner := rs.servedCalls()[i]
		task, _ := c.poll(id, 30*time.Second, func(task map[string]any) bool { return task["status"] == "input_required" })
		require.Equal(t, "input_required", task["status"], task)
		reqs := task["inputRequests"].(map[string]any)
		require.Len(t, reqs, 1)
		var key string
		for k := range reqs {
			key = k
		}
		rs.only(others(3, runner)...)
		_, e := c.request("tasks/update", map[string]any{"taskId": id, "inputResponses": map[string]any{key: tc.answer}})
		require.Nil(t, e)
		require.NotEqual(t, runner, rs.routes("tasks/update")[len(rs.routes("tasks/update"))-1])
		task, _ = c.poll(id, 30*time.Second, nil)
		require.Equal(t, "completed", task["status"], task)
		assert.Contains(t, structured(t, task["result"].(map[string]any))["answer"], tc.says)
		d := backend.Decisions()
		require.Len(t, d, i+1)
		assert.Equal(t, tc.approved, d[i].Approved)

		// The key is answered: a second answer, anywhere, changes nothing.
		rs.only(0, 1, 2)
		for range 3 {
			_, e = c.request("tasks/update", map[string]any{"taskId": id, "inputResponses": map[string]any{key: tc.answer}})
			require.Nil(t, e)
		}
		assert.Len(t, backend.Decisions(), i+1)
	}
	assert.Empty(t, strays(backend))
}

// tasks/cancel on a replica that does not run the task stops its turn and
// closes the backend request.
func TestReplicasTaskCancel(t *testing.T) {
	srv := redistest.Start(t)
	backend := liveBackend(t, "slow one", []string{"first. ", "never sent"}, time.Minute)
	rs := startReplicas(t, 2, backend, srv.URL(0))
	c := replicaTaskClient(t, rs, "")
	rs.only(0)
	id := created(t, c.callQuery(map[string]any{"question": "slow one"}))
	rs.only(1)
	c.poll(id, 30*time.Second, func(task map[string]any) bool { return task["statusMessage"] != nil })
	res, e := c.request("tasks/cancel", map[string]any{"taskId": id})
	require.Nil(t, e)
	assert.Equal(t, "complete", res["resultType"])
	task, _ := c.poll(id, 30*time.Second, nil)
	assert.Equal(t, "cancelled", task["status"])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := backend.WaitForDisconnect(ctx, "")
	require.NoError(t, err, "the backend request is closed")
	assert.Equal(t, []int{1}, slices.Compact(rs.routes("tasks/cancel")))
}

// The replica running a task is killed: the others show it failed at its
// TTL, then forget it.
func TestReplicasTaskTTLAfterItsReplicaDied(t *testing.T) {
	srv := redistest.Start(t)
	backend := liveBackend(t, "slow one", []string{"first. ", "never sent"}, time.Minute)
	rs := startReplicas(t, 2, backend, srv.URL(0), "--task-ttl", "3s")
	c := replicaTaskClient(t, rs, "")
	rs.only(0)
	id := created(t, c.callQuery(map[string]any{"question": "slow one"}))
	rs.only(1)
	c.poll(id, 30*time.Second, func(task map[string]any) bool { return task["statusMessage"] != nil })
	require.NoError(t, rs.reps[0].cmd.Process.Kill())
	task, _ := c.poll(id, 30*time.Second, nil)
	require.Equal(t, "failed", task["status"], task)
	assert.Equal(t, "Task has expired", task["error"].(map[string]any)["message"])
	require.Eventually(t, func() bool {
		_, e := c.request("tasks/get", map[string]any{"taskId": id})
		return e != nil && e.Code == -32602
	}, 30*time.Second, 200*time.Millisecond, "deleted after its grace")
}

// With the store down, no task is created: its handle would name a task
// the other replicas cannot find. The call is refused, naming the store,
// and nothing reaches the backend; tasks/get of a task it cannot read is
// an error that names no password.
func TestReplicasTaskStoreDown(t *testing.T) {
	srv := redistest.Start(t, "--requirepass", "St0rePW")
	backend := liveBackend(t, "quick", []string{"done."}, 0)
	rs := startReplicas(t, 2, backend, "redis://:St0rePW@"+srv.Addr+"/0")
	c := replicaTaskClient(t, rs, "")
	rs.only(0)
	id := created(t, c.callQuery(map[string]any{"question": "quick"}))
	task, _ := c.poll(id, 30*time.Second, nil)
	require.Equal(t, "completed", task["status"])

	srv.Stop()
	before := len(backend.ChatRequests())
	res := c.callQuery(map[string]any{"question": "quick"})
	assert.NotEqual(t, "task", res["resultType"], "no task without its record")
	assert.Equal(t, true, res["isError"], res)
	txt := fmt.Sprint(res["content"])
	assert.Contains(t, txt, "store")
	assert.Contains(t, txt, "KUBEQ_MCP_STORE")
	assert.NotContains(t, txt, "St0rePW")
	assert.Len(t, backend.ChatRequests(), before, "nothing sent while the store is down")

	rs.only(1)
	_, e := c.request("tasks/get", map[string]any{"taskId": id})
	require.NotNil(t, e)
	assert.Equal(t, -32603, e.Code)
	assert.Contains(t, e.Message, "store is unavailable")
	assert.NotContains(t, e.Message, "St0rePW")
	for _, r := range rs.reps {
		assert.NotContains(t, r.stderr.String(), "St0rePW", "the password is in no log line")
	}
}

// The replica running a task hangs (SIGSTOP): once it has not been heard
// from for 30 s (its liveness key expired in the store), the others show
// the task failed rather than working forever; and failed is final. When
// the runner resumes (SIGCONT), every replica still shows it failed, the
// runner stops its work (the backend request is closed), and an approval
// left for it while it hung is never sent: its open gate is denied.
func TestReplicasTaskReplicaHung(t *testing.T) {
	t.Parallel()
	for _, gate := range []bool{false, true} {
		name := map[bool]string{false: "streaming", true: "at a gate"}[gate]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t)
			var backend *kubeqtest.Server
			question := "slow one"
			if gate {
				question = "clean up web-5"
				backend = kubeqtest.NewServer()
				t.Cleanup(backend.Close)
				backend.Handle(question, binScript(podGate("web-5", "")))
			} else {
				backend = liveBackend(t, question, []string{"first. ", "never sent"}, 10*time.Minute)
			}
			rs := startReplicas(t, 2, backend, srv.URL(0), "--approval-timeout", "5m", "--approval-browser", "none")
			c := replicaTaskClient(t, rs, "")
			rs.only(0)
			id := created(t, c.callQuery(map[string]any{"question": question}))
			rs.only(1)
			var key string
			c.poll(id, 30*time.Second, func(task map[string]any) bool {
				if !gate {
					return task["statusMessage"] != nil
				}
				reqs, _ := task["inputRequests"].(map[string]any)
				for k := range reqs {
					key = k
				}
				return task["status"] == "input_required"
			})
			require.NoError(t, rs.reps[0].cmd.Process.Signal(syscall.SIGSTOP))
			stopped := time.Now()
			t.Cleanup(func() { _ = rs.reps[0].cmd.Process.Kill() })
			approve := map[string]any{"action": "accept", "content": map[string]any{"decision": "approve", "confirm": "web-5"}}
			if gate {
				// A human approves while the runner hangs: the answer waits in
				// the store for it.
				_, e := c.request("tasks/update", map[string]any{"taskId": id, "inputResponses": map[string]any{key: approve}})
				require.Nil(t, e)
			}
			task, _ := c.poll(id, 2*time.Minute, nil)
			require.Equal(t, "failed", task["status"], task)
			failed := task["error"]
			assert.Equal(t, "the replica running this task stopped", failed.(map[string]any)["message"])
			assert.GreaterOrEqual(t, time.Since(stopped), 25*time.Second, "not before its liveness lapsed (30 s after its last beat, at most 5 s before the stop)")

			require.NoError(t, rs.reps[0].cmd.Process.Signal(syscall.SIGCONT))
			rs.only(0, 1)
			// Several seconds of polling through both replicas: at 250 ms a
			// tick, the runner has long read its mail and written what it
			// would.
			for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
				got, e := c.request("tasks/get", map[string]any{"taskId": id})
				require.Nil(t, e)
				require.Equal(t, "failed", got["status"], "failed is final: %v", got)
				assert.Equal(t, failed, got["error"])
				if gate {
					_, e = c.request("tasks/update", map[string]any{"taskId": id, "inputResponses": map[string]any{key: approve}})
					require.Nil(t, e)
				}
			}
			assert.Contains(t, rs.routes("tasks/get"), 0, "the runner answered too")
			if gate {
				require.Eventually(t, func() bool { return len(backend.Decisions()) > 0 }, 10*time.Second, 50*time.Millisecond,
					"the runner denies its open gate once it finds its task failed")
				d := backend.Decisions()
				require.Len(t, d, 1)
				assert.False(t, d[0].Approved, "no approve is ever sent for a task shown failed")
				assert.Empty(t, strays(backend))
			} else {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_, err := backend.WaitForDisconnect(ctx, "")
				require.NoError(t, err, "the runner stops the work of a task shown failed: the backend request is closed")
			}
		})
	}
}
