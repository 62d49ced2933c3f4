package kubeqtest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestHealth(t *testing.T) {
	v4 := newTestServer(t, WithVersion("4.2.0"))
	for _, p := range []string{"/healthz", "/v1/healthz"} {
		r := do(t, v4, http.MethodGet, p, "", nil)
		if r.status != 200 || !strings.HasPrefix(r.body, `{"status":"ok","arm":"v4","version":"4.2.0",`) {
			t.Errorf("%s: %d %s", p, r.status, r.body)
		}
	}
	v4.SetHealth(503, false)
	if r := do(t, v4, http.MethodGet, "/healthz", "", nil); r.status != 503 {
		t.Errorf("SetHealth(503): %d", r.status)
	}
	v4.SetHealth(200, true)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, v4.URL+"/healthz", nil)
	if resp, err := v4.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Error("hanging health answered")
	}
	if r := do(t, v4, http.MethodGet, "/readyz", "", nil); r.body != `{"status":"ready"}` {
		t.Errorf("readyz %s", r.body)
	}
	v4.SetReady(false)
	if r := do(t, v4, http.MethodGet, "/v1/readyz", "", nil); r.status != 503 || r.body != `{"status":"draining"}` {
		t.Errorf("draining readyz %d %s", r.status, r.body)
	}
	if r := do(t, v4, http.MethodGet, "/v1/auth/whoami", "", nil); r.body != `{"role":"admin"}` {
		t.Errorf("whoami %s", r.body)
	}
	v4.SetHealth(200, false)
	v4.SetDegradedFlags("MEMORY_HIERARCHY_ENABLED")
	if r := do(t, v4, http.MethodGet, "/healthz", "", nil); !strings.Contains(r.body, `"degraded_experimental_flags":["MEMORY_HIERARCHY_ENABLED"]`) {
		t.Errorf("degraded flags missing: %s", r.body)
	}

	keyed := newTestServer(t, WithAPIKeys("k1"), WithRole("operator"))
	if r := do(t, keyed, http.MethodGet, "/v1/auth/whoami", "", nil); r.status != 401 {
		t.Errorf("whoami without a key: %d %s", r.status, r.body)
	}
	if r := do(t, keyed, http.MethodGet, "/v1/auth/whoami", "", map[string]string{"Authorization": "Bearer k1"}); r.body != `{"role":"operator"}` {
		t.Errorf("whoami with the key: %d %s", r.status, r.body)
	}

	v2 := newTestServer(t, WithV2())
	if r := do(t, v2, http.MethodGet, "/healthz", "", nil); r.body != `{"status":"ok","version":"2.0.0"}` {
		t.Errorf("V2 health %s", r.body)
	}
	for _, p := range []string{"/readyz", "/v1/auth/whoami"} {
		if r := do(t, v2, http.MethodGet, p, "", nil); r.status != 404 {
			t.Errorf("V2 %s: %d, want 404 (V2 has none)", p, r.status)
		}
	}
}

func TestNamespaces(t *testing.T) {
	v4 := newTestServer(t, WithNamespaces("a", "b"))
	if r := do(t, v4, http.MethodGet, "/v1/namespaces", "", nil); r.body != `{"namespaces":["a","b"],"withheldByPolicy":""}` {
		t.Errorf("V4 namespaces %s", r.body)
	}
	v4.SetNamespacesError("error: You must be logged in")
	if r := do(t, v4, http.MethodGet, "/v1/namespaces", "", nil); r.status != 503 || r.body != `{"detail":"Cannot list namespaces: error: You must be logged in"}` {
		t.Errorf("V4 namespaces failure %d %s", r.status, r.body)
	}
	v2 := newTestServer(t, WithV2())
	v2.SetNamespacesError("x")
	if r := do(t, v2, http.MethodGet, "/v1/namespaces", "", nil); r.status != 200 || r.body != "[]" {
		t.Errorf("V2 namespaces failure %d %s", r.status, r.body)
	}
}

func TestReplay(t *testing.T) {
	srv := newTestServer(t, WithNow(fixedNow), WithDeterministicIDs())
	srv.Handle("delete", Script{Status("analyzing", "Analyzing your request…"), Gate{Command: deleteCmd}})
	if r := do(t, srv, http.MethodGet, "/v1/events/replay/r1", "", nil); r.status != 404 {
		t.Errorf("replay of an unknown session: %d", r.status)
	}
	ask(t, srv, "r1", "delete")
	ask(t, srv, "r1", "no")
	r := do(t, srv, http.MethodGet, "/v1/events/replay/r1", "", nil)
	want := `data: {"type": "replay_meta", "session_id": "r1", "records": 12, "durable": false}

data: {"type": "status", "phase": "analyzing", "message": "Analyzing your request\u2026", "session_id": "r1", "ts": 1767225600.0}

data: {"type": "tool_call", "tool": "run_kubectl", "command": "` + deleteCmd + `", "session_id": "r1", "ts": 1767225600.0}

data: {"type": "hitl_request", "action_id": "00000000-0000-4000-8000-000000000004", "risk_level": "high", "command": "` + deleteCmd + `", "stdin_yaml": null, "session_id": "r1", "ts": 1767225600.0}

data: {"type": "final", "session_id": "r1", "ts": 1767225600.0}

data: {"type": "tool_result", "tool": "run_kubectl", "output": "Action cancelled by user.", "session_id": "r1", "ts": 1767225600.0}

`
	if r.status != 200 || !strings.HasPrefix(r.body, want) || !strings.HasSuffix(r.body, `{"type": "final", "session_id": "r1", "ts": 1767225600.0}`+"\n\ndata: [DONE]\n\n") {
		t.Errorf("replay\n got %s\nwant prefix %s", r.body, want)
	}
}

func TestInProcessTransport(t *testing.T) {
	srv := NewUnstartedServer(WithHeartbeat(time.Hour))
	defer srv.Close()
	srv.Handle("q", Script{Tokens("in process")})
	client := &http.Client{Transport: srv.Transport()}

	req := mustRequest(t, waitCtx(t), "http://kubeintellect.invalid", "ip", "q")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" || contentOf(t, string(body)) != "in process" {
		t.Fatalf("in-process turn: %v %d %q", err, resp.StatusCode, body)
	}

	// Closing the body mid-turn cancels it, like a client disconnect.
	srv.Handle("slow", Script{Token("a"), Sleep(time.Hour)})
	resp, err = client.Do(mustRequest(t, waitCtx(t), "http://x", "ip2", "slow"))
	if err != nil {
		t.Fatal(err)
	}
	readFrames(t, resp.Body, 2)
	resp.Body.Close()
	if _, err := srv.WaitForDisconnect(waitCtx(t), "ip2"); err != nil {
		t.Error(err)
	}

	// Faults: a drop is a RoundTrip error, a cut a read error.
	srv.Fault(DropConnection())
	if _, err := client.Do(mustRequest(t, waitCtx(t), "http://x", "ip3", "q")); !errors.Is(err, errDropped) {
		t.Errorf("drop: %v", err)
	}
	srv.Fault(CutMidStream(1))
	resp, err = client.Do(mustRequest(t, waitCtx(t), "http://x", "ip3", "q"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut: %v", err)
	}
	if r := srv.Requests(); len(r) != 4 {
		t.Errorf("%d requests logged", len(r))
	}
}
