package kubeqtest

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
)

const chatPath = "/v1/chat/completions"

// The real server's exact error details.
const (
	detailBearerRequired = "Authorization: Bearer <api_key> required"
	detailInvalidKey     = "Invalid API key"
	detailNoUserMessage  = "No user message provided"
	detailStreamOnly     = "Only stream=true is supported"
	detailRequireAuth    = "REQUIRE_AUTH is set but no API keys are configured; refusing to treat the caller as admin"
)

// defaultUsage is the usage frame of a turn whose script sets none.
var defaultUsage = [4]int{1200, 80, 1280, 1}

func (s *Server) serveChat(w http.ResponseWriter, r *http.Request, req *Request) {
	var sf Fault
	if f, ok := s.takeFault(); ok {
		s.update(req, func(req *Request) { req.Fault = f.name })
		switch {
		case f.drop:
			dropConnection(w)
			return
		case f.status != 0:
			s.writeBody(w, req, f.status, f.body, f.header)
			return
		}
		sf = f
	}
	if !s.opts.authChatOnly && !s.authorize(w, req) {
		return
	}
	body, errs := parseChatBody(req.Body)
	if errs != nil {
		s.writeJSON(w, req, http.StatusUnprocessableEntity, compactJSON(Obj{{"detail", errs}}))
		return
	}
	s.update(req, func(req *Request) { body.fill(req) })
	if !body.hasUser {
		s.writeDetail(w, req, http.StatusUnprocessableEntity, detailNoUserMessage)
		return
	}
	if s.opts.authChatOnly && !s.authorize(w, req) {
		return
	}
	if body.HasStream && !body.Stream {
		s.writeDetail(w, req, http.StatusUnprocessableEntity, detailStreamOnly)
		return
	}

	t, script, ok := s.startTurn(w, r, req, sf)
	if !ok {
		return
	}
	defer s.endTurn(t)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s.update(req, func(req *Request) { req.Status = http.StatusOK })
	t.run(script)
}

// startTurn claims the session, resolves a pending gate or routes the
// question, and builds the turn. ok is false when the turn was refused.
func (s *Server) startTurn(w http.ResponseWriter, r *http.Request, req *Request, f Fault) (*turn, Script, bool) {
	s.mu.Lock()
	ss := s.sessionLocked(req.Session)
	if ss.active > 0 {
		s.violations = append(s.violations, Violation{Session: ss.id, RequestID: req.RequestID, At: time.Now()})
		if s.opts.concurrent == RejectConcurrent {
			s.mu.Unlock()
			s.writeDetail(w, req, http.StatusConflict, "kubeqtest: a turn is already streaming on session '"+ss.id+
				"' (the real server would replace its queue and hang the first stream)")
			return nil, nil, false
		}
		close(ss.steal)
	}
	ss.active++
	ss.steal = make(chan struct{})
	t := &turn{
		srv: s, ctx: r.Context(), w: w, rc: http.NewResponseController(w), session: ss, req: req,
		sep: "\n\n", frameDelay: s.opts.frameDelay, stolen: ss.steal, lastWrite: time.Now(),
		usage: defaultUsage, cutAfter: f.cutAfter, noDone: f.noDone,
		autoApprove: req.AutoApprove || isAutoApprovePhrase(req.Message),
	}
	if s.opts.crlf || f.crlf {
		t.sep = "\r\n\r\n"
	}
	if f.slowFrame > 0 {
		t.frameDelay = f.slowFrame
	}
	pending := ss.pending
	ss.pending = nil
	if pending != nil {
		req.ResolvedGate = true
	}
	s.mu.Unlock()
	t.id = s.newCompletionID()

	var script Script
	if pending != nil {
		approved := Approves(s.opts.hitl, req.Message)
		s.recordDecision(Decision{Session: ss.id, ActionID: pending.ActionID, Command: pending.Command,
			Approved: approved, Message: req.Message, RequestID: req.RequestID, At: time.Now()})
		if approved {
			script = pending.gate.approveScript(true)
		} else {
			script = pending.gate.denyScript()
		}
	} else {
		script = s.scriptFor(req.clone())
	}
	if f.inject != nil {
		script = append(Script{f.inject}, script...)
	}
	return t, script, true
}

// releaseSession ends t's claim on its session, once.
func (s *Server) releaseSession(t *turn) {
	s.mu.Lock()
	if !t.released {
		t.released = true
		t.session.active--
	}
	s.mu.Unlock()
}

func (s *Server) endTurn(t *turn) {
	s.releaseSession(t)
	if t.gone && !t.req.Finished {
		s.update(t.req, func(req *Request) {
			req.Disconnected = true
			req.DisconnectedAt = time.Now()
		})
	}
}

// authorize checks the bearer key; on failure it writes the 401 and
// returns false.
func (s *Server) authorize(w http.ResponseWriter, req *Request) bool {
	if s.opts.requireAuth && len(s.opts.apiKeys) == 0 {
		s.writeDetail(w, req, http.StatusUnauthorized, detailRequireAuth)
		return false
	}
	if len(s.opts.apiKeys) == 0 {
		return true
	}
	a := req.Header.Get("Authorization")
	if !strings.HasPrefix(a, "Bearer ") {
		s.writeDetail(w, req, http.StatusUnauthorized, detailBearerRequired)
		return false
	}
	if !contains(s.opts.apiKeys, strings.TrimSpace(a[len("Bearer "):])) {
		s.writeDetail(w, req, http.StatusUnauthorized, detailInvalidKey)
		return false
	}
	return true
}

// chatBody is the decoded ChatCompletionRequest.
type chatBody struct {
	Model, User                 string
	Messages                    []Message
	Stream, HasStream           bool
	AutoApprove, HasAutoApprove bool
	StreamOptions               json.RawMessage
	hasUser                     bool
	message                     string
}

