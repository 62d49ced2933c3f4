package kubeqtest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

const deleteCmd = "kubectl delete pod checkout-7d4b9cf6-xk2lp -n shop"

// TestGateChunkBytes checks the HITL chunk of the protocol page's example B.
func TestGateChunkBytes(t *testing.T) {
	srv := newTestServer(t, WithNow(fixedNow))
	srv.Handle("delete the crashing checkout pod", Script{
		Gate{Command: deleteCmd, ActionID: "3f2b8e0a-6c1d-4f7e-9a55-0d2c7b1e4a90"},
		Tokens("never written"),
	})
	r := ask(t, srv, "mcp-5c1d2e", "delete the crashing checkout pod")
	fs := frames(r.body)
	if len(fs) != 6 {
		t.Fatalf("%d frames: %q", len(fs), r.body)
	}
	id := completionID(t, fs[1])
	head := `data: {"id": "` + id + `", "object": "chat.completion.chunk", "created": 1767225600, "model": "kubeintellect", `
	want := []string{
		`data: {"protocol_version": "1.0", "object": "stream.start", "session_id": "mcp-5c1d2e"}`,
		head + `"ki_event": {"type": "tool_call", "tool": "run_kubectl", "message": "Running: ` + deleteCmd + `"}, "choices": []}`,
		head + `"choices": [{"index": 0, "delta": {"content": "\n\n---\n\ud83d\udd34 **Approval Required** \u2014 risk level: ` + "`HIGH`" + `\n\n**Command:**\n` + "```" + `\n` + deleteCmd + `\n` + "```" + `\n\n**Type ` + "`yes`" + ` or ` + "`/approve`" + ` to proceed, or ` + "`no`" + ` / ` + "`/deny`" + ` to cancel.**", "role": "assistant"}, "finish_reason": null, "hitl_required": true, "action_id": "3f2b8e0a-6c1d-4f7e-9a55-0d2c7b1e4a90", "risk_level": "high", "human_summary": "` + deleteCmd + `"}]}`,
		head + `"ki_event": {"type": "usage", "prompt_tokens": 1200, "completion_tokens": 80, "total_tokens": 1280, "llm_calls": 1}, "choices": []}`,
		head + `"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}`,
		`data: [DONE]`,
	}
	for i := range want {
		if fs[i] != want[i] {
			t.Errorf("frame %d\n got: %s\nwant: %s", i, fs[i], want[i])
		}
	}
	g, ok := srv.PendingGate("mcp-5c1d2e")
	if !ok || g.ActionID != "3f2b8e0a-6c1d-4f7e-9a55-0d2c7b1e4a90" || g.Command != deleteCmd || g.Risk != "high" {
		t.Errorf("pending gate %+v, %v", g, ok)
	}
}

func TestGatePromptWithYAML(t *testing.T) {
	got := approvalPrompt("medium", "kubectl apply -f -", "kind: ConfigMap\n")
	want := "\n\n---\n🟡 **Approval Required** — risk level: `MEDIUM`\n\n**Command:**\n```\nkubectl apply -f -\n```\n" +
		"\n**YAML to apply:**\n```yaml\nkind: ConfigMap\n\n```\n" +
		"\n**Type `yes` or `/approve` to proceed, or `no` / `/deny` to cancel.**"
	if got != want {
		t.Errorf("prompt\n got %q\nwant %q", got, want)
	}
	long := strings.Repeat("é", 3001)
	if p := approvalPrompt("high", "x", long); !strings.Contains(p, strings.Repeat("é", 3000)+"\n... [truncated]\n```") {
		t.Errorf("YAML over 3000 characters is not truncated like the server does")
	}
}

