package kubeq

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
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
	rest, ok := cutEnvelope(data)
	if !ok {
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
	if s, ok := unescape(inner); ok {
		return s, true
	}
	var s string
	if json.Unmarshal(lit, &s) != nil { // not one string after all
		return "", false
	}
	return s, true
}

// cutEnvelope cuts the start every chunk of the server's shares (id,
// object, created, model) and returns what follows the model's closing
// quote.
func cutEnvelope(data []byte) ([]byte, bool) {
	rest, ok := bytes.CutPrefix(data, fastHead)
	if !ok {
		return nil, false
	}
	if rest, ok = skipPlain(rest); !ok {
		return nil, false
	}
	if rest, ok = bytes.CutPrefix(rest, fastObject); !ok {
		return nil, false
	}
	if rest, ok = skipInt(rest); !ok {
		return nil, false
	}
	if rest, ok = bytes.CutPrefix(rest, fastModel); !ok {
		return nil, false
	}
	return skipPlain(rest)
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

// The server's other frequent frames are the progress events of a turn
// (status, tool_call, tool_result), in the same chunk with the event
// under "ki_event" (chat_completions.py _make_ki_chunk):
//
//	{"id": "<id>", "object": "chat.completion.chunk", "created": <int>, "model": "<model>",
//	 "ki_event": {"type": "status", "phase": "<p>", "message": "<m>"}, "choices": []}
//
// fastKIEvent reads exactly that shape, with a payload of string members
// only, named as the wire names them, and of one of those three types.
// Anything else goes to the general decoder, and
// FuzzFastTokenMatchesDecoder holds the two to the same answer.

var (
	fastKIEvent = []byte(`", "ki_event": {`)
	fastKITail  = []byte(`}, "choices": []}`)
	fastSep     = []byte(`, `)
	fastColon   = []byte(`": `)
)

// fastProgress appends the event of a standard progress ki_event chunk.
func fastProgress(data []byte, evs []Event) ([]Event, bool) {
	rest, ok := cutEnvelope(data)
	if !ok {
		return evs, false
	}
	if rest, ok = bytes.CutPrefix(rest, fastKIEvent); !ok {
		return evs, false
	}
	body, ok := bytes.CutSuffix(rest, fastKITail)
	if !ok || len(body) == 0 {
		return evs, false
	}
	var p wirePayload
	for i := 0; len(body) > 0; i++ {
		if i > 0 {
			if body, ok = bytes.CutPrefix(body, fastSep); !ok {
				return evs, false
			}
		}
		if len(body) == 0 || body[0] != '"' {
			return evs, false
		}
		end := bytes.IndexByte(body[1:], '"') + 1
		if end == 0 || !plain(body[1:end]) {
			return evs, false
		}
		key := body[1:end]
		if body, ok = bytes.CutPrefix(body[end:], fastColon); !ok {
			return evs, false
		}
		if n, rest, isInt := fastInt(body); isInt {
			// Only the usage counts are numbers.
			body = rest
			switch string(key) {
			case "prompt_tokens":
				p.PromptTokens = n
			case "completion_tokens":
				p.CompletionTokens = n
			case "total_tokens":
				p.TotalTokens = n
			case "llm_calls":
				p.LLMCalls = n
			default:
				return evs, false
			}
			continue
		}
		var v string
		if v, body, ok = fastString(body); !ok {
			return evs, false
		}
		// Last one wins, as in encoding/json.
		switch string(key) {
		case "type":
			p.Type = v
		case "phase":
			p.Phase = v
		case "message":
			p.Message = v
		case "tool":
			p.Tool = v
		case "tool_name":
			p.ToolName = v
		case "command":
			p.Command = v
		case "output":
			p.Output = v
		case "summary":
			p.Summary = v
		default:
			return evs, false
		}
	}
	switch p.Type {
	case "status", "tool_call", "tool_result", "usage":
		return payloadEvents(&p, evs)
	}
	return evs, false
}

// fastInt reads a JSON non-negative integer of at most 18 digits (no
// sign, fraction or exponent) at the start of b, and what follows it.
func fastInt(b []byte) (int, []byte, bool) {
	rest, ok := skipInt(b)
	if !ok || len(b)-len(rest) > 18 {
		return 0, nil, false
	}
	n := 0
	for _, c := range b[:len(b)-len(rest)] {
		n = n*10 + int(c-'0')
	}
	return n, rest, true
}

// The chunk that ends the answer (finish_reason "stop") carries no event,
// and the handshake that starts a stream is one of fixed shape:
//
//	{..., "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
//	{"protocol_version": "<v>", "object": "stream.start", "session_id": "<id>"}

var (
	fastStopTail       = []byte(`", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}`)
	fastHandshakeHead  = []byte(`{"protocol_version": "`)
	fastHandshakeMid   = []byte(`", "object": "stream.start", "session_id": "`)
	fastHandshakeClose = []byte(`"}`)
)

// fastOther appends the events of a standard stop chunk (none) or
// handshake.
func fastOther(data []byte, evs []Event) ([]Event, bool) {
	if rest, ok := bytes.CutPrefix(data, fastHandshakeHead); ok {
		i := bytes.IndexByte(rest, '"')
		if i < 0 || !plain(rest[:i]) {
			return evs, false
		}
		version := rest[:i]
		if rest, ok = bytes.CutPrefix(rest[i:], fastHandshakeMid); !ok {
			return evs, false
		}
		id, ok := bytes.CutSuffix(rest, fastHandshakeClose)
		if !ok || !plain(id) {
			return evs, false
		}
		return append(evs, Handshake{ProtocolVersion: string(version), SessionID: string(id)}), true
	}
	rest, ok := cutEnvelope(data)
	if !ok {
		return evs, false
	}
	return evs, bytes.Equal(rest, fastStopTail)
}

// fastString reads the JSON string literal at the start of b: its value
// and what follows it.
func fastString(b []byte) (string, []byte, bool) {
	if len(b) == 0 || b[0] != '"' {
		return "", nil, false
	}
	escaped := false
	for i := 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			escaped = true
			i++
		case '"':
			lit, rest := b[:i+1], b[i+1:]
			if !escaped && plain(lit[1:i]) {
				return string(lit[1:i]), rest, true
			}
			if s, ok := unescape(lit[1:i]); ok {
				return s, rest, true
			}
			var s string
			if json.Unmarshal(lit, &s) != nil {
				return "", nil, false
			}
			return s, rest, true
		}
	}
	return "", nil, false
}

