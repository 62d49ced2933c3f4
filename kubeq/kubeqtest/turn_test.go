package kubeqtest

import (
	"net/http"
	"strings"
	"testing"
)

// TestPlainTurnBytes checks a whole turn byte for byte against the layout of
// the protocol page's example A (§2.8).
func TestPlainTurnBytes(t *testing.T) {
	srv := newTestServer(t, WithDeterministicIDs(), WithNow(fixedNow))
	srv.Handle("why is checkout crashing?", Script{
		Status("loading", "Loading conversation context…"),
		ToolCall("run_kubectl", "kubectl get pods -n shop"),
		ToolResult("run_kubectl", "NAME                      READY   STATUS\ncheckout-7d4b9cf6-xk2lp   0/1     CrashLoopBackOff"),
		ToolCall("query_prometheus", ""),
		Plan(PlanStep{"Check pod status in shop", "done"}, PlanStep{"Read previous container logs", "in_progress"}),
		Token("**Root cause:** `checkout` exits — "),
		Token("`DB_URL` 🔴"),
		Usage(14210, 655, 14865, 4),
	})
	r := do(t, srv, http.MethodPost, chatPath, kubeqBody("[context: namespace=shop] why is checkout crashing?"),
		map[string]string{"X-Session-ID": "mcp-5c1d2e", "X-Request-ID": "req-8f0a4c3e-1b2d-4e5f-9a6b-7c8d9e0f1a2b"})
	if r.err != nil || r.status != http.StatusOK {
		t.Fatalf("status %d, err %v", r.status, r.err)
	}
	const head = `{"id": "chatcmpl-000000000001", "object": "chat.completion.chunk", "created": 1767225600, "model": "kubeintellect", `
	want := `data: {"protocol_version": "1.0", "object": "stream.start", "session_id": "mcp-5c1d2e"}

data: ` + head + `"ki_event": {"type": "status", "phase": "loading", "message": "Loading conversation context\u2026"}, "choices": []}

data: ` + head + `"ki_event": {"type": "tool_call", "tool": "run_kubectl", "message": "Running: kubectl get pods -n shop"}, "choices": []}

data: ` + head + `"ki_event": {"type": "tool_result", "tool": "run_kubectl", "output": "NAME                      READY   STATUS\ncheckout-7d4b9cf6-xk2lp   0/1     CrashLoopBackOff"}, "choices": []}

data: ` + head + `"ki_event": {"type": "tool_call", "tool": "query_prometheus", "message": "Calling query_prometheus"}, "choices": []}

data: ` + head + `"ki_event": {"type": "plan", "steps": [{"description": "Check pod status in shop", "status": "done"}, {"description": "Read previous container logs", "status": "in_progress"}]}, "choices": []}

data: ` + head + `"choices": [{"index": 0, "delta": {"content": "**Root cause:** ` + "`checkout`" + ` exits \u2014 ", "role": "assistant"}, "finish_reason": null}]}

data: ` + head + `"choices": [{"index": 0, "delta": {"content": "` + "`DB_URL`" + ` \ud83d\udd34", "role": "assistant"}, "finish_reason": null}]}

data: ` + head + `"ki_event": {"type": "usage", "prompt_tokens": 14210, "completion_tokens": 655, "total_tokens": 14865, "llm_calls": 4}, "choices": []}

data: ` + head + `"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}

data: [DONE]

`
	if r.body != want {
		t.Errorf("stream differs\n got: %q\nwant: %q", r.body, want)
	}
	for k, v := range map[string]string{
		"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache",
		"X-Accel-Buffering": "no", "X-Request-Id": "req-8f0a4c3e-1b2d-4e5f-9a6b-7c8d9e0f1a2b",
	} {
		if got := r.header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	reqs := srv.ChatRequests()
	if len(reqs) != 1 {
		t.Fatalf("%d chat requests logged", len(reqs))
	}
	got := reqs[0]
	if got.Namespace != "shop" || got.Question != "why is checkout crashing?" || got.Session != "mcp-5c1d2e" ||
		got.Model != "kubeintellect-v2" || got.User != "mcp-user" || !got.Stream || string(got.StreamOptions) != `{"include_usage": true}` ||
		got.HasAutoApprove || !got.Finished || got.Disconnected || got.Status != 200 {
		t.Errorf("logged request: %+v", got)
	}
}

// TestFloodTurn checks that Flood writes n well-formed content chunks and
// ends the turn as usual.
func TestFloodTurn(t *testing.T) {
	srv := newTestServer(t, WithDeterministicIDs(), WithNow(fixedNow))
	srv.Handle("flood", Script{Flood(5000, "ab ")})
	r := do(t, srv, http.MethodPost, chatPath, kubeqBody("flood"), map[string]string{"X-Session-ID": "s-flood"})
	if r.err != nil || r.status != http.StatusOK {
		t.Fatalf("status %d, err %v", r.status, r.err)
	}
	const chunk = `"choices": [{"index": 0, "delta": {"content": "ab ", "role": "assistant"}, "finish_reason": null}]}`
	if n := strings.Count(r.body, chunk+"\n\n"); n != 5000 {
		t.Errorf("%d content chunks, want 5000", n)
	}
	if !strings.HasSuffix(r.body, "data: [DONE]\n\n") {
		t.Errorf("the turn does not end with [DONE]: %q", r.body[max(0, len(r.body)-200):])
	}
}
