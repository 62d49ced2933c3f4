package kubeq

import (
	"bytes"
	"encoding/json"
)

// Almost every frame of a long turn is an answer-token chunk, which the
// server writes in one fixed shape (chat_completions.py _make_chunk):
//
//	{"id": "<id>", "object": "chat.completion.chunk", "created": <int>, "model": "<model>",
//	 "choices": [{"index": 0, "delta": {"content": "<text>", "role": "assistant"}, "finish_reason": null}]}
//
// fastToken recognises exactly that shape without reflection. Anything else,
// down to one different space, goes to the general decoder, and
// FuzzFastTokenMatchesDecoder holds the two to the same answer.

var (
	fastHead   = []byte(`{"id": "`)
	fastObject = []byte(`", "object": "chat.completion.chunk", "created": `)
	fastModel  = []byte(`, "model": "`)
	fastDelta  = []byte(`", "choices": [{"index": 0, "delta": {"content": `)
	fastTail   = []byte(`, "role": "assistant"}, "finish_reason": null}]}`)
)

// fastToken returns the content of a standard token chunk.
func fastToken(data []byte) (string, bool) {
	rest, ok := bytes.CutPrefix(data, fastHead)
	if !ok {
		return "", false
	}
	if rest, ok = skipPlain(rest); !ok {
		return "", false
	}
	if rest, ok = bytes.CutPrefix(rest, fastObject); !ok {
		return "", false
	}
	if rest, ok = skipInt(rest); !ok {
		return "", false
	}
	if rest, ok = bytes.CutPrefix(rest, fastModel); !ok {
		return "", false
	}
	if rest, ok = skipPlain(rest); !ok {
		return "", false
	}
	if rest, ok = bytes.CutPrefix(rest, fastDelta); !ok {
		return "", false
	}
	lit, ok := bytes.CutSuffix(rest, fastTail)
	if !ok || len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return "", false
	}
	inner := lit[1 : len(lit)-1]
	if plain(inner) {
		return string(inner), true
	}
	var s string
	if json.Unmarshal(lit, &s) != nil { // escapes, or not one string after all
		return "", false
	}
	return s, true
}

// skipPlain skips string content up to its closing quote (left in place),
// accepting only bytes that need no decoding.
func skipPlain(b []byte) ([]byte, bool) {
	i := bytes.IndexByte(b, '"')
	if i < 0 || !plain(b[:i]) {
		return nil, false
	}
	return b[i:], true
}

// plain: printable ASCII without quote or backslash, taken as is.
func plain(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// skipInt skips a JSON non-negative integer (no leading zeros).
func skipInt(b []byte) ([]byte, bool) {
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	if n == 0 || (b[0] == '0' && n > 1) {
		return nil, false
	}
	return b[n:], true
}
