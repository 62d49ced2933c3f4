package kubeq

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Only agent work after a turn's final means the gate was answered. A usage
// record (or an error record, which may be bookkeeping of the same turn)
// after final must not hide a gate that is still pending.
func TestReplayGateStateAfterFinal(t *testing.T) {
	const (
		gate  = `data: {"type": "hitl_request", "action_id": "a", "risk_level": "high", "command": "kubectl delete pod x", "stdin_yaml": null, "session_id": "s", "ts": 1.0}` + "\n\n"
		final = `data: {"type": "final", "session_id": "s", "ts": 2.0}` + "\n\n"
		usage = `data: {"type": "usage", "prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2, "llm_calls": 1, "session_id": "s", "ts": 2.1}` + "\n\n"
		done  = "data: [DONE]\n\n"
	)
	for name, tc := range map[string]struct {
		history string
		want    GateState
	}{
		"usage after final":        {gate + final + usage + done, GatePending},
		"nested usage after final": {gate + final + `data: {"type": "usage", "data": {"usage": {"total_tokens": 2}}}` + "\n\n" + done, GatePending},
		"error after final":        {gate + final + `data: {"type": "error", "error": "x", "session_id": "s", "ts": 2.2}` + "\n\n" + done, GatePending},
		"heartbeat after final":    {gate + final + ": heartbeat\n\n" + done, GatePending},
		"usage, no gate":           {final + usage + done, GateNone},
		"usage only":               {usage + done, GateUnknown},
		"status after final":       {gate + final + `data: {"type": "status", "phase": "analyzing", "message": "m"}` + "\n\n" + done, GateNone},
		"tool result after final":  {gate + final + `data: {"type": "tool_result", "tool": "run_kubectl", "output": "deleted"}` + "\n\n" + usage + done, GateNone},
		"token after final":        {gate + final + `data: {"type": "token", "content": "hi"}` + "\n\n" + done, GateNone},
		"new gate being written":   {gate + final + strings.Replace(gate, `"a"`, `"b"`, 1) + usage + done, GatePending},
	} {
		got, _, err := replayGateState(strings.NewReader(tc.history))
		require.NoError(t, err, name)
		require.Equal(t, tc.want, got, name)
	}
}
