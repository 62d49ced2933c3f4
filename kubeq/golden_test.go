package kubeq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/internal/testskip"
)

// The golden files hold, for each testdata/*.sse stream, the typed events it
// must produce and how it ends. Regenerate with UPDATE_GOLDEN=1, then read
// the diff: a golden is a claim about the protocol, not a snapshot.

type golden struct {
	Outcome string           `json:"outcome"` // "done" or "interrupted"
	Dropped int              `json:"dropped"`
	Unknown int              `json:"unknown"`
	Events  []map[string]any `json:"events"`
}

// eventType names an event for goldens.
func eventType(e Event) string {
	switch e.(type) {
	case Handshake:
		return "handshake"
	case Status:
		return "status"
	case ToolCall:
		return "tool_call"
	case ToolResult:
		return "tool_result"
	case Token:
		return "token"
	case Plan:
		return "plan"
	case Usage:
		return "usage"
	case HitlRequest:
		return "hitl_request"
	case Error:
		return "error"
	case Heartbeat:
		return "heartbeat"
	case Final:
		return "final"
	case End:
		return "end"
	}
	return "?"
}

// record renders an event as a JSON object with a "type" discriminator.
func record(t testing.TB, e Event) map[string]any {
	if end, ok := e.(End); ok {
		end.RequestID = "" // random per request
		e = end
	}
	raw, err := json.Marshal(e)
	require.NoError(t, err)
	m := map[string]any{}
	require.NoError(t, json.Unmarshal(raw, &m))
	m["type"] = eventType(e)
	return m
}

func sseFiles(t testing.TB) []string {
	files, err := filepath.Glob(filepath.Join("testdata", "*.sse"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	return files
}

func TestGoldenStreams(t *testing.T) {
	for _, file := range sseFiles(t) {
		name := strings.TrimSuffix(filepath.Base(file), ".sse")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			require.NoError(t, err)
			got := parseGolden(t, bytes.NewReader(data))
			// Byte-at-a-time reads must not change anything.
			require.Equal(t, got, parseGolden(t, iotest.OneByteReader(bytes.NewReader(data))), "one-byte reads")

			goldenPath := filepath.Join("testdata", name+".golden.json")
			if os.Getenv("UPDATE_GOLDEN") != "" {
				if testskip.InCI() {
					t.Fatal("CI=true: UPDATE_GOLDEN would rewrite the goldens it checks")
				}
				out, err := json.MarshalIndent(got, "", "  ")
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(goldenPath, append(out, '\n'), 0o644))
			}
			raw, err := os.ReadFile(goldenPath)
			require.NoError(t, err, "missing golden; run UPDATE_GOLDEN=1 go test ./kubeq/ and review it")
			var want golden
			require.NoError(t, json.Unmarshal(raw, &want))
			require.Equal(t, normalise(t, want), normalise(t, got))

			// The same bytes served over HTTP through Stream give the same events.
			require.Equal(t, normalise(t, want), normalise(t, streamGolden(t, data)), "through Stream")
		})
	}
}

func parseGolden(t testing.TB, r io.Reader) golden {
	g := golden{Events: []map[string]any{}}
	st, err := readTurn(r, End{Conversation: "golden"}, func(e Event) bool {
		g.Events = append(g.Events, record(t, e))
		return true
	})
	g.Dropped, g.Unknown, g.Outcome = st.Dropped, st.Unknown, "done"
	if err != nil {
		require.True(t, errors.Is(err, io.ErrUnexpectedEOF), "err = %v", err)
		g.Outcome = "interrupted"
	}
	return g
}

func streamGolden(t *testing.T, data []byte) golden {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		_, _ = w.Write(data)
	}))
	defer srv.Close()
	c, err := New(srv.URL, WithRetryDelays())
	require.NoError(t, err)
	g := golden{Events: []map[string]any{}, Outcome: "done"}
	for ev, err := range c.Stream(context.Background(), Turn{Question: "q", Conversation: "golden"}) {
		if err != nil {
			var ie *InterruptedError
			require.ErrorAs(t, err, &ie)
			g.Outcome, g.Dropped = "interrupted", ie.DroppedFrames
			break
		}
		g.Events = append(g.Events, record(t, ev))
		if end, ok := ev.(End); ok {
			g.Dropped, g.Unknown = end.DroppedFrames, end.UnknownFrames
		}
	}
	if g.Outcome == "interrupted" {
		g.Unknown = -1 // not reported by InterruptedError
	}
	return g
}

// normalise round-trips through JSON so numbers compare alike; an unknown
// count of -1 (not reported) matches anything.
func normalise(t testing.TB, g golden) golden {
	raw, err := json.Marshal(g)
	require.NoError(t, err)
	var out golden
	require.NoError(t, json.Unmarshal(raw, &out))
	if out.Outcome == "interrupted" {
		out.Unknown = -1
	}
	return out
}

// The fast paths take the server's own frames: every token chunk, every
// status, tool_call, tool_result and usage event, stop chunk and handshake
// of the recorded streams (the
// fuzz test holds them to the general decoder's answer; this one makes
// sure they are taken at all).
func TestFastPathsTakeTheServerFrames(t *testing.T) {
	tokens, progress, other := 0, 0, 0
	for _, file := range sseFiles(t) {
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		for _, line := range strings.Split(string(data), "\n") {
			payload, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "data: ")
			// The recorded oddities (a frame split over data: lines, a
			// payload with an object member) are the general decoder's.
			if ok && strings.HasPrefix(payload, `{"protocol_version": "`) {
				evs, taken := fastOther([]byte(payload), nil)
				assert.True(t, taken, "handshake not taken: %s", payload)
				assert.Len(t, evs, 1)
				other++
				continue
			}
			if !ok || !strings.HasPrefix(payload, `{"id": "`) || strings.Contains(payload, `"extra": {`) {
				continue
			}
			switch {
			case strings.HasSuffix(payload, `"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}`):
				evs, ok := fastOther([]byte(payload), nil)
				assert.True(t, ok, "stop chunk not taken: %s", payload)
				assert.Empty(t, evs)
				other++
			case strings.Contains(payload, `"choices": [{"index": 0, "delta": {"content": `) &&
				strings.HasSuffix(payload, `, "role": "assistant"}, "finish_reason": null}]}`):
				_, ok := fastToken([]byte(payload))
				assert.True(t, ok, "token chunk not taken: %s", payload)
				tokens++
			case strings.Contains(payload, `"ki_event": {"type": "usage"`) && !strings.Contains(payload, `"usage": {`) && !strings.Contains(payload, `"ts": `),
				strings.Contains(payload, `"ki_event": {"type": "status"`),
				strings.Contains(payload, `"ki_event": {"type": "tool_call"`),
				strings.Contains(payload, `"ki_event": {"type": "tool_result"`):
				evs, ok := fastProgress([]byte(payload), nil)
				assert.True(t, ok, "progress event not taken: %s", payload)
				assert.Len(t, evs, 1)
				progress++
			}
		}
	}
	assert.Positive(t, tokens)
	assert.Positive(t, progress)
	assert.Positive(t, other)
}