func (b chatBody) fill(r *Request) {
	r.Model, r.User, r.Messages = b.Model, b.User, b.Messages
	r.Stream, r.HasStream = b.Stream, b.HasStream
	r.AutoApprove, r.HasAutoApprove = b.AutoApprove, b.HasAutoApprove
	r.StreamOptions = b.StreamOptions
	r.Message = b.message
	r.Question, r.Namespace, r.KubeContext = stripContext(b.message)
}

// parseChatBody decodes and validates like pydantic would; errs is the
// FastAPI 422 list when the body does not fit the schema.
func parseChatBody(raw []byte) (chatBody, []Obj) {
	b := chatBody{Model: "kubeintellect", User: "default", Stream: true}
	doc, err := decodeOrdered(raw)
	if err != nil {
		return b, []Obj{{{"type", "json_invalid"}, {"loc", []any{"body", 0}}, {"msg", "JSON decode error"},
			{"input", Obj{}}, {"ctx", Obj{{"error", "Expecting value"}}}}}
	}
	obj, ok := doc.(Obj)
	if !ok {
		return b, validationErr("model_attributes_type", []any{"body"}, "Input should be a valid dictionary or object to extract fields from", doc)
	}
	var errs []Obj
	field := func(key string) (any, bool) {
		for _, kv := range obj {
			if kv.Key == key {
				return kv.Val, true
			}
		}
		return nil, false
	}
	str := func(key string, dst *string) {
		if v, ok := field(key); ok {
			if sv, ok := v.(string); ok {
				*dst = sv
			} else {
				errs = append(errs, validationErr("string_type", []any{"body", key}, "Input should be a valid string", v)...)
			}
		}
	}
	boolean := func(key string, dst, has *bool) {
		if v, ok := field(key); ok {
			*has = true
			if bv, ok := v.(bool); ok {
				*dst = bv
			} else {
				errs = append(errs, validationErr("bool_parsing", []any{"body", key}, "Input should be a valid boolean, unable to interpret input", v)...)
			}
		}
	}
	str("model", &b.Model)
	str("user", &b.User)
	boolean("stream", &b.Stream, &b.HasStream)
	boolean("auto_approve", &b.AutoApprove, &b.HasAutoApprove)
	if v, ok := field("stream_options"); ok {
		b.StreamOptions = json.RawMessage(PyJSON(v))
	}
	msgs, ok := field("messages")
	list, isList := msgs.([]any)
	switch {
	case !ok:
		errs = append(errs, validationErr("missing", []any{"body", "messages"}, "Field required", obj)...)
	case !isList:
		errs = append(errs, validationErr("list_type", []any{"body", "messages"}, "Input should be a valid list", msgs)...)
	}
	for i, m := range list {
		mo, ok := m.(Obj)
		if !ok {
			errs = append(errs, validationErr("model_attributes_type", []any{"body", "messages", i}, "Input should be a valid dictionary or object to extract fields from", m)...)
			continue
		}
		var msg Message
		for _, key := range []string{"role", "content"} {
			var v any
			found := false
			for _, kv := range mo {
				if kv.Key == key {
					v, found = kv.Val, true
				}
			}
			sv, isStr := v.(string)
			switch {
			case !found:
				errs = append(errs, validationErr("missing", []any{"body", "messages", i, key}, "Field required", mo)...)
			case !isStr:
				errs = append(errs, validationErr("string_type", []any{"body", "messages", i, key}, "Input should be a valid string", v)...)
			case key == "role":
				msg.Role = sv
			default:
				msg.Text = sv
				msg.Content = json.RawMessage(PyJSON(sv))
			}
			if key == "content" && found && !isStr {
				msg.Content = json.RawMessage(PyJSON(v))
			}
		}
		b.Messages = append(b.Messages, msg)
	}
	if errs != nil {
		return b, errs
	}
	for _, m := range b.Messages {
		if m.Role == "user" {
			b.hasUser, b.message = true, m.Text
		}
	}
	return b, nil
}

func validationErr(typ string, loc []any, msg string, input any) []Obj {
	return []Obj{{{"type", typ}, {"loc", loc}, {"msg", msg}, {"input", input}}}
}

func validationList(typ string, loc []any, msg string, input any) string {
	return compactJSON(Obj{{"detail", validationErr(typ, loc, msg, input)}})
}

// stripContext removes the "[context: key=value] " prefixes kube-q puts in
// front of a question and returns what they said.
func stripContext(msg string) (question, namespace, kubeContext string) {
	question = msg
	for strings.HasPrefix(question, "[context: ") {
		end := strings.Index(question, "] ")
		if end < 0 {
			break
		}
		kv := question[len("[context: "):end]
		if k, v, ok := strings.Cut(kv, "="); ok {
			switch k {
			case "namespace":
				namespace = v
			case "kube_context":
				kubeContext = v
			}
		}
		question = question[end+2:]
	}
	return question, namespace, kubeContext
}

func detailBody(detail string) string { return compactJSON(Obj{{"detail", detail}}) }

func (s *Server) writeDetail(w http.ResponseWriter, req *Request, code int, detail string) {
	s.writeJSON(w, req, code, detailBody(detail))
}

func (s *Server) writeJSON(w http.ResponseWriter, req *Request, code int, body string) {
	s.writeBody(w, req, code, body, http.Header{"Content-Type": {"application/json"}})
}

func (s *Server) writeBody(w http.ResponseWriter, req *Request, code int, body string, header http.Header) {
	for k, v := range header {
		w.Header()[k] = v
	}
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
	if req != nil {
		s.update(req, func(req *Request) { req.Status = code })
	}
}

var errAbort = errors.New("kubeqtest: connection cut")
