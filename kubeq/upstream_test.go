package kubeq

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The samples in the repository's top-level testdata/ were written by
// KubeIntellect's own team (testdata/SOURCES.md names each one's repository,
// path and commit): the frames of its API reference, the SSE fixtures of
// kube-q's tests, and the wire samples of the ki-protocol package. Each is
// read here as the kube-q SDK reads it: the same events with the same
// fields, the expected values taken from the SDK tests' own assertions. Where
// this parser differs on purpose, the case says why (and SOURCES.md too).

func upstream(t *testing.T, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", rel))
	require.NoError(t, err)
	return data
}

const doneFrame = "data: [DONE]\n\n"

// sample is one upstream stream and what the parser must make of it.
type sample struct {
	name        string
	data        []byte
	events      []Event // without End
	dropped     int
	unknown     int
	interrupted bool // no [DONE]: the turn is cut, not complete
}

func (s sample) check(t *testing.T) {
	t.Helper()
	want := golden{Outcome: "done", Dropped: s.dropped, Unknown: s.unknown, Events: []map[string]any{}}
	for _, e := range s.events {
		want.Events = append(want.Events, record(t, e))
	}
	if s.interrupted {
		want.Outcome = "interrupted"
	} else {
		want.Events = append(want.Events, record(t, End{Conversation: "golden", DroppedFrames: s.dropped, UnknownFrames: s.unknown}))
	}
	got := parseGolden(t, bytes.NewReader(s.data))
	require.Equal(t, normalise(t, want), normalise(t, got), "parsed")
	require.Equal(t, normalise(t, want), normalise(t, streamGolden(t, s.data)), "through Stream")
}

// The API reference's sample frames (v4/docs/api-reference.md). Its code
// blocks list frames one per line; the server ends each with a blank line,
// so each line is framed that way. A sample without [DONE] is followed by
// one, since a turn without it is cut off.
func TestUpstreamAPIReferenceFrames(t *testing.T) {
	hitl := upstream(t, "api-reference/hitl_choice.json")
	var compact bytes.Buffer
	require.NoError(t, json.Compact(&compact, hitl))
	prompt := "…approval prompt as markdown…"
	for _, s := range []sample{
		{name: "handshake", data: upstream(t, "api-reference/handshake.sse"),
			events: []Event{Handshake{ProtocolVersion: "1.0", SessionID: "<sid>"}}},
		{name: "answer token", data: upstream(t, "api-reference/answer_token.sse"),
			events: []Event{Token{Content: "The "}}},
		{name: "ki_event tool_call", data: upstream(t, "api-reference/ki_event_tool_call.sse"),
			events: []Event{ToolCall{Tool: "run_kubectl", Command: "kubectl get pods -n prod", Message: "Running: kubectl get pods -n prod"}}},
		// The JSON block of "Approval request (HITL)", as one frame.
		{name: "hitl choice", data: []byte("data: " + compact.String() + "\n\n"),
			events: []Event{Token{Content: prompt}, HitlRequest{ApprovalID: "…", Action: "kubectl scale deployment/web --replicas=5 -n prod", Risk: "medium", Prompt: prompt}}},
		// {"…", ...} elides the chunk's fields and is not JSON: kube-q's
		// iter_sse skips it (and counts it in SseStats), as this parser does.
		{name: "completion", data: upstream(t, "api-reference/completion.sse"), dropped: 1},
		// kube-q skips comment lines; this parser reports them so the idle
		// timer can tell a live backend from a silent one.
		{name: "heartbeat", data: upstream(t, "api-reference/heartbeat.sse"), events: []Event{Heartbeat{}}},
		{name: "events replay_meta", data: upstream(t, "api-reference/events_replay_meta.sse")},
		{name: "episodes replay_meta", data: upstream(t, "api-reference/episodes_replay_meta.sse")},
	} {
		t.Run(s.name, func(t *testing.T) {
			if !bytes.Contains(s.data, []byte(doneFrame)) {
				s.data = append(s.data, doneFrame...)
			}
			s.check(t)
		})
	}
}

