package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
)

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
			reply := s.taskRPC(s.httpOwner(token), body, r.Header)
			if reply == nil {
				w.WriteHeader(http.StatusAccepted)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(httpStatusOf(reply))
			_, _ = w.Write(reply)
		case mayGetTask(body):
			hw := &taskHandleWriter{w: w}
			next.ServeHTTP(hw, r)
			hw.finish()
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// mayGetTask reports whether body is a call that can be answered with a
// task handle: a 2026-era tools/call declaring the extension in its
// per-request capabilities (wantsTask decides on no less).
func mayGetTask(body []byte) bool {
	if !mayMention(body, TasksExtension) {
		return false
	}
	var m struct {
		Method string `json:"method"`
		Params struct {
			Meta map[string]any `json:"_meta"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &m) != nil || m.Method != string(mcp.MethodToolsCall) {
		return false
	}
	v, _ := m.Params.Meta[mcp.MetaKeyProtocolVersion].(string)
	return mcp.IsModernProtocol(v) && declaresTasks(m.Params.Meta)
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
			Meta map[string]json.RawMessage `json:"_meta"`
		} `json:"result"`
	}
	var v map[string]any
	if json.Unmarshal(msg, &resp) != nil || json.Unmarshal(resp.Result.Meta[taskMarker], &v) != nil || v == nil {
		return msg
	}
	v["resultType"] = "task"
	// The rest of the result's _meta (mcp-go's serverInfo) stays.
	delete(resp.Result.Meta, taskMarker)
	if len(resp.Result.Meta) > 0 {
		v["_meta"] = resp.Result.Meta
	}
	out := rpcResult(resp.ID, v)
	if bytes.HasSuffix(msg, []byte("\n")) {
		out = append(out, '\n')
	}
	return out
}

// taskHandleWriter passes a call's response through, rewriting a task
// handle. An event stream goes through as it is written, line by line, and
// is flushed when mcp-go flushes: only a data line carrying the handle is
// rewritten, so progress and an elicitation reach the client at once. A
// JSON response is one message written at the end: it is kept until the
// handler returns, and rewritten whole.
type taskHandleWriter struct {
	w       http.ResponseWriter
	decided bool // the status is known: stream or JSON
	stream  bool
	status  int
	pending []byte // stream: the start of a line not ended yet; JSON: the body
}

func (h *taskHandleWriter) Header() http.Header { return h.w.Header() }

func (h *taskHandleWriter) WriteHeader(status int) {
	if h.decided {
		return
	}
	h.decided, h.status = true, status
	h.stream = strings.HasPrefix(h.w.Header().Get("Content-Type"), "text/event-stream")
	if h.stream {
		h.w.WriteHeader(status)
	}
}

func (h *taskHandleWriter) Write(p []byte) (int, error) {
	if !h.decided {
		h.WriteHeader(http.StatusOK)
	}
	if !h.stream {
		h.pending = append(h.pending, p...)
		return len(p), nil
	}
	if len(h.pending) == 0 && bytes.HasSuffix(p, []byte("\n")) && !bytes.Contains(p, []byte(taskMarker)) {
		if _, err := h.w.Write(p); err != nil { // whole lines, nothing to rewrite
			return 0, err
		}
		return len(p), nil
	}
	h.pending = append(h.pending, p...)
	end := bytes.LastIndexByte(h.pending, '\n') + 1
	if end == 0 {
		return len(p), nil
	}
	if _, err := h.w.Write(rewriteDataLines(h.pending[:end])); err != nil {
		return 0, err
	}
	h.pending = append(h.pending[:0], h.pending[end:]...)
	return len(p), nil
}

func (h *taskHandleWriter) Flush() {
	if !h.stream {
		return // a JSON body is written whole at the end
	}
	if f, ok := h.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (h *taskHandleWriter) Unwrap() http.ResponseWriter { return h.w }

// finish writes what is kept: the JSON body, or the end of a stream that
// did not end its last line.
func (h *taskHandleWriter) finish() {
	switch {
	case !h.decided:
	case h.stream:
		if len(h.pending) > 0 {
			_, _ = h.w.Write(rewriteDataLines(h.pending))
		}
	default:
		out := taskHandle(h.pending)
		if len(out) != len(h.pending) {
			h.w.Header().Del("Content-Length")
		}
		h.w.WriteHeader(h.status)
		_, _ = h.w.Write(out)
	}
	h.pending = nil
}

// rewriteDataLines rewrites the event-stream data lines of chunk that carry
// a task handle.
func rewriteDataLines(chunk []byte) []byte {
	if !bytes.Contains(chunk, []byte(taskMarker)) {
		return chunk
	}
	var out bytes.Buffer
	for len(chunk) > 0 {
		line := chunk
		if i := bytes.IndexByte(chunk, '\n'); i >= 0 {
			line = chunk[:i+1]
		}
		chunk = chunk[len(line):]
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok || !bytes.Contains(data, []byte(taskMarker)) {
			out.Write(line)
			continue
		}
		out.WriteString("data: ")
		out.Write(taskHandle(data)) // keeps the line's end
	}
	return out.Bytes()
}
