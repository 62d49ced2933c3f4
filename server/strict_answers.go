package server

import (
	"bytes"
	"encoding/json"

	"github.com/kubeq-mcp/kubeq-mcp/approval"
)

// disambiguate makes a client's JSON-RPC response that has the same member
// twice in one object (`{"decision":"deny","decision":"approve"}`)
// unmistakably invalid before mcp-go decodes it: a decoder keeps only one
// of the two, and which one must not decide an approval. The answer is
// replaced by an accepted form with no valid field, which approval.Judge
// denies. Anything else passes unchanged.
func disambiguate(msg []byte) []byte {
	if !isJSONRPCResponse(msg) || !approval.HasDuplicateMembers(msg) {
		return msg
	}
	var m struct {
		ID json.RawMessage `json:"id"`
	}
	_ = json.Unmarshal(msg, &m) // isJSONRPCResponse decoded it already
	out, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0", "id": m.ID,
		"result": map[string]any{"action": "accept", "content": map[string]any{"kubeq-mcp": "ambiguous answer refused"}},
	})
	if bytes.HasSuffix(msg, []byte("\n")) {
		out = append(out, '\n')
	}
	return out
}
