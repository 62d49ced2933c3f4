package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
)

// The Tasks extension's methods, answered in front of mcp-go (which knows
// only the 2025-11-25 tasks) on both transports: tasks/get, tasks/update
// and tasks/cancel, and -32601 for tasks/result and tasks/list, which the
// extension removed. And the call's task handle, written by kube_query's
// handler in its result's _meta, sent as the CreateTaskResult it stands
// for.

// Error codes of the extension.
const (
	codeMethodNotFound    = -32601
	codeInvalidParams     = -32602
	codeMissingCapability = -32021
)

type rpcRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method"`
	Params  struct {
		Meta           map[string]any             `json:"_meta"`
		TaskID         string                     `json:"taskId"`
		InputResponses map[string]json.RawMessage `json:"inputResponses"`
	} `json:"params"`
}

// isTaskMethod reports whether msg is a request this file answers: a
// tasks/* method of the 2026-07-28 era (its _meta names the protocol
// version). The 2025-11-25 tasks of a session are mcp-go's.
func isTaskMethod(msg []byte) bool {
	if !mayMention(msg, "tasks/") {
		return false
	}
	var m struct {
		Method string `json:"method"`
		Params struct {
			Meta map[string]any `json:"_meta"`
		} `json:"params"`
	}
	if json.Unmarshal(msg, &m) != nil {
		return false
	}
	switch m.Method {
	case "tasks/get", "tasks/update", "tasks/cancel", "tasks/result", "tasks/list":
	default:
		return false
	}
	v, _ := m.Params.Meta[mcp.MetaKeyProtocolVersion].(string)
	return mcp.IsModernProtocol(v)
}

// peekMethod is the method of a single JSON-RPC message, "" for anything
// else (a batch, a response, bad JSON).
func peekMethod(msg []byte) string {
	var m struct {
		Method string `json:"method"`
	}
	if json.Unmarshal(msg, &m) != nil {
		return ""
	}
	return m.Method
}

// taskRPC answers a tasks/* request from owner; reply is nil for a
// notification.
func (s *Server) taskRPC(owner string, msg []byte) (reply []byte) {
	var req rpcRequest
	if err := json.Unmarshal(msg, &req); err != nil {
		return rpcError(nil, -32700, "Parse error", nil)
	}
	if len(req.ID) == 0 || string(req.ID) == "null" {
		return nil // a notification is not answered
	}
	switch req.Method {
	case "tasks/result", "tasks/list":
		return rpcError(req.ID, codeMethodNotFound, "Method "+req.Method+" not found: "+
			"the tasks extension (io.modelcontextprotocol/tasks) has no "+req.Method, nil)
	}
	if !declaresTasks(req.Params.Meta) {
		return rpcError(req.ID, codeMissingCapability, "Missing required client capability",
			map[string]any{"requiredCapabilities": map[string]any{"extensions": map[string]any{TasksExtension: map[string]any{}}}})
	}
	t, ok := s.tasks.Get(req.Params.TaskID, owner)
	if ok && s.sharesTasks(owner) {
		if reply := s.localDeclared(req, t); reply != nil {
			return reply // failed by another replica while this one was not heard from
		}
	}
	if !ok && s.sharesTasks(owner) && req.Params.TaskID != "" {
		return s.sharedTaskRPC(req, owner) // another replica's, maybe
	}
	if !ok {
		// Another client's task is not found either: its existence is not told.
		return rpcError(req.ID, codeInvalidParams, "Failed to retrieve task: Task not found", nil)
	}
	switch req.Method {
	case "tasks/get":
		v := t.View()
		v["resultType"] = mcp.ResultTypeComplete
		return rpcResult(req.ID, v)
	case "tasks/update":
		t.Update(req.Params.InputResponses)
	case "tasks/cancel":
		t.Cancel()
		s.log.Info("task cancelled by the client", "task", t.ID)
	}
	return rpcResult(req.ID, map[string]any{"resultType": mcp.ResultTypeComplete})
}

func rpcResult(id json.RawMessage, result any) []byte {
	b, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "result": result})
	if err != nil {
		return rpcError(id, -32603, "Internal error", nil)
	}
	return b
}

func rpcError(id json.RawMessage, code int, msg string, data any) []byte {
	e := map[string]any{"code": code, "message": msg}
	if data != nil {
		e["data"] = data
	}
	if id == nil {
		id = json.RawMessage("null")
	}
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "error": e})
	return b
}

// taskHandle rewrites a tools/call response carrying a task handle into
// the CreateTaskResult; any other message is returned as is.
func taskHandle(msg []byte) []byte {
	if !bytes.Contains(msg, []byte(taskMarker)) {
		return msg
	}
	var resp struct {
		ID     json.RawMessage `json:"id"`
		Result struct {
			Meta map[string]map[string]any `json:"_meta"`
		} `json:"result"`
	}
	if json.Unmarshal(msg, &resp) != nil || resp.Result.Meta[taskMarker] == nil {
		return msg
	}
	v := resp.Result.Meta[taskMarker]
	v["resultType"] = "task"
	out := rpcResult(resp.ID, v)
	if bytes.HasSuffix(msg, []byte("\n")) {
		out = append(out, '\n')
	}
	return out
}

// serveTasks answers the extension's methods over HTTP, and turns a task
// handle into its CreateTaskResult, whether mcp-go answered in JSON or in
// an event stream. The body was read and bounded by limitBody.
func (s *Server) serveTasks(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Body == nil {
			next.ServeHTTP(w, r)
			return
		}
		// The handlers after this one (capSessions) read the body that
		// limitBody buffered, so it stays buffered.
		body, err := requestBody(r)
		if err != nil {
			next.ServeHTTP(w, r)
			return
		}
		switch {
		case isTaskMethod(body):
			token, _ := bearerToken(r.Header.Get("Authorization"))
			reply := s.taskRPC(s.httpOwner(token), body)
			if reply == nil {
				w.WriteHeader(http.StatusAccepted)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(reply)
		case bytes.Contains(body, []byte(TasksExtension)) && peekMethod(body) == "tools/call":
			bw := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
			next.ServeHTTP(bw, r)
			bw.sendRewritten(w)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// bufferedResponse keeps a response to rewrite it whole. Only a call that
// asks for a task is buffered; it answers at once.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header         { return b.header }
func (b *bufferedResponse) WriteHeader(status int)      { b.status = status }
func (b *bufferedResponse) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferedResponse) Flush()                      {}

func (b *bufferedResponse) sendRewritten(w http.ResponseWriter) {
	out := b.body.Bytes()
	if strings.HasPrefix(b.header.Get("Content-Type"), "text/event-stream") {
		var nb bytes.Buffer
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			line := sc.Bytes()
			if data, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
				line = append([]byte("data: "), taskHandle(data)...)
			}
			nb.Write(line)
			nb.WriteByte('\n')
		}
		out = nb.Bytes()
	} else {
		out = taskHandle(out)
	}
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Length")
	w.WriteHeader(b.status)
	_, _ = w.Write(out)
}