// kube-q's SSE fixtures (tests/core/), with what its tests assert.
func TestUpstreamKubeQFixtures(t *testing.T) {
	hi, more := Token{Content: "hi"}, Token{Content: " more"}
	for _, s := range []sample{
		// test_a_break_must_not_erase_the_loss.py: a full drain yields 3
		// events; stats.dropped_frames == 1.
		{name: "break lossy", data: upstream(t, "kube-q/break_lossy.sse"), events: []Event{hi, Final{}, more}, dropped: 1},
		// CLEAN: lossless.
		{name: "break clean", data: upstream(t, "kube-q/break_clean.sse"), events: []Event{hi, Final{}, more}},
		// TRUNCATED ends mid-frame: stats.truncated_tail.
		{name: "break truncated", data: upstream(t, "kube-q/break_truncated.sse"), events: []Event{hi, Final{}}, interrupted: true},
		// test_client_replay.py test_stream_yields_token_events: two
		// TokenEvents, "Hello" and " world"; the stop chunk yields nothing.
		{name: "replay tokens", data: upstream(t, "kube-q/replay_tokens.sse"),
			events: []Event{Token{Content: "Hello"}, Token{Content: " world"}}},
		// test_stream_ki_event_sequence: Status, ToolCall, ToolResult, Token
		// and Final, from ki_event payloads in the typed-view ("data") shape.
		{name: "replay ki_event sequence", data: upstream(t, "kube-q/replay_ki_event_sequence.sse"), events: []Event{
			Status{Message: "Routing..."},
			ToolCall{Tool: "k8s.get_pods"},
			ToolResult{Output: "3 pods"},
			Token{Content: "Found 3 pods."},
			Final{}, // its content "Done" and elapsed_ms: not carried (the server never sends them; the answer is the tokens)
		}},
		// test_stream_usage_event: one UsageEvent, total_tokens 15, from a
		// top-level usage frame after the stop chunk.
		{name: "replay usage", data: upstream(t, "kube-q/replay_usage.sse"),
			events: []Event{Token{Content: "ok"}, Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}}},
		// test_stream_empty: no events.
		{name: "replay empty", data: upstream(t, "kube-q/replay_empty.sse")},
		// test_an_empty_async_stream_is_not_an_answer.py: the SDK ends this
		// stream cleanly with its one event. Here only [DONE] ends a turn
		// (DESIGN invariant 3): without it the turn is interrupted.
		{name: "ok without done", data: upstream(t, "kube-q/async_ok_without_done.sse"),
			events: []Event{Token{Content: "ok"}}, interrupted: true},
	} {
		t.Run(s.name, func(t *testing.T) { s.check(t) })
	}
}

// dictCase is one dict that the SDK hands to parse_event, and the events it
// must give here.
type dictCase struct {
	events  []Event
	unknown bool // parse_event returns None: a frame of no known kind
}

// asKIEvent frames raw the way the SDK meets it on the live stream,
// {"ki_event": raw}, followed by [DONE].
func asKIEvent(t *testing.T, raw json.RawMessage) []byte {
	t.Helper()
	frame, err := json.Marshal(map[string]json.RawMessage{"ki_event": raw})
	require.NoError(t, err)
	return []byte("data: " + string(frame) + "\n\n" + doneFrame)
}

// asRecord frames raw as a record of the replay stream (one line, as
// json.dumps writes it), followed by [DONE].
func asRecord(t *testing.T, raw json.RawMessage) []byte {
	t.Helper()
	var line bytes.Buffer
	require.NoError(t, json.Compact(&line, raw))
	return []byte("data: " + line.String() + "\n\n" + doneFrame)
}

func (c dictCase) sample(name string, data []byte) sample {
	s := sample{name: name, data: data, events: c.events}
	if c.unknown {
		s.unknown = 1
	}
	return s
}

// kube-q tests/core/test_events.py: every dict it gives parse_event, inside
// ki_event as the SDK's stream reader passes it on.
func TestUpstreamParseEventInputs(t *testing.T) {
	var inputs []struct {
		Test string          `json:"test"`
		Raw  json.RawMessage `json:"raw"`
	}
	require.NoError(t, json.Unmarshal(upstream(t, "kube-q/parse_event_inputs.json"), &inputs))
	want := map[string]dictCase{
		"test_status_event_full":     {events: []Event{Status{Phase: "routing", Message: "Routing to agent"}}},
		"test_status_event_defaults": {events: []Event{Status{}}},
		"test_token_event":           {events: []Event{Token{Content: "hello world"}}},
		"test_token_event_with_role": {events: []Event{Token{Content: "x"}}}, // role: not carried, every answer token is the assistant's
		// args, call_id, dry_run: not carried (the server never sends them).
		"test_tool_call_event":          {events: []Event{ToolCall{Tool: "k8s.get_pods"}}},
		"test_tool_call_event_defaults": {events: []Event{ToolCall{Tool: "k8s.list"}}},
		// ok, truncated: not carried (the server's tool_result has no flag).
		"test_tool_result_event":  {events: []Event{ToolResult{Output: "Error: not found"}}},
		"test_hitl_request_event": {events: []Event{HitlRequest{ApprovalID: "appr-123", Action: "delete pod", Risk: "high", YAML: "- pod/api-7f..."}}},
		"test_usage_event":        {events: []Event{Usage{PromptTokens: 120, CompletionTokens: 340, TotalTokens: 460}}},
		"test_final_event":        {events: []Event{Final{}}}, // content, elapsed_ms: not carried
		// FinalEvent.data.usage.total_tokens == 30: the usage comes first.
		"test_final_event_with_usage": {events: []Event{Usage{PromptTokens: 10, CompletionTokens: 20, TotalTokens: 30}, Final{}}},
		// code, retryable: not carried; a recoverable error is not fatal.
		"test_error_event":                      {events: []Event{Error{Message: "upstream timed out"}}},
		"test_legacy_status_no_data_wrapper":    {events: []Event{Status{Phase: "thinking", Message: "Analyzing..."}}},
		"test_legacy_tool_call_no_data_wrapper": {events: []Event{ToolCall{Tool: "k8s.describe"}}},
		"test_unknown_type_returns_none":        {unknown: true},
		"test_empty_dict_returns_none":          {unknown: true},
		// None in the SDK (content is required); here a token without text
		// yields nothing either, counted as a known frame.
		"test_missing_required_field_token_returns_none": {},
		// Envelope ids are not carried: the conversation is the turn's own.
		"test_envelope_fields": {events: []Event{Status{}}},
	}
	require.Len(t, inputs, len(want), "every test_events.py input has an expectation")
	for _, in := range inputs {
		c, ok := want[in.Test]
		require.True(t, ok, in.Test)
		t.Run(in.Test, func(t *testing.T) { c.sample(in.Test, asKIEvent(t, in.Raw)).check(t) })
	}
}

