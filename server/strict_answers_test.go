package server

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/approval"
)

// A form answer with a member named twice reaches mcp-go as an answer that
// approval.Judge denies, whichever copy a decoder would keep; anything else
// passes unchanged.
func TestDisambiguateDuplicateMembers(t *testing.T) {
	dup := []byte(`{"jsonrpc":"2.0","id":7,"result":{"action":"accept","content":{"decision":"deny","decision":"approve","confirm":"web-1"}}}` + "\n")
	out := disambiguate(dup)
	require.NotEqual(t, dup, out)
	assert.Equal(t, byte('\n'), out[len(out)-1], "one line stays one line")
	var m struct {
		ID     json.RawMessage `json:"id"`
		Result struct {
			Action  string          `json:"action"`
			Content json.RawMessage `json:"content"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal(out, &m))
	assert.Equal(t, "7", string(m.ID), "the answer still answers its request")
	gate := approval.Gate{ApprovalID: "a", Action: "kubectl delete pod web-1", Risk: "high", Confirm: "web-1"}
	v := approval.Judge(gate, approval.Answer{Action: m.Result.Action, Content: m.Result.Content})
	assert.False(t, v.Approves(gate))

	for _, same := range [][]byte{
		[]byte(`{"jsonrpc":"2.0","id":7,"result":{"action":"accept","content":{"decision":"approve","confirm":"web-1"}}}`),
		[]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"a":1,"a":2}}`), // a request, not an answer
		[]byte(`not json`),
	} {
		assert.Equal(t, same, disambiguate(same))
	}
}
