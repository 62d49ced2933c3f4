package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/kubeq-mcp/kubeq-mcp/approval"
	"github.com/kubeq-mcp/kubeq-mcp/tasks"
)

// With a shared store (--store redis://), a task of the Tasks extension is
// written to it, so any replica answers tasks/get, tasks/update and
// tasks/cancel and routing on Mcp-Name is not required. The task runs on
// the replica that created it, which writes its record when it changes
// (at most every taskShareEvery; at once, before the form shows anywhere,
// when it asks for input) and keeps its liveness key, which the store
// expires taskStaleAfter after the last refresh. Another replica answers
// tasks/get from the record, and leaves the answers of tasks/update and a
// tasks/cancel in the store as mail, which the running replica reads every
// taskShareEvery and hands to the task exactly as if they had come to it:
// the same keys, the same judging of the answer.
//
// A replica that finds a task neither ended nor alive (its runner hung or
// died, or cannot reach the store) declares it failed, and that is final:
// it leaves the failed view as mail (<id>/failed) before anyone is shown
// it, then writes it as the record. That mail outranks any record on
// every replica, the runner's own included. The runner reads it before it
// writes and before it acts on answers; finding it, it fails its task,
// stops its work (an open gate is denied) and writes nothing else.
//
// Keys (approval.BlobTask): <id> the record; <id>/alive the liveness key;
// <id>/failed, <id>/cancel and <id>/in/<key> the mail.

const (
	// taskShareEvery is how often a running task's record is refreshed
	// and its mail read.
	taskShareEvery = 250 * time.Millisecond
	// taskBeatEvery is how often a running task's liveness key is
	// refreshed.
	taskBeatEvery = 5 * time.Second
	// taskStaleAfter is the liveness key's lifetime in the store: a task
	// not heard from for this long belongs to a replica that stopped
	// without ending it, and is failed.
	taskStaleAfter = 6 * taskBeatEvery
)

// ErrTaskReplicaGone is the JSON-RPC error message of a task whose replica
// stopped without ending it.
const ErrTaskReplicaGone = "the replica running this task stopped"

// sharedTask is a task's record in the store.
type sharedTask struct {
	Owner   string          `json:"o"` // who may read it (httpOwner)
	Replica string          `json:"r"` // the replica running it
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

// mailKeep is how long mail about a task that expires at expires is kept:
// as long as its record can be.
func (s *Server) mailKeep(expires time.Time) time.Duration {
	return time.Until(expires) + s.taskGrace()
}

// putTask writes t's record with view, its tasks/get view.
func (s *Server) putTask(t *tasks.Task, view []byte) error {
	rec := sharedTask{Owner: t.Owner(), Replica: s.ledger.Replica(), Expires: t.Expires(), View: view}
	// A completed or cancelled task is deleted at its TTL; one failed at
	// its TTL (or still running) stays readable a grace longer.
	keep := time.Until(rec.Expires)
	if st := t.Status(); !st.Terminal() || t.Expired() {
		keep += s.taskGrace()
	}
	return s.putRecord(t.ID, rec, keep)
}

func (s *Server) putRecord(id string, rec sharedTask, keep time.Duration) error {
	blob, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("task record: %w", err)
	}
	if keep <= 0 {
		return nil
	}
	return s.ledger.SetBlob(context.Background(), approval.BlobTask, id, blob, keep)
}

// beatTask refreshes t's liveness key.
func (s *Server) beatTask(t *tasks.Task) error {
	return s.ledger.SetBlob(context.Background(), approval.BlobTask, t.ID+"/alive", []byte("1"), taskStaleAfter)
}

// recordNewTask writes a new task's liveness key, then its record: no
// replica finds the record without it.
func (s *Server) recordNewTask(t *tasks.Task, view []byte) error {
	if err := s.beatTask(t); err != nil {
		return err
	}
	return s.putTask(t, view)
}

// taskView is t's tasks/get view as JSON.
func taskView(t *tasks.Task) []byte {
	b, err := json.Marshal(t.View())
	if err != nil {
		panic(err) // plain data
	}
	return b
}

