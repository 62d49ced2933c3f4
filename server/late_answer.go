package server

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// maxClientMessage bounds how much of a client POST is read to classify it.
const maxClientMessage = 4 << 20

// tolerateLateAnswers turns mcp-go's 400 for an answer to a server request
// it no longer waits for into 202.
//
// That happens when a human answers an approval form after kubeq-mcp gave
// up on it (the approval timeout, or the call was cancelled) — the gate was
// already denied. mcp-go answers the client's response POST with 400 "No
// pending ... request", and the go-sdk client takes a failed response POST
// as fatal and closes the whole session. Accepting and dropping the late
// answer keeps the session; nothing else changes.
func (s *Server) tolerateLateAnswers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Body == nil {
			next.ServeHTTP(w, r)
			return
		}
		body, err := requestBody(r)
		if err != nil {
			http.Error(w, "cannot read request body", http.StatusBadRequest)
			return
		}
		if len(body) <= maxClientMessage {
			if d := disambiguate(body); len(d) != len(body) || !bytes.Equal(d, body) {
				body = d
				setRequestBody(r, body)
			}
		}
		if len(body) > maxClientMessage || !isJSONRPCResponse(body) {
			next.ServeHTTP(w, r)
			return
		}
		lw := &lateAnswerWriter{ResponseWriter: w}
		next.ServeHTTP(lw, r)
		s.counters.clientAnswers.Add(1)
		if lw.swallowed {
			s.log.Info("dropped a late answer to a request the server no longer waits for (an approval already denied)")
		}
	})
}

// isJSONRPCResponse reports whether body is a JSON-RPC response: an id and
// a result or an error, and no method.
func isJSONRPCResponse(body []byte) bool {
	if !mayMention(body, "result", "error") {
		return false
	}
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method *string         `json:"method"`
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &m) != nil {
		return false
	}
	return m.Method == nil && len(m.ID) > 0 && (len(m.Result) > 0 || len(m.Error) > 0)
}

// lateAnswerWriter replaces a 400 with an empty 202.
type lateAnswerWriter struct {
	http.ResponseWriter
	swallowed bool
}

func (w *lateAnswerWriter) WriteHeader(code int) {
	if code == http.StatusBadRequest {
		w.swallowed = true
		w.ResponseWriter.WriteHeader(http.StatusAccepted)
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *lateAnswerWriter) Write(p []byte) (int, error) {
	if w.swallowed {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

func (w *lateAnswerWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *lateAnswerWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