// TestGateAnswers runs every phrase set, plus unrelated and prefixed text,
// through both HITL modes.
func TestGateAnswers(t *testing.T) {
	type answer struct {
		msg         string
		strict, lax bool
	}
	var answers []answer
	for _, p := range ApprovalPhrases() {
		answers = append(answers, answer{p, true, true}, answer{"  " + strings.ToUpper(p) + "\n", true, true})
	}
	for _, p := range AutoApprovePhrases() {
		answers = append(answers, answer{p, true, true})
	}
	for _, p := range DenialPhrases() {
		answers = append(answers, answer{p, false, false}, answer{" " + strings.ToUpper(p), false, false})
	}
	answers = append(answers,
		answer{"what pods are failing?", false, true},
		answer{"No.", false, true},
		answer{"", false, true},
		answer{"/approve", false, true},
		answer{"/deny", false, true},
		answer{"[context: namespace=shop] approve", false, true},
		answer{"yes please", false, true},
	)
	for _, mode := range []HITLMode{HITLStrict, HITLLax} {
		srv := newTestServer(t, WithHITLMode(mode))
		srv.Handle("delete it", Script{Gate{Command: deleteCmd}})
		for i, a := range answers {
			session := "s-" + mode.String() + "-" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
			if r := ask(t, srv, session, "delete it"); r.status != 200 {
				t.Fatalf("gate turn: %d", r.status)
			}
			r := ask(t, srv, session, a.msg)
			want := a.strict
			if mode == HITLLax {
				want = a.lax
			}
			answerText := contentOf(t, r.body)
			results := toolResults(t, r.body)
			if want {
				if len(results) != 1 || results[0] != `pod "checkout-7d4b9cf6-xk2lp" deleted` || !strings.HasPrefix(answerText, "Done:") {
					t.Errorf("%s: %q should approve; got results %q answer %q", mode, a.msg, results, answerText)
				}
			} else if len(results) != 1 || results[0] != "Action cancelled by user." {
				t.Errorf("%s: %q should deny; got results %q", mode, a.msg, results)
			}
			if Approves(mode, a.msg) != want {
				t.Errorf("Approves(%s, %q) != %v", mode, a.msg, want)
			}
			if _, ok := srv.PendingGate(session); ok {
				t.Errorf("%s: gate still pending after %q", mode, a.msg)
			}
			d := srv.Decisions()
			if last := d[len(d)-1]; last.Session != session || last.Approved != want || last.Message != a.msg || last.Auto {
				t.Errorf("%s: decision %+v for %q", mode, last, a.msg)
			}
		}
		if n := len(srv.Decisions()); n != len(answers) {
			t.Errorf("%d decisions for %d answers", n, len(answers))
		}
	}
}

func TestGateApprovedResumesTool(t *testing.T) {
	srv := newTestServer(t)
	srv.Handle("scale web", Script{Status("analyzing", "Analyzing your request…"), Gate{
		Command:   "kubectl scale deployment/web --replicas=3 -n shop",
		OnApprove: Script{ToolCall("run_kubectl", "kubectl scale deployment/web --replicas=3 -n shop"), ToolResult("run_kubectl", "scaled"), Gate{Command: "kubectl delete pod web-0"}},
	}})
	ask(t, srv, "s1", "scale web")
	g, _ := srv.PendingGate("s1")
	if g.Risk != "medium" {
		t.Errorf("scale risk %q, want medium", g.Risk)
	}
	r := ask(t, srv, "s1", "yes")
	if !strings.Contains(r.body, `"hitl_required": true`) {
		t.Errorf("approval answer should end in the second gate: %s", r.body)
	}
	if g2, ok := srv.PendingGate("s1"); !ok || g2.Command != "kubectl delete pod web-0" || g2.ActionID == g.ActionID {
		t.Errorf("second gate %+v %v", g2, ok)
	}
	r = ask(t, srv, "s1", "no")
	if res := toolResults(t, r.body); len(res) != 1 || res[0] != "Action cancelled by user." {
		t.Errorf("deny results %q", res)
	}
	if got := srv.MessagesFor("s1"); strings.Join(got, "|") != "scale web|yes|no" {
		t.Errorf("MessagesFor = %q", got)
	}
	if srv.Received("yes") != 1 || srv.Received("approve") != 0 {
		t.Errorf("Received counts wrong")
	}
}

