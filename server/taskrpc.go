package server

import (
	"encoding/json"
	"net/http"

	"github.com/mark3labs/mcp-go/mcp"
)

// The Tasks extension's methods, answered in front of mcp-go (which knows
// only the 2025-11-25 tasks) on both transports: tasks/get, tasks/update
// and tasks/cancel, and -32601 for tasks/result and tasks/list, which the
// extension removed. (The call's task handle, written by kube_query's
// handler in its result's _meta, is sent as the CreateTaskResult it stands
// for by taskhandle.go over HTTP and the stdio link's rewrite.)

// Error codes of the extension.
const (
	codeInvalidRequest    = -32600
	codeMethodNotFound    = -32601
	codeInvalidParams     = -32602
	codeMissingCapability = -32021
)

// rpcRequest is a tasks/* request as taskRPC read it.
type rpcRequest struct {
	ID     json.RawMessage
	Method string
	Params struct {
		Meta           map[string]any
		TaskID         string
		InputResponses map[string]json.RawMessage
	}
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

// taskRPC answers a tasks/* request from owner; reply is nil for a
// notification. header is the HTTP request's, nil over stdio: as mcp-go
// does for its own methods, the 2026 era's headers are checked only over
// HTTP. The envelope (id, method) is read before the params, so that
// params of the wrong type are answered -32602 with the request's id.
func (s *Server) taskRPC(owner string, msg []byte, header http.Header) (reply []byte) {
	var env struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(msg, &env); err != nil {
		return rpcError(nil, -32700, "Parse error", nil)
	}
	if len(env.ID) == 0 || string(env.ID) == "null" {
		return nil // a notification is not answered
	}
	req := rpcRequest{ID: env.ID, Method: env.Method}
	// encoding/json would take "Params" or "inputresponses" too, and the
	// last of a repeated member: a message read two ways is refused, as
	// mcp-go refuses it.
	if err := strictMembers(msg, envelopeMembers); err != nil {
		return rpcError(req.ID, codeInvalidRequest, err.Error(), nil)
	}
	if err := strictMembers(env.Params, taskParamsMembers); err != nil {
		return rpcError(req.ID, codeInvalidRequest, "params: "+err.Error(), nil)
	}
	var meta struct {
		Meta map[string]any `json:"_meta"`
	}
	_ = json.Unmarshal(env.Params, &meta) // isTaskMethod read it
	req.Params.Meta = meta.Meta
	version, _ := meta.Meta[mcp.MetaKeyProtocolVersion].(string)
	if header != nil {
		if err := checkTaskHeaders(header, version, req.Method); err != nil {
			return rpcError(req.ID, mcp.HEADER_MISMATCH, err.Error(), nil)
		}
	}
	if !mcp.IsValidProtocolVersion(version) {
		e := mcp.UnsupportedProtocolVersionError{Version: version, Supported: mcp.ValidProtocolVersions}.JSONRPCError()
		return rpcError(req.ID, e.Error.Code, e.Error.Message, e.Error.Data)
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
	if err := decodeTaskParams(env.Params, &req); err != nil {
		return rpcError(req.ID, codeInvalidParams, "Invalid params: "+err.Error(), nil)
	}
	if header != nil {
		if err := checkTaskName(header, req.Params.TaskID); err != nil {
			return rpcError(req.ID, mcp.HEADER_MISMATCH, err.Error(), nil)
		}
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
		return s.taskResult(req.ID, v)
	case "tasks/update":
		t.Update(req.Params.InputResponses)
	case "tasks/cancel":
		t.Cancel()
		s.log.Info("task cancelled by the client", "task", t.ID)
	}
	return s.taskResult(req.ID, map[string]any{"resultType": mcp.ResultTypeComplete})
}

// taskResult is a tasks/* result, naming the server in its _meta as every
// 2026-era result does (mcp-go adds it to its own).
func (s *Server) taskResult(id json.RawMessage, result map[string]any) []byte {
	result["_meta"] = map[string]any{mcp.MetaKeyServerInfo: map[string]any{"name": s.cfg.Name, "version": s.cfg.Version}}
	return rpcResult(id, result)
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