// taskSharer keeps a running task's record and liveness key, and reads
// its mail, from a goroutine of its own: the task's runner never waits on
// the store, except to record a form before it shows it (askTask).
type taskSharer struct {
	s      *Server
	t      *tasks.Task
	cancel context.CancelFunc // stops the task's work
	done   chan struct{}      // closed by stop
	exited chan struct{}      // closed when the goroutine returns

	mu       sync.Mutex // one record write at a time, its view taken under it
	last     []byte     // the view last written
	declared []byte     // the failed view another replica declared: final
	failing  bool       // record writes fail (logged once)

	// The goroutine's own.
	beat        time.Time // when the last liveness write that succeeded was sent
	beatFailing bool
	mailFailing bool
}

type sharerKey struct{}

// sharerFrom is the sharer of the task whose work ctx is, nil when its
// task is not shared.
func sharerFrom(ctx context.Context) *taskSharer {
	sh, _ := ctx.Value(sharerKey{}).(*taskSharer)
	return sh
}

// startSharing keeps t shared until stop; first is the view recordNewTask
// wrote, just now; cancel stops t's work. ctx, the task's work context, is
// returned with the sharer in it.
func (s *Server) startSharing(ctx context.Context, t *tasks.Task, first []byte, cancel context.CancelFunc) (context.Context, *taskSharer) {
	sh := &taskSharer{s: s, t: t, cancel: cancel, done: make(chan struct{}), exited: make(chan struct{}), last: first, beat: time.Now()}
	go sh.run()
	return context.WithValue(ctx, sharerKey{}, sh), sh
}

func (sh *taskSharer) run() {
	defer close(sh.exited)
	tick := time.NewTicker(taskShareEvery)
	defer tick.Stop()
	for {
		select {
		case <-sh.done:
			return
		case <-tick.C:
		}
		if sh.tick() {
			return // declared failed: nothing more to write
		}
	}
}

// tick refreshes the liveness key when due, reads the mail, then writes
// the record if it changed. It reports whether the task was found
// declared failed.
func (sh *taskSharer) tick() bool {
	s, t := sh.s, sh.t
	ctx := context.Background()
	if time.Since(sh.beat) >= taskBeatEvery {
		// First: after a pause, the others stop finding the task stale as
		// soon as can be.
		sent := time.Now()
		err := s.beatTask(t)
		switch {
		case err == nil:
			sh.beat = sent
			if sh.beatFailing {
				s.log.Info("a task's liveness is written to the store again", "task", t.ID)
			}
		case !sh.beatFailing:
			s.log.Warn("could not refresh a task's liveness in the store; other replicas fail it if this lasts",
				"task", t.ID, "after", taskStaleAfter, "err", err)
		}
		sh.beatFailing = err != nil
	}

	// All the mail in one read (one round trip, one instant): the failed
	// mail, the cancel, and an answer for each outstanding request. The
	// failed mail is read with the answers and before they are handed on:
	// an answer is never acted on once the task was shown failed.
	outstanding := t.Outstanding()
	keys := append(make([]string, 0, 2+len(outstanding)), t.ID+"/failed", t.ID+"/cancel")
	for _, key := range outstanding {
		keys = append(keys, t.ID+"/in/"+key)
	}
	mail, mailErr := s.ledger.GetBlobs(ctx, approval.BlobTask, keys)
	if mailErr == nil {
		if failed := mail[0]; failed != nil {
			sh.adopt(failed)
			return true
		}
		if mail[1] != nil && !t.Stopped() {
			t.Cancel()
			s.log.Info("task cancelled by the client through another replica", "task", t.ID)
		}
		answers := map[string]json.RawMessage{}
		for i, key := range outstanding {
			if b := mail[2+i]; b != nil {
				answers[key] = b
			}
		}
		if len(answers) > 0 {
			t.Update(answers)
		}
	}
	switch {
	case mailErr != nil && !sh.mailFailing:
		s.log.Warn("could not read a task's mail from the store; answers and a cancel left through other replicas wait",
			"task", t.ID, "err", mailErr)
	case mailErr == nil && sh.mailFailing:
		s.log.Info("a task's mail is read from the store again", "task", t.ID)
	}
	sh.mailFailing = mailErr != nil

	sh.mu.Lock()
	defer sh.mu.Unlock()
	if v := taskView(t); !bytes.Equal(v, sh.last) {
		sh.write(v)
	}
	return false
}

