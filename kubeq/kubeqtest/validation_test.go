package kubeqtest

import (
	"net/http"
	"strings"
	"testing"
)

func TestAuthKeyMode(t *testing.T) {
	srv := newTestServer(t, WithAPIKeys("ki-op-1", "ki-ro-2"))
	cases := []struct {
		auth   string
		status int
		body   string
	}{
		{"", 401, `{"detail":"Authorization: Bearer <api_key> required"}`},
		{"Basic abc", 401, `{"detail":"Authorization: Bearer <api_key> required"}`},
		{"Bearer nope", 401, `{"detail":"Invalid API key"}`},
		{"Bearer ki-ro-2", 200, ""},
	}
	for _, c := range cases {
		h := map[string]string{"X-Session-ID": "s", "X-Request-ID": "req-1"}
		if c.auth != "" {
			h["Authorization"] = c.auth
		}
		r := do(t, srv, http.MethodPost, chatPath, kubeqBody("hi"), h)
		if r.status != c.status || (c.body != "" && r.body != c.body) {
			t.Errorf("auth %q: %d %s", c.auth, r.status, r.body)
		}
		if r.header.Get("X-Request-ID") != "req-1" {
			t.Errorf("X-Request-ID not echoed on %d", r.status)
		}
	}
	// V4: 401 comes before the body checks; health stays public.
	if r := do(t, srv, http.MethodPost, chatPath, `{"messages": []}`, nil); r.status != 401 {
		t.Errorf("401 must come before 422, got %d", r.status)
	}
	if r := do(t, srv, http.MethodGet, "/v1/namespaces", "", nil); r.status != 401 {
		t.Errorf("V4 namespaces without key: %d", r.status)
	}
	if r := do(t, srv, http.MethodGet, "/healthz", "", nil); r.status != 200 {
		t.Errorf("health needs no key: %d", r.status)
	}
	last, _ := srv.LastRequest()
	if reqs := srv.ChatRequests(); reqs[3].Bearer() != "ki-ro-2" || last.Path != "/healthz" {
		t.Errorf("Bearer() = %q", reqs[3].Bearer())
	}
}

func TestAuthV2ChecksAfterNoUserMessage(t *testing.T) {
	srv := newTestServer(t, WithV2(), WithAPIKeys("k"))
	if r := do(t, srv, http.MethodPost, chatPath, `{"messages": []}`, nil); r.status != 422 || r.body != `{"detail":"No user message provided"}` {
		t.Errorf("V2 checks the user message first: %d %s", r.status, r.body)
	}
	if r := do(t, srv, http.MethodPost, chatPath, kubeqBody("hi"), nil); r.status != 401 {
		t.Errorf("V2 chat without key: %d", r.status)
	}
	if r := do(t, srv, http.MethodGet, "/v1/namespaces", "", nil); r.status != 200 {
		t.Errorf("V2 namespaces need no key: %d", r.status)
	}
}

func TestRequireAuthWithoutKeys(t *testing.T) {
	srv := newTestServer(t, WithRequireAuthNoKeys())
	if r := do(t, srv, http.MethodPost, chatPath, kubeqBody("hi"), nil); r.status != 401 || !strings.Contains(r.body, "REQUIRE_AUTH") {
		t.Errorf("got %d %s", r.status, r.body)
	}
}