// The ki-protocol wire samples (the SAMPLES of kube-q's
// test_the_wire_has_two_halves.py, as wire.py's model_dump writes them), on
// the live side channel and as replay records, and the seam test's alias
// cases.
func TestUpstreamKIProtocolWireSamples(t *testing.T) {
	var file struct {
		Wire []struct {
			Sample string          `json:"sample"`
			Raw    json.RawMessage `json:"raw"`
		} `json:"wire"`
		Aliases []struct {
			Test string          `json:"test"`
			Raw  json.RawMessage `json:"raw"`
		} `json:"aliases"`
	}
	require.NoError(t, json.Unmarshal(upstream(t, "ki-protocol/wire_samples.json"), &file))
	wire := map[string]dictCase{
		"status":      {events: []Event{Status{Phase: "snapshot", Message: "Fetching cluster snapshot…"}}},
		"tool_call":   {events: []Event{ToolCall{Tool: "run_kubectl", Command: "kubectl get pods -A"}}},
		"tool_result": {events: []Event{ToolResult{Tool: "run_kubectl", Output: "NAME   READY\nweb    1/1"}}},
		"token":       {events: []Event{Token{Content: "hello"}}},
		"final":       {events: []Event{Final{}}},
		"hitl_request": {events: []Event{HitlRequest{ApprovalID: "6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f",
			Action: "kubectl delete pod x", Risk: "high"}}},
		"plan":                  {events: []Event{Plan{Steps: []PlanStep{{Description: "check pods", Status: "pending"}}}}},
		"error":                 {events: []Event{Error{Message: "boom"}}},
		"tool_call_non_kubectl": {events: []Event{ToolCall{Tool: "query_loki"}}},
	}
	require.Len(t, file.Wire, len(wire))
	for _, w := range file.Wire {
		c, ok := wire[w.Sample]
		require.True(t, ok, w.Sample)
		t.Run(w.Sample+"/ki_event", func(t *testing.T) { c.sample(w.Sample, asKIEvent(t, w.Raw)).check(t) })
		t.Run(w.Sample+"/replay", func(t *testing.T) { c.sample(w.Sample, asRecord(t, w.Raw)).check(t) })
	}
	aliases := map[string]dictCase{
		"test_a_client_shaped_payload_is_untouched":  {events: []Event{ToolResult{Output: "already client-shaped"}}},
		"test_an_alias_only_fills_an_empty_field":    {events: []Event{Error{Message: "kept"}}},
		"test_an_event_with_no_aliases_is_unchanged": {events: []Event{Status{Phase: "p", Message: "m"}}},
		"test_an_unknown_type_is_still_none":         {unknown: true},
		"test_a_non_dict_data_does_not_raise":        {unknown: true},
		"test_an_empty_plan_is_valid":                {events: []Event{Plan{}}},
	}
	require.Len(t, file.Aliases, len(aliases))
	for _, a := range file.Aliases {
		c, ok := aliases[a.Test]
		require.True(t, ok, a.Test)
		t.Run(a.Test+"/ki_event", func(t *testing.T) { c.sample(a.Test, asKIEvent(t, a.Raw)).check(t) })
		t.Run(a.Test+"/replay", func(t *testing.T) { c.sample(a.Test, asRecord(t, a.Raw)).check(t) })
	}
}

// Every upstream file is checked by a test above and named in SOURCES.md.
func TestUpstreamSamplesAreAllSourced(t *testing.T) {
	sources := string(upstream(t, "SOURCES.md"))
	var files []string
	for _, dir := range []string{"api-reference", "kube-q", "ki-protocol"} {
		entries, err := os.ReadDir(filepath.Join("..", "testdata", dir))
		require.NoError(t, err)
		for _, e := range entries {
			files = append(files, dir+"/"+e.Name())
		}
	}
	require.GreaterOrEqual(t, len(files), 18)
	for _, f := range files {
		require.Truef(t, strings.Contains(sources, "`"+f+"`"), "testdata/SOURCES.md does not name %s", f)
	}
}
