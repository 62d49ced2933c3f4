package server

import (
	"bytes"
	"encoding/json"

	"github.com/kubeq-mcp/kubeq-mcp/approval"
)

// disambiguate makes a client's message whose answer could be read two
// ways unmistakably invalid before mcp-go decodes it: a decoder keeps only
// one of two members of the same name, and which one must not decide an
// approval. Two shapes:
//   - a JSON-RPC response (a 2025-era form's answer) with the same member
//     twice in one object (`{"decision":"deny","decision":"approve"}`): the
//     answer is replaced by an accepted form with no valid field;
//   - a request whose params.inputResponses (a 2026-era retry) names a key
//     twice: that key's answer is replaced by the same.
//
// approval.Judge denies both. Anything else passes unchanged.
func disambiguate(msg []byte) []byte {
	if !isJSONRPCResponse(msg) {
		return disambiguateRetry(msg)
	}
	if !approval.HasDuplicateMembers(msg) {
		return msg
	}
	var m struct {
		ID json.RawMessage `json:"id"`
	}
	_ = json.Unmarshal(msg, &m) // isJSONRPCResponse decoded it already
	out, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": m.ID, "result": ambiguousAnswer})
	if bytes.HasSuffix(msg, []byte("\n")) {
		out = append(out, '\n')
	}
	return out
}

// disambiguateRetry replaces, in a request's params.inputResponses, the
// answer of every key given twice by ambiguousAnswer; the rest of the
// message keeps its bytes. A repeated or misspelt params or inputResponses
// member is left to mcp-go, which refuses the message.
func disambiguateRetry(msg []byte) []byte {
	if !mayMention(msg, "inputresponses") { // lower case: any case matches
		return msg
	}
	ps, pe, ok := memberSpan(msg, "params")
	if !ok {
		return msg
	}
	is, ie, ok := memberSpan(msg[ps:pe], "inputResponses")
	if !ok {
		return msg
	}
	is, ie = ps+is, ps+ie
	answers, repeated, err := inputResponsesOf(msg[is:ie])
	if err != nil || !repeated {
		return msg
	}
	fixed, err := json.Marshal(answers)
	if err != nil {
		return msg
	}
	out := make([]byte, 0, len(msg)-(ie-is)+len(fixed))
	out = append(out, msg[:is]...)
	out = append(out, fixed...)
	return append(out, msg[ie:]...)
}

// memberSpan finds where the value of member name is in obj, a JSON
// object: ok is false when obj is not one, or has name never or twice.
func memberSpan(obj []byte, name string) (start, end int, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return 0, 0, false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return 0, 0, false
		}
		var v json.RawMessage // the value's own bytes
		if err := dec.Decode(&v); err != nil {
			return 0, 0, false
		}
		if tok != name {
			continue
		}
		if ok {
			return 0, 0, false
		}
		end = int(dec.InputOffset())
		start, ok = end-len(v), true
	}
	return start, end, ok
}