func TestValidation(t *testing.T) {
	srv := newTestServer(t)
	cases := []struct {
		name, body string
		status     int
		want       string
	}{
		{"no user message", `{"messages": [{"role": "system", "content": "x"}], "stream": true}`, 422, `{"detail":"No user message provided"}`},
		{"empty messages", `{"messages": []}`, 422, `{"detail":"No user message provided"}`},
		{"stream false", `{"messages": [{"role": "user", "content": "x"}], "stream": false}`, 422, `{"detail":"Only stream=true is supported"}`},
		{"array content", `{"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}`, 422,
			`{"detail":[{"type":"string_type","loc":["body","messages",0,"content"],"msg":"Input should be a valid string","input":[{"type":"text","text":"hi"}]}]}`},
		{"missing messages", `{"stream": true}`, 422,
			`{"detail":[{"type":"missing","loc":["body","messages"],"msg":"Field required","input":{"stream":true}}]}`},
		{"not json", `{"messages": `, 422, `json_invalid`},
		{"stream omitted is true", `{"messages": [{"role": "user", "content": "x"}]}`, 200, "data: [DONE]"},
	}
	for _, c := range cases {
		r := do(t, srv, http.MethodPost, chatPath, c.body, nil)
		if r.status != c.status || !strings.Contains(r.body, c.want) || (c.status == 422 && c.name != "not json" && r.body != c.want) {
			t.Errorf("%s: %d %s", c.name, r.status, r.body)
		}
		if c.status == 422 && r.header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: content type %q", c.name, r.header.Get("Content-Type"))
		}
	}
	if r := do(t, srv, http.MethodGet, "/v1/models", "", nil); r.status != 404 || r.body != `{"detail":"Not Found"}` {
		t.Errorf("unknown path: %d %s", r.status, r.body)
	}
	if r := do(t, srv, http.MethodGet, chatPath, "", nil); r.status != 405 || r.body != `{"detail":"Method Not Allowed"}` {
		t.Errorf("GET chat: %d %s", r.status, r.body)
	}
}

func TestLastUserMessageAndGeneratedSession(t *testing.T) {
	srv := newTestServer(t)
	body := `{"messages": [{"role": "user", "content": "first"}, {"role": "assistant", "content": "a"}, {"role": "user", "content": "[context: kube_context=prod] [context: namespace=web] second"}], "extra": 1}`
	r := do(t, srv, http.MethodPost, chatPath, body, nil)
	req := srv.ChatRequests()[0]
	if req.Message != "[context: kube_context=prod] [context: namespace=web] second" || req.Question != "second" ||
		req.Namespace != "web" || req.KubeContext != "prod" || len(req.Messages) != 3 || req.Model != "kubeintellect" || req.User != "default" {
		t.Errorf("request %+v", req)
	}
	if req.SessionHeader != "" || len(req.Session) != 36 || !strings.Contains(r.body, `"session_id": "`+req.Session+`"`) {
		t.Errorf("generated session %q not in handshake", req.Session)
	}
	if !strings.Contains(contentOf(t, r.body), "You asked: second") {
		t.Errorf("default reply: %q", contentOf(t, r.body))
	}
	if len(req.RequestID) != 36 || r.header.Get("X-Request-ID") != req.RequestID {
		t.Errorf("generated request id %q not echoed", req.RequestID)
	}
}

func TestHandleFuncFallback(t *testing.T) {
	srv := newTestServer(t)
	srv.Handle("exact", Script{Token("exact answer")})
	srv.HandleFunc(func(req Request) Script {
		if strings.HasPrefix(req.Question, "why") {
			return Script{Token("because " + req.Namespace)}
		}
		return nil
	})
	for q, want := range map[string]string{
		"exact":                          "exact answer",
		"[context: namespace=ns1] why?":  "because ns1",
		"other":                          "(kubeqtest) You asked: other",
		"[context: namespace=ns2] exact": "exact answer",
	} {
		if got := contentOf(t, ask(t, srv, "s-"+q, q).body); got != want {
			t.Errorf("%q answered %q, want %q", q, got, want)
		}
	}
}

func TestLogLimitAndReset(t *testing.T) {
	srv := newTestServer(t, WithLogLimit(2))
	for i := 0; i < 5; i++ {
		ask(t, srv, "s", "hi")
	}
	reqs := srv.Requests()
	if len(reqs) != 2 || reqs[0].Seq != 4 || reqs[1].Seq != 5 {
		t.Errorf("kept %d requests, seq %d", len(reqs), reqs[0].Seq)
	}
	srv.OpenGate("s", Gate{Command: "kubectl delete pod x"})
	ask(t, srv, "s", "yes")
	srv.ResetLog()
	if len(srv.Requests()) != 0 || len(srv.Decisions()) != 0 {
		t.Error("ResetLog kept entries")
	}
}
