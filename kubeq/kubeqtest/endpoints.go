package kubeqtest

import (
	"io"
	"net/http"
	"strings"
	"time"
)

// maxBody bounds what the fake reads of a request body.
const maxBody = 64 << 20

// mux logs every request, echoes X-Request-ID like the server's middleware,
// and routes.
func (s *Server) mux() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.running.Add(1)
		defer s.running.Done()
		body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
		req := &Request{
			Time: time.Now(), Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body,
			SessionHeader: r.Header.Get("X-Session-ID"), RequestID: r.Header.Get("X-Request-ID"),
		}
		if req.RequestID == "" {
			req.RequestID = s.newUUID()
		}
		req.Session = req.SessionHeader
		if req.Session == "" && r.URL.Path == chatPath {
			req.Session = s.newUUID()
		}
		s.addRequest(req)
		w.Header().Set("X-Request-ID", req.RequestID)

		path := r.URL.Path
		switch {
		case path == chatPath:
			if s.method(w, r, req, http.MethodPost) {
				s.serveChat(w, r, req)
			}
		case path == "/healthz" || path == "/v1/healthz":
			if s.method(w, r, req, http.MethodGet) {
				s.serveHealth(w, r, req)
			}
		case (path == "/readyz" || path == "/v1/readyz") && !s.opts.v2Health:
			if s.method(w, r, req, http.MethodGet) {
				s.serveReady(w, req)
			}
		case path == "/v1/namespaces":
			if s.method(w, r, req, http.MethodGet) && s.authorizeV4(w, req) {
				s.serveNamespaces(w, req)
			}
		case strings.HasPrefix(path, "/v1/events/replay/"):
			if s.method(w, r, req, http.MethodGet) && s.authorizeV4(w, req) {
				s.serveReplay(w, req, strings.TrimPrefix(path, "/v1/events/replay/"))
			}
		case path == "/v1/auth/whoami" && !s.opts.v2Health:
			if s.method(w, r, req, http.MethodGet) && s.authorizeV4(w, req) {
				s.writeJSON(w, req, http.StatusOK, compactJSON(Obj{{"role", s.opts.role}}))
			}
		default:
			s.writeDetail(w, req, http.StatusNotFound, "Not Found")
		}
	})
}

func (s *Server) method(w http.ResponseWriter, r *http.Request, req *Request, want string) bool {
	if r.Method == want {
		return true
	}
	w.Header().Set("Allow", want)
	s.writeDetail(w, req, http.StatusMethodNotAllowed, "Method Not Allowed")
	return false
}

// authorizeV4 checks the key on /v1 routes other than chat, which only V4
// protects.
func (s *Server) authorizeV4(w http.ResponseWriter, req *Request) bool {
	return s.opts.authChatOnly || s.authorize(w, req)
}

// SetHealth makes /healthz answer code from now on (200 restores it); with
// hang, health requests block until the client gives up or Close.
func (s *Server) SetHealth(code int, hang bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.health = healthState{status: code, hang: hang}
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request, req *Request) {
	s.mu.Lock()
	h := s.health
	degraded := make([]any, 0, len(s.degraded))
	for _, f := range s.degraded {
		degraded = append(degraded, f)
	}
	s.mu.Unlock()
	if h.hang {
		select {
		case <-r.Context().Done():
			s.update(req, func(req *Request) { req.Disconnected = true })
		case <-s.done:
			panic(http.ErrAbortHandler)
		}
		return
	}
	if h.status != http.StatusOK {
		s.writeDetail(w, req, h.status, http.StatusText(h.status))
		return
	}
	if s.opts.v2Health {
		s.writeJSON(w, req, http.StatusOK, compactJSON(Obj{{"status", "ok"}, {"version", s.opts.version}}))
		return
	}
	s.writeJSON(w, req, http.StatusOK, compactJSON(Obj{
		{"status", "ok"}, {"arm", "v4"}, {"version", s.opts.version},
		{"experimental_flags", []any{}}, {"set_but_unwired_flags", []any{}}, {"degraded_experimental_flags", degraded},
		{"leader", Obj{{"enabled", false}, {"is_leader", true}, {"reason", "kubeqtest"}}},
	}))
}

// SetReady makes /readyz answer 200 {"status":"ready"} (true) or, as a
// replica that has begun shutting down, 503 {"status":"draining"}.
func (s *Server) SetReady(ready bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.draining = !ready
}

// SetDegradedFlags sets what /healthz lists under
// degraded_experimental_flags: flags that are on but inert because the
// subsystem behind them is down. V4 only.
func (s *Server) SetDegradedFlags(flags ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.degraded = append([]string(nil), flags...)
}

func (s *Server) serveReady(w http.ResponseWriter, req *Request) {
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		s.writeJSON(w, req, http.StatusServiceUnavailable, `{"status":"draining"}`)
		return
	}
	s.writeJSON(w, req, http.StatusOK, `{"status":"ready"}`)
}

// SetNamespacesError makes /v1/namespaces fail as when kubectl fails: V4
// answers 503 {"detail":"Cannot list namespaces: <msg>"}, V2 200 []. An
// empty msg restores the list.
func (s *Server) SetNamespacesError(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nsError = msg
}

func (s *Server) serveNamespaces(w http.ResponseWriter, req *Request) {
	s.mu.Lock()
	nsErr := s.nsError
	s.mu.Unlock()
	switch {
	case nsErr != "" && s.opts.v2Namespaces:
		s.writeJSON(w, req, http.StatusOK, "[]")
	case nsErr != "":
		s.writeDetail(w, req, http.StatusServiceUnavailable, "Cannot list namespaces: "+nsErr)
	case s.opts.v2Namespaces:
		s.writeJSON(w, req, http.StatusOK, compactJSON(Obj{{"namespaces", s.opts.namespaces}}))
	default:
		s.writeJSON(w, req, http.StatusOK, compactJSON(Obj{{"namespaces", s.opts.namespaces}, {"withheldByPolicy", ""}}))
	}
}

// serveReplay streams the session's flat wire.py history like the newer V4
// endpoint: 404 when there is none, else a replay_meta frame, the events,
// [DONE].
func (s *Server) serveReplay(w http.ResponseWriter, req *Request, sid string) {
	s.mu.Lock()
	var history []Obj
	if ss := s.sessions[sid]; ss != nil {
		history = append(history, ss.history...)
	}
	s.mu.Unlock()
	if len(history) == 0 {
		s.writeDetail(w, req, http.StatusNotFound, "this process holds no event history for session '"+sid+"'")
		return
	}
	var b strings.Builder
	b.WriteString("data: " + PyJSON(Obj{{"type", "replay_meta"}, {"session_id", sid}, {"records", len(history)}, {"durable", false}}) + "\n\n")
	for _, ev := range history {
		b.WriteString("data: " + PyJSON(ev) + "\n\n")
	}
	b.WriteString("data: [DONE]\n\n")
	s.writeBody(w, req, http.StatusOK, b.String(), http.Header{
		"Content-Type": {"text/event-stream; charset=utf-8"}, "Cache-Control": {"no-cache"}, "X-Accel-Buffering": {"no"},
	})
}