func TestGateAutoApprove(t *testing.T) {
	srv := newTestServer(t)
	srv.Handle("fix it", Script{
		Gate{Command: deleteCmd},
		Gate{Command: "kubectl drain node-1", AlwaysConfirm: true},
	})
	body := `{"messages": [{"role": "user", "content": "fix it"}], "stream": true, "auto_approve": true}`
	r := do(t, srv, http.MethodPost, chatPath, body, map[string]string{"X-Session-ID": "auto"})
	if res := toolResults(t, r.body); len(res) != 1 || res[0] != `pod "checkout-7d4b9cf6-xk2lp" deleted` {
		t.Errorf("auto-approved results %q", res)
	}
	g, ok := srv.PendingGate("auto")
	if !ok || g.Command != "kubectl drain node-1" || g.Risk != "high" {
		t.Errorf("always-confirm gate should stay: %+v %v", g, ok)
	}
	d := srv.Decisions()
	if len(d) != 1 || !d[0].Auto || !d[0].Approved || d[0].Command != deleteCmd {
		t.Errorf("decisions %+v", d)
	}
	if reqs := srv.ChatRequests(); !reqs[0].AutoApprove || !reqs[0].HasAutoApprove {
		t.Errorf("auto_approve not logged")
	}
	// "approve all" as a question auto-approves for that turn only.
	srv.Handle("approve all", Script{Gate{Command: "kubectl delete pod a"}})
	ask(t, srv, "phrase", "approve all")
	if _, ok := srv.PendingGate("phrase"); ok {
		t.Errorf("approve-all turn raised a gate")
	}
	srv.Handle("again", Script{Gate{Command: "kubectl delete pod b"}})
	ask(t, srv, "phrase", "again")
	if _, ok := srv.PendingGate("phrase"); !ok {
		t.Errorf("approve all must last one turn only")
	}
}

func TestOpenGate(t *testing.T) {
	srv := newTestServer(t)
	id := srv.OpenGate("old", Gate{Command: "delete pod x", OnDeny: Script{Token("fine")}})
	g, ok := srv.PendingGate("old")
	if !ok || g.ActionID != id || g.Command != "kubectl delete pod x" {
		t.Fatalf("OpenGate: %+v", g)
	}
	r := ask(t, srv, "old", "deny")
	if contentOf(t, r.body) != "fine" {
		t.Errorf("OnDeny not written: %s", r.body)
	}
}

func TestToolOutput(t *testing.T) {
	for cmd, want := range map[string]string{
		"kubectl delete pod web-1 -n shop":          `pod "web-1" deleted`,
		"kubectl scale deployment/web --replicas=2": "deployment/web scaled",
		"kubectl drain node-1 --ignore-daemonsets":  "node/node-1 drained",
		"kubectl exec -it web -- sh":                "OK",
		"helm upgrade x":                            "OK",
	} {
		if got := toolOutput(cmd); got != want {
			t.Errorf("toolOutput(%q) = %q, want %q", cmd, got, want)
		}
	}
}

// chunk is the part of a frame the tests read.
type chunk struct {
	ID      string          `json:"id"`
	KiEvent json.RawMessage `json:"ki_event"`
	Choices []struct {
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
		HitlRequired bool    `json:"hitl_required"`
	} `json:"choices"`
}

func decodeFrames(t *testing.T, body string) []chunk {
	t.Helper()
	var out []chunk
	for _, f := range frames(body) {
		p, ok := strings.CutPrefix(f, "data: ")
		if !ok || p == "[DONE]" || strings.Contains(p, "stream.start") {
			continue
		}
		var c chunk
		if err := json.Unmarshal([]byte(p), &c); err != nil {
			t.Fatalf("bad frame %q: %v", p, err)
		}
		out = append(out, c)
	}
	return out
}

func completionID(t *testing.T, frame string) string {
	t.Helper()
	var c chunk
	if err := json.Unmarshal([]byte(strings.TrimPrefix(frame, "data: ")), &c); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// contentOf concatenates the answer text of a stream, HITL prompts excluded.
func contentOf(t *testing.T, body string) string {
	var b strings.Builder
	for _, c := range decodeFrames(t, body) {
		if len(c.Choices) == 1 && !c.Choices[0].HitlRequired {
			b.WriteString(c.Choices[0].Delta.Content)
		}
	}
	return b.String()
}

func toolResults(t *testing.T, body string) []string {
	var out []string
	for _, c := range decodeFrames(t, body) {
		var ev struct{ Type, Output string }
		if c.KiEvent != nil && json.Unmarshal(c.KiEvent, &ev) == nil && ev.Type == "tool_result" {
			out = append(out, ev.Output)
		}
	}
	return out
}
