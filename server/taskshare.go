package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/kubeq-mcp/kubeq-mcp/approval"
	"github.com/kubeq-mcp/kubeq-mcp/tasks"
)

// With a shared store (--store redis://), a task of the Tasks extension is
// written to it, so any replica answers tasks/get, tasks/update and
// tasks/cancel and routing on Mcp-Name is not required. The task runs on
// the replica that created it, which writes its record (at once when it
// changes, at most every taskShareEvery, and every taskBeatEvery while it
// lives). Another replica answers tasks/get from the record, and leaves
// the answers of tasks/update and a tasks/cancel in the store as mail,
// which the running replica reads every taskShareEvery and hands to the
// task exactly as if they had come to it: the same keys, the same judging
// of the answer.

const (
	// taskShareEvery is how often a running task's record is refreshed
	// and its mail read.
	taskShareEvery = 250 * time.Millisecond
	// taskBeatEvery: a running task's record is rewritten at least this
	// often, so the others can tell it from one whose replica died.
	taskBeatEvery = 5 * time.Second
	// taskStaleAfter: a record not rewritten for this long belongs to a
	// replica that stopped without ending it; the task is shown failed.
	taskStaleAfter = 6 * taskBeatEvery
)

// ErrTaskReplicaGone is the JSON-RPC error message of a task whose replica
// stopped without ending it.
const ErrTaskReplicaGone = "the replica running this task stopped"

// sharedTask is a task's record in the store.
type sharedTask struct {
	Owner   string          `json:"o"` // who may read it (the token's hash)
	Replica string          `json:"r"` // the replica running it
	Beat    time.Time       `json:"b"` // the last write
	Expires time.Time       `json:"e"` // its TTL runs out
	View    json.RawMessage `json:"v"` // as tasks/get shows it
}

// taskGrace is how long a task failed at its TTL stays readable (as the
// local sweeper keeps it).
func (s *Server) taskGrace() time.Duration { return min(s.cfg.TaskTTL, time.Minute) }

// sharesTasks reports whether the tasks of owner are written to a shared
// store: an HTTP client's, with a shared store. A stdio connection's tasks
// belong to its one process (no other replica can know its owner), so
// they are neither written nor looked up there, and a tasks/* request on
// stdin never waits for the store.
func (s *Server) sharesTasks(owner string) bool {
	return s.ledger != nil && s.ledger.Shared() && strings.HasPrefix(owner, "http")
}

// putTask writes t's record as it stands; view is its tasks/get view.
func (s *Server) putTask(t *tasks.Task, view []byte) error {
	now := time.Now()
	rec := sharedTask{Owner: t.Owner(), Replica: s.ledger.Replica(), Beat: now, Expires: t.Expires(), View: view}
	blob, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("task record: %w", err)
	}
	// A completed or cancelled task is deleted at its TTL; one failed at
	// its TTL (or still running) stays readable a grace longer.
	keep := time.Until(rec.Expires)
	if st := t.Status(); !st.Terminal() || t.Expired() {
		keep += s.taskGrace()
	}
	if keep <= 0 {
		return nil
	}
	return s.ledger.SetBlob(context.Background(), approval.BlobTask, t.ID, blob, keep)
}

// taskView is t's tasks/get view as JSON.
func taskView(t *tasks.Task) []byte {
	b, err := json.Marshal(t.View())
	if err != nil {
		panic(err) // plain data
	}
	return b
}

// shareTask keeps t's record and reads its mail until done is closed.
func (s *Server) shareTask(t *tasks.Task, done <-chan struct{}, last []byte) {
	tick := time.NewTicker(taskShareEvery)
	defer tick.Stop()
	wrote := time.Now()
	var failing bool
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		if v := taskView(t); !bytes.Equal(v, last) || time.Since(wrote) >= taskBeatEvery {
			if err := s.putTask(t, v); err != nil {
				if !failing {
					s.log.Warn("could not write a task to the store; other replicas see it as it was", "task", t.ID, "err", err)
				}
				failing = true
			} else {
				last, wrote, failing = v, time.Now(), false
			}
		}
		s.readTaskMail(t)
	}
}

