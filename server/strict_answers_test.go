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

// A 2026-era retry whose inputResponses names a key twice reaches mcp-go
// with that key's answer one that approval.Judge denies; the rest of the
// message keeps its bytes. A repeated inputResponses member is left as it
// is: mcp-go refuses that message itself.
func TestDisambiguateRepeatedInputResponse(t *testing.T) {
	head := `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"kube_query","requestState":"s t","inputResponses":`
	dup := []byte(head + `{"approval":{"action":"decline"}, "approv\u0061l":{"action":"accept","content":{"decision":"approve"}},"other":{"action":"decline"}}}}` + "\n")
	out := disambiguate(dup)
	require.NotEqual(t, dup, out)
	assert.Equal(t, head, string(out[:len(head)]), "the rest is unchanged")
	assert.Equal(t, "}}\n", string(out[len(out)-3:]))
	var m struct {
		Params struct {
			InputResponses map[string]json.RawMessage `json:"inputResponses"`
		} `json:"params"`
	}
	require.NoError(t, json.Unmarshal(out, &m))
	assert.JSONEq(t, `{"action":"decline"}`, string(m.Params.InputResponses["other"]))
	var a struct {
		Action  string          `json:"action"`
		Content json.RawMessage `json:"content"`
	}
	require.NoError(t, json.Unmarshal(m.Params.InputResponses["approval"], &a))
	gate := approval.Gate{ApprovalID: "a", Action: "kubectl scale deployment web", Risk: "medium"}
	assert.False(t, approval.Judge(gate, approval.Answer{Action: a.Action, Content: a.Content}).Approves(gate))

	for _, same := range [][]byte{
		[]byte(head + `{"approval":{"action":"accept","content":{"decision":"approve"}}}}}`),
		[]byte(head + `{"approval":{"action":"decline"}},"inputResponses":{"approval":{"action":"decline"}}}}`),
	} {
		assert.Equal(t, same, disambiguate(same))
	}
}