// unescape decodes the content of a JSON string literal as encoding/json
// does, for the escapes and text a backend sends: \" \\ \/ \b \f \n \r
// \t, \u escapes outside the surrogates, and valid UTF-8. Anything else
// (a surrogate escape, bytes that are not UTF-8, a bare quote or control
// character) reports false and is left to encoding/json, whose rules for
// those it would otherwise have to copy.
func unescape(b []byte) (string, bool) {
	var out strings.Builder
	out.Grow(len(b))
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == '\\':
			if i+1 >= len(b) {
				return "", false
			}
			switch e := b[i+1]; e {
			case '"', '\\', '/':
				out.WriteByte(e)
			case 'b':
				out.WriteByte('\b')
			case 'f':
				out.WriteByte('\f')
			case 'n':
				out.WriteByte('\n')
			case 'r':
				out.WriteByte('\r')
			case 't':
				out.WriteByte('\t')
			case 'u':
				r, ok := hex4(b[i+2:])
				if !ok || utf16.IsSurrogate(r) {
					return "", false
				}
				out.WriteRune(r)
				i += 6
				continue
			default:
				return "", false
			}
			i += 2
		case c == '"' || c < 0x20:
			return "", false
		case c < utf8.RuneSelf:
			out.WriteByte(c)
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return "", false
			}
			out.Write(b[i : i+size])
			i += size
		}
	}
	return out.String(), true
}

// hex4 reads the four hex digits of a \u escape.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
