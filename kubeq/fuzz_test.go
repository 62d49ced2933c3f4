package kubeq

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

type parsed struct {
	st  turnStats
	evs []Event
	err error
}

func parse(r io.Reader) parsed {
	var p parsed
	p.st, p.err = readTurn(r, End{Conversation: "fuzz"}, func(e Event) bool {
		p.evs = append(p.evs, e)
		return true
	})
	return p
}

// FuzzParseSSE checks the parser's invariants on arbitrary input:
// no panic; at most maxEventsPerFrame events per frame; skipped frames
// never outnumber frames; End comes once, last, and only with [DONE]; EOF
// without it is io.ErrUnexpectedEOF; read sizes change nothing; and a
// [DONE] frame appended to any input always ends the turn.
func FuzzParseSSE(f *testing.F) {
	for _, file := range sseFiles(f) {
		data, err := os.ReadFile(file)
		require.NoError(f, err)
		f.Add(data)
	}
	f.Add([]byte("data: [DONE]\r\r"))
	f.Add([]byte(": heartbeat\r\n\r\ndata: {\"type\": \"token\", \"content\": \"x\"}\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := parse(bytes.NewReader(data))
		checkInvariants(t, p)

		one := parse(iotest.OneByteReader(bytes.NewReader(data)))
		require.Equal(t, p, one, "one-byte reads must not change the result")

		closed := parse(bytes.NewReader(append(bytes.Clone(data), "\n\ndata: [DONE]\n\n"...)))
		checkInvariants(t, closed)
		require.NoError(t, closed.err, "an appended [DONE] must end the turn")
		if p.st.Done {
			require.Equal(t, p, closed, "nothing after [DONE] is read")
		}
	})
}

func checkInvariants(t *testing.T, p parsed) {
	t.Helper()
	st := p.st
	require.LessOrEqual(t, len(p.evs), maxEventsPerFrame*st.Frames)
	require.Equal(t, len(p.evs), st.Events)
	require.LessOrEqual(t, st.Dropped+st.Unknown, st.Frames)
	ends := 0
	for i, e := range p.evs {
		if end, ok := e.(End); ok {
			ends++
			require.Equal(t, len(p.evs)-1, i, "End is last")
			require.Equal(t, st.Dropped, end.DroppedFrames)
			require.Equal(t, st.Unknown, end.UnknownFrames)
		}
	}
	require.LessOrEqual(t, ends, 1)
	require.Equal(t, st.Done, ends == 1)
	if st.Done {
		require.NoError(t, p.err)
	} else {
		require.True(t, errors.Is(p.err, io.ErrUnexpectedEOF), "err = %v", p.err)
	}
}

// FuzzFastTokenMatchesDecoder: whenever a fast path (a token, a progress
// or usage ki_event, a stop chunk, a handshake) accepts a frame, the
// general decoder reads the same frame as exactly the same events.
func FuzzFastTokenMatchesDecoder(f *testing.F) {
	for _, file := range sseFiles(f) {
		data, err := os.ReadFile(file)
		require.NoError(f, err)
		for _, line := range bytes.Split(data, []byte("\n")) {
			if payload, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
				f.Add(payload)
			}
		}
	}
	f.Add([]byte(`{"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": [{"index": 0, "delta": {"content": "a\"b\\u00e9\ud83d\udd34", "role": "assistant"}, "finish_reason": null}]}`))
	f.Add([]byte(`{"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "ki_event": {"type": "tool_call", "tool": "run_kubectl", "message": "Running: kubectl get pods \"a\"\u2026", "type": "tool_result", "output": "x\ny"}, "choices": []}`))
	f.Add([]byte(`{"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "ki_event": {"type": "usage", "prompt_tokens": 1200, "completion_tokens": 80, "total_tokens": 1280, "llm_calls": 1}, "choices": []}`))
	f.Add([]byte(`{"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}`))
	f.Add([]byte(`{"protocol_version": "1.0", "object": "stream.start", "session_id": "a7a191e0-3680"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast, general decoder
		fe, fo := fast.decodeFrame(data, nil, true)
		ge, gOut := general.decodeFrame(data, nil, false)
		require.Equal(t, gOut, fo)
		require.Equal(t, ge, fe)
	})
}

// FuzzUnescapeMatchesJSON: whatever string content unescape decodes,
// encoding/json decodes the same literal to the same text.
func FuzzUnescapeMatchesJSON(f *testing.F) {
	for _, s := range []string{`a\"b\\c\/d`, `tab\there\nnewline\r\b\f`, `\u00e9\u2026\u0041`, `caf\u00E9 ✓ 🔴`,
		`\ud83d\udd34`, `\ud83d`, "bad \xff utf8", `ctl` + "\x01", `\'`, `\u12`, `bare " quote`, "\x7f del"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := unescape(b)
		if !ok {
			return
		}
		var want string
		lit := append(append([]byte{'"'}, b...), '"')
		require.NoError(t, json.Unmarshal(lit, &want), "unescape accepted %q", b)
		require.Equal(t, want, got)
	})
}