// write writes view as t's record; under mu.
func (sh *taskSharer) write(view []byte) {
	if err := sh.s.putTask(sh.t, view); err != nil {
		if !sh.failing {
			sh.s.log.Warn("could not write a task to the store; other replicas see it as it was", "task", sh.t.ID, "err", err)
		}
		sh.failing = true
		return
	}
	if sh.failing {
		sh.s.log.Info("a task is written to the store again", "task", sh.t.ID)
	}
	sh.last, sh.failing = view, false
}

// adopt makes another replica's declaration final here: the task fails
// with the same message, its work stops (an open gate is denied), and its
// record is the declared view.
func (sh *taskSharer) adopt(view []byte) {
	sh.t.Fail(-32603, ErrTaskReplicaGone)
	sh.cancel()
	sh.s.log.Warn("another replica failed this task while this one was not heard from; its work is stopped",
		"task", sh.t.ID, "after", taskStaleAfter)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.declared = view
	sh.write(view)
}

// stop ends the sharing and writes the task's last record, which no older
// one may overwrite; a declared failure stays.
func (sh *taskSharer) stop() {
	close(sh.done)
	<-sh.exited
	sh.mu.Lock()
	declared := sh.declared
	sh.mu.Unlock()
	if declared == nil {
		// The outcome may have raced with a declaration: the mail wins.
		if b, err := sh.s.ledger.GetBlob(context.Background(), approval.BlobTask, sh.t.ID+"/failed"); err == nil && b != nil {
			sh.adopt(b)
			return
		}
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	v := declared
	if v == nil {
		v = taskView(sh.t)
	}
	if err := sh.s.putTask(sh.t, v); err != nil {
		sh.s.log.Warn("could not write a task's outcome to the store; other replicas cannot read it", "task", sh.t.ID, "err", err)
	}
}

// askTask moves t to input_required with requests. A shared task's record
// shows the form first: no client sees it on any replica before the store
// has it, so an answer given through any replica is heard.
func (s *Server) askTask(ctx context.Context, t *tasks.Task, message string, requests map[string]json.RawMessage) {
	sh := sharerFrom(ctx)
	if sh == nil {
		t.Ask(message, requests)
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.declared == nil && !t.Status().Terminal() {
		v := t.View()
		delete(v, "result")
		delete(v, "error")
		v["status"] = tasks.InputRequired
		v["statusMessage"] = message
		v["inputRequests"] = maps.Clone(requests)
		v["lastUpdatedAt"] = time.Now().UTC().Format(time.RFC3339Nano)
		b, err := json.Marshal(v)
		if err != nil {
			panic(err) // plain data
		}
		sh.write(b)
	}
	t.Ask(message, requests)
}

// declaredFailed is the failed view another replica declared for task id,
// nil when none.
func (s *Server) declaredFailed(id string) ([]byte, error) {
	return s.ledger.GetBlob(context.Background(), approval.BlobTask, id+"/failed")
}

// localDeclared answers a tasks/* request for a task this replica runs
// when another replica declared it failed (this one was not heard from,
// and its sharer has not read the mail yet): the declaration is final
// here too. It returns nil otherwise, and when the store cannot tell.
func (s *Server) localDeclared(req rpcRequest, t *tasks.Task) []byte {
	view, err := s.declaredFailed(t.ID)
	if err != nil || view == nil {
		return nil
	}
	t.Fail(-32603, ErrTaskReplicaGone) // its sharer stops its work
	var v map[string]any
	if req.Method != "tasks/get" || json.Unmarshal(view, &v) != nil {
		return s.taskResult(req.ID, map[string]any{"resultType": mcp.ResultTypeComplete})
	}
	v["resultType"] = mcp.ResultTypeComplete
	return s.taskResult(req.ID, v)
}

// sharedTaskRPC answers a tasks/* request for a task this replica does
// not hold, from its record in the store.
func (s *Server) sharedTaskRPC(req rpcRequest, owner string) []byte {
	ctx := context.Background()
	id := req.Params.TaskID
	unavailable := func(what string, err error) []byte {
		s.log.Warn("could not read a task from the store", "task", id, "err", err)
		return rpcError(req.ID, -32603, "Failed to "+what+" task: the task store is unavailable", nil)
	}
	// The record, a declared failure and the liveness key, in one read
	// (one round trip, one instant).
	got, err := s.ledger.GetBlobs(ctx, approval.BlobTask, []string{id, id + "/failed", id + "/alive"})
	if err != nil {
		return unavailable("retrieve", err)
	}
	blob, declared, alive := got[0], got[1], got[2]
	var rec sharedTask
	var view map[string]any
	if blob == nil || json.Unmarshal(blob, &rec) != nil || rec.Owner != owner || json.Unmarshal(rec.View, &view) != nil {
		return rpcError(req.ID, codeInvalidParams, "Failed to retrieve task: Task not found", nil)
	}
	// A declared failure outranks the record, which its runner may have
	// written after it.
	var dview map[string]any
	if declared != nil && json.Unmarshal(declared, &dview) == nil {
		view = dview
	}
	status := tasks.Status(fmt.Sprint(view["status"]))
	now := time.Now()
	switch {
	case status.Terminal():
	case now.After(rec.Expires):
		status = tasks.Failed
		view = failedView(view, tasks.ErrExpired, now)
	default:
		if alive != nil {
			break
		}
		status = tasks.Failed
		view = failedView(view, ErrTaskReplicaGone, now)
		if err := s.declareFailed(id, rec, view); err != nil {
			return unavailable("retrieve", err)
		}
	}
	switch req.Method {
	case "tasks/get":
		view["resultType"] = mcp.ResultTypeComplete
		return s.taskResult(req.ID, view)
	case "tasks/update":
		requests, _ := view["inputRequests"].(map[string]any)
		if status != tasks.InputRequired {
			break // nothing outstanding: the update is dropped, as the extension says
		}
		for key, answer := range req.Params.InputResponses {
			if _, ok := requests[key]; !ok {
				continue
			}
			if err := s.ledger.SetBlob(ctx, approval.BlobTask, id+"/in/"+key, answer, s.mailKeep(rec.Expires)); err != nil {
				s.log.Warn("could not leave a task's answer in the store", "task", id, "err", err)
				return rpcError(req.ID, -32603, "Failed to update task: the task store is unavailable", nil)
			}
		}
	case "tasks/cancel":
		if status.Terminal() {
			break
		}
		if err := s.ledger.SetBlob(ctx, approval.BlobTask, id+"/cancel", []byte("1"), s.mailKeep(rec.Expires)); err != nil {
			s.log.Warn("could not leave a task's cancel in the store", "task", id, "err", err)
			return rpcError(req.ID, -32603, "Failed to cancel task: the task store is unavailable", nil)
		}
		s.log.Info("task cancel left in the store for the replica running it", "task", id, "replica", rec.Replica)
	}
	return s.taskResult(req.ID, map[string]any{"resultType": mcp.ResultTypeComplete})
}

// declareFailed makes the failure of task id, whose replica is not heard
// from, final: the mail first (it outranks any record, and the runner
// obeys it), then the record. Only once the mail is in the store may
// anyone be shown the failure.
func (s *Server) declareFailed(id string, rec sharedTask, view map[string]any) error {
	b, err := json.Marshal(view)
	if err != nil {
		return fmt.Errorf("task view: %w", err)
	}
	if err := s.ledger.SetBlob(context.Background(), approval.BlobTask, id+"/failed", b, s.mailKeep(rec.Expires)); err != nil {
		return err
	}
	s.log.Warn("a task's replica is not heard from; the task is failed", "task", id, "replica", rec.Replica, "after", taskStaleAfter)
	rec.View = b
	if err := s.putRecord(id, rec, time.Until(rec.Expires)); err != nil {
		s.log.Warn("could not write a failed task's record; its failure stands in the store", "task", id, "err", err)
	}
	return nil
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
