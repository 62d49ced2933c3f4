package fakebackend

import (
	"encoding/json"
	"net/http"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// LogEntry is one request the fake received, without headers or body (the
// Authorization header must not leak into test output).
type LogEntry struct {
	Seq          int    `json:"seq"`
	Method       string `json:"method"`
	Path         string `json:"path"`
	Session      string `json:"session"`
	Message      string `json:"message,omitempty"`  // last user message, raw
	Question     string `json:"question,omitempty"` // without "[context: …]" prefixes
	AutoApprove  bool   `json:"auto_approve"`
	ResolvedGate bool   `json:"resolved_gate"`
	Status       int    `json:"status"`
	Finished     bool   `json:"finished"`
	Disconnected bool   `json:"disconnected"`
}

// Log is the fake's request log in LogEntry form.
func Log(srv *kubeqtest.Server) []LogEntry {
	reqs := srv.Requests()
	out := make([]LogEntry, 0, len(reqs))
	for _, r := range reqs {
		out = append(out, LogEntry{
			Seq: r.Seq, Method: r.Method, Path: r.Path, Session: r.Session,
			Message: r.Message, Question: r.Question, AutoApprove: r.AutoApprove,
			ResolvedGate: r.ResolvedGate, Status: r.Status, Finished: r.Finished,
			Disconnected: r.Disconnected,
		})
	}
	return out
}

// Handler serves the fake at / and, for the e2e scripts, as JSON: its
// request log at GET /_log, its approval decisions at GET /_decisions and
// the scripted questions and expected answers at GET /_scenario.
func Handler(srv *kubeqtest.Server) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_log", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, Log(srv))
	})
	mux.HandleFunc("GET /_decisions", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, srv.Decisions())
	})
	mux.HandleFunc("GET /_scenario", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, Scenario())
	})
	mux.Handle("/", srv.Handler())
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