// readTaskMail hands t what other replicas left for it: a cancel, and the
// answers to its outstanding input requests.
func (s *Server) readTaskMail(t *tasks.Task) {
	ctx := context.Background()
	if !t.Stopped() {
		if b, err := s.ledger.GetBlob(ctx, approval.BlobTask, t.ID+"/cancel"); err == nil && b != nil {
			t.Cancel()
			s.log.Info("task cancelled by the client through another replica", "task", t.ID)
			return
		}
	}
	answers := map[string]json.RawMessage{}
	for _, key := range t.Outstanding() {
		if b, err := s.ledger.GetBlob(ctx, approval.BlobTask, t.ID+"/in/"+key); err == nil && b != nil {
			answers[key] = b
		}
	}
	if len(answers) > 0 {
		t.Update(answers)
	}
}

// sharedTaskRPC answers a tasks/* request for a task this replica does
// not hold, from its record in the store.
func (s *Server) sharedTaskRPC(req rpcRequest, owner string) []byte {
	ctx := context.Background()
	blob, err := s.ledger.GetBlob(ctx, approval.BlobTask, req.Params.TaskID)
	if err != nil {
		s.log.Warn("could not read a task from the store", "task", req.Params.TaskID, "err", err)
		return rpcError(req.ID, -32603, "Failed to retrieve task: the task store is unavailable", nil)
	}
	var rec sharedTask
	var view map[string]any
	if blob == nil || json.Unmarshal(blob, &rec) != nil || rec.Owner != owner || json.Unmarshal(rec.View, &view) != nil {
		return rpcError(req.ID, codeInvalidParams, "Failed to retrieve task: Task not found", nil)
	}
	status := tasks.Status(fmt.Sprint(view["status"]))
	now := time.Now()
	switch {
	case status.Terminal():
	case now.After(rec.Expires):
		status = tasks.Failed
		view = failedView(view, tasks.ErrExpired, now)
	case now.Sub(rec.Beat) > taskStaleAfter:
		status = tasks.Failed
		view = failedView(view, ErrTaskReplicaGone, now)
	}
	switch req.Method {
	case "tasks/get":
		view["resultType"] = mcp.ResultTypeComplete
		return rpcResult(req.ID, view)
	case "tasks/update":
		requests, _ := view["inputRequests"].(map[string]any)
		if status != tasks.InputRequired {
			break // nothing outstanding: the update is dropped, as the extension says
		}
		for key, answer := range req.Params.InputResponses {
			if _, ok := requests[key]; !ok {
				continue
			}
			if err := s.ledger.SetBlob(ctx, approval.BlobTask, req.Params.TaskID+"/in/"+key, answer, time.Until(rec.Expires)+s.taskGrace()); err != nil {
				s.log.Warn("could not leave a task's answer in the store", "task", req.Params.TaskID, "err", err)
				return rpcError(req.ID, -32603, "Failed to update task: the task store is unavailable", nil)
			}
		}
	case "tasks/cancel":
		if status.Terminal() {
			break
		}
		if err := s.ledger.SetBlob(ctx, approval.BlobTask, req.Params.TaskID+"/cancel", []byte("1"), time.Until(rec.Expires)+s.taskGrace()); err != nil {
			s.log.Warn("could not leave a task's cancel in the store", "task", req.Params.TaskID, "err", err)
			return rpcError(req.ID, -32603, "Failed to cancel task: the task store is unavailable", nil)
		}
		s.log.Info("task cancel left in the store for the replica running it", "task", req.Params.TaskID, "replica", rec.Replica)
	}
	return rpcResult(req.ID, map[string]any{"resultType": mcp.ResultTypeComplete})
}

// failedView is view failed with a JSON-RPC internal error saying why.
func failedView(view map[string]any, why string, now time.Time) map[string]any {
	delete(view, "inputRequests")
	delete(view, "result")
	view["status"] = tasks.Failed
	view["statusMessage"] = why
	view["error"] = map[string]any{"code": -32603, "message": why}
	view["lastUpdatedAt"] = now.UTC().Format(time.RFC3339Nano)
	return view
}
