package kubeq

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func decodeOne(t *testing.T, data string) ([]Event, outcome) {
	t.Helper()
	var d decoder
	return d.decode([]byte(data), nil)
}

// Every wire name of protocol §3.3 lands on its typed field, in the flat
// wire.py shape, the nested typed-view shape and the live ki_event shape.
func TestWireNameMapping(t *testing.T) {
	cases := []struct {
		name  string
		frame string
		want  []Event
	}{
		{"live tool_call Running", `{"ki_event": {"type": "tool_call", "tool": "run_kubectl", "message": "Running: kubectl get pods -A"}, "choices": []}`,
			[]Event{ToolCall{Tool: "run_kubectl", Command: "kubectl get pods -A", Message: "Running: kubectl get pods -A"}}},
		{"live tool_call Calling", `{"ki_event": {"type": "tool_call", "tool": "query_loki", "message": "Calling query_loki"}, "choices": []}`,
			[]Event{ToolCall{Tool: "query_loki", Message: "Calling query_loki"}}},
		{"live tool_result", `{"ki_event": {"type": "tool_result", "tool": "run_kubectl", "output": "ok"}, "choices": []}`,
			[]Event{ToolResult{Tool: "run_kubectl", Output: "ok"}}},
		{"live fatal error", `{"ki_event": {"type": "error", "fatal": true, "message": "boom"}, "choices": []}`,
			[]Event{Error{Message: "boom", Fatal: true}}},
		{"live usage with session_id and ts", `{"ki_event": {"type": "usage", "prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3, "llm_calls": 4, "session_id": "s", "ts": 1.5}, "choices": []}`,
			[]Event{Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3, LLMCalls: 4}}},
		{"ki_event.usage nested", `{"ki_event": {"type": "usage", "usage": {"prompt_tokens": 5, "total_tokens": 5}}, "choices": []}`,
			[]Event{Usage{PromptTokens: 5, TotalTokens: 5}}},
		{"top-level usage, missing choices", `{"usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8}}`,
			[]Event{Usage{PromptTokens: 7, CompletionTokens: 1, TotalTokens: 8}}},
		{"live plan", `{"ki_event": {"type": "plan", "steps": [{"description": "a", "status": "pending"}]}, "choices": []}`,
			[]Event{Plan{Steps: []PlanStep{{Description: "a", Status: "pending"}}}}},

		{"flat tool_call command", `{"type": "tool_call", "tool": "run_kubectl", "command": "kubectl get ns", "session_id": "s", "ts": 1.0}`,
			[]Event{ToolCall{Tool: "run_kubectl", Command: "kubectl get ns"}}},
		{"flat tool_call null command", `{"type": "tool_call", "tool": "query_loki", "command": null}`,
			[]Event{ToolCall{Tool: "query_loki"}}},
		{"flat tool_result output", `{"type": "tool_result", "tool": "run_kubectl", "output": "NAME"}`,
			[]Event{ToolResult{Tool: "run_kubectl", Output: "NAME"}}},
		{"flat error.error", `{"type": "error", "error": "it broke"}`,
			[]Event{Error{Message: "it broke"}}},
		{"flat hitl_request", `{"type": "hitl_request", "action_id": "id1", "risk_level": "high", "command": "kubectl drain n1", "stdin_yaml": "a: 1"}`,
			[]Event{HitlRequest{ApprovalID: "id1", Action: "kubectl drain n1", Risk: "high", YAML: "a: 1"}}},
		{"flat token", `{"type": "token", "content": "hi"}`, []Event{Token{Content: "hi"}}},
		{"flat final", `{"type": "final", "session_id": "s", "ts": 2.0}`, []Event{Final{}}},
		{"flat status", `{"type": "status", "phase": "snapshot", "message": "m"}`, []Event{Status{Phase: "snapshot", Message: "m"}}},
		{"flat usage", `{"type": "usage", "prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2, "llm_calls": 1}`,
			[]Event{Usage{PromptTokens: 1, CompletionTokens: 1, TotalTokens: 2, LLMCalls: 1}}},

		{"nested tool_call tool_name", `{"type": "tool_call", "data": {"tool_name": "run_helm", "args": {}, "command": "helm ls"}}`,
			[]Event{ToolCall{Tool: "run_helm", Command: "helm ls"}}},
		{"nested tool_result summary", `{"type": "tool_result", "data": {"summary": "3 pods", "ok": true, "tool": "run_kubectl"}}`,
			[]Event{ToolResult{Tool: "run_kubectl", Output: "3 pods"}}},
		{"nested hitl typed names", `{"type": "hitl_request", "data": {"action": "kubectl scale", "risk": "medium", "diff": "x: 1", "approval_id": "a1"}}`,
			[]Event{HitlRequest{ApprovalID: "a1", Action: "kubectl scale", Risk: "medium", YAML: "x: 1"}}},
		{"nested hitl wire names", `{"type": "hitl_request", "data": {"command": "kubectl scale", "risk_level": "medium", "stdin_yaml": "x: 1", "action_id": "a1"}}`,
			[]Event{HitlRequest{ApprovalID: "a1", Action: "kubectl scale", Risk: "medium", YAML: "x: 1"}}},
		{"nested error message", `{"type": "error", "data": {"code": "c", "message": "m", "retryable": true}}`,
			[]Event{Error{Message: "m"}}},
		{"nested final with usage", `{"type": "final", "data": {"content": "", "usage": {"total_tokens": 9}, "elapsed_ms": 3}}`,
			[]Event{Usage{TotalTokens: 9}, Final{}}},
		{"OpenAI-style error object", `{"type": "error", "error": {"message": "quota", "type": "insufficient_quota"}}`,
			[]Event{Error{Message: "quota"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, o := decodeOne(t, tc.frame)
			require.Equal(t, frameKnown, o)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestHitlChunkAnyFinishReason(t *testing.T) {
	for _, finish := range []string{"null", `"stop"`, `"length"`} {
		frame := `{"choices": [{"index": 0, "delta": {"content": "prompt", "role": "assistant"}, "finish_reason": ` + finish +
			`, "hitl_required": true, "action_id": "a", "risk_level": "medium", "human_summary": "kubectl scale deploy/x --replicas=2"}]}`
		got, o := decodeOne(t, frame)
		require.Equal(t, frameKnown, o)
		require.Equal(t, []Event{
			Token{Content: "prompt"},
			HitlRequest{ApprovalID: "a", Action: "kubectl scale deploy/x --replicas=2", Risk: "medium", Prompt: "prompt"},
		}, got, "finish_reason %s", finish)
	}
}

func TestFrameOutcomes(t *testing.T) {
	for frame, want := range map[string]outcome{
		"[DONE]":                           frameDone,
		" [DONE] ":                         frameDone,
		"":                                 frameBad,
		"not json":                         frameBad,
		"42":                               frameBad,
		`["a"]`:                            frameBad,
		`{"a": `:                           frameBad,
		`{"type": "tool_call", "tool": 5}`: frameBad, // wrong type of a known key
		`{}`:                               frameUnknown,
		`{"type": "thinking"}`:             frameUnknown,
		`{"ki_event": {"type": "new_thing"}, "choices": []}`:                frameUnknown,
		`{"object": "chat.completion.chunk", "choices": []}`:                frameKnown,
		`{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}`: frameKnown,
		`{"type": "replay_meta", "records": 3, "durable": false}`:           frameKnown,
		`{"type": "status", "phase": "x", "brand_new_key": [1, {"a": 2}]}`:  frameKnown,
	} {
		_, o := decodeOne(t, frame)
		require.Equal(t, want, o, "frame %q", frame)
	}
}

// A gateway in front of the backend reports a failed stream the OpenAI
// way; the message must reach the caller, not be counted as unknown.
func TestOpenAIStyleStreamError(t *testing.T) {
	got, o := decodeOne(t, `{"error": {"message": "upstream timed out", "type": "server_error", "code": 504}}`)
	require.Equal(t, frameKnown, o)
	require.Equal(t, []Event{Error{Message: "upstream timed out", Fatal: true}}, got)
	got, o = decodeOne(t, `{"error": "bad gateway"}`)
	require.Equal(t, frameKnown, o)
	require.Equal(t, []Event{Error{Message: "bad gateway", Fatal: true}}, got)
}

func TestUsageNextToContent(t *testing.T) {
	got, _ := decodeOne(t, `{"choices": [{"index": 0, "delta": {"content": "x"}}], "usage": {"total_tokens": 3}}`)
	require.Equal(t, []Event{Token{Content: "x"}, Usage{TotalTokens: 3}}, got)
}

func TestPromptYAML(t *testing.T) {
	withYAML := "\n\n---\n\U0001F7E1 **Approval Required** \u2014 risk level: `MEDIUM`\n\n**Command:**\n```\nkubectl apply -f -\n```\n" +
		"\n**YAML to apply:**\n```yaml\n%s\n```\n\n**Type `yes` or `/approve` to proceed, or `no` / `/deny` to cancel.**"
	cases := map[string]struct{ prompt, want string }{
		"none":      {"**Command:**\n```\nkubectl delete pod x\n```\n", ""},
		"simple":    {fmt.Sprintf(withYAML, "a: 1\nb: 2"), "a: 1\nb: 2"},
		"truncated": {fmt.Sprintf(withYAML, "a: 1\n... [truncated]"), "a: 1\n... [truncated]"},
		"fence in yaml": {fmt.Sprintf(withYAML, "script: |\n  ```\n  echo hi\n  ```"),
			"script: |\n  ```\n  echo hi\n  ```"},
		"marker only":  {"**YAML to apply:**", ""},
		"open fence":   {"**YAML to apply:**\n```yaml", ""},
		"never closed": {"**YAML to apply:**\n```yaml\na: 1\n", "a: 1"},
	}
	for name, tc := range cases {
		require.Equal(t, tc.want, promptYAML(tc.prompt), name)
	}
}
