package kubeqtest_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// TestFakeFramesCarryTheUpstreamKeys compares the fake's frames with the
// sample frames of KubeIntellect's API reference (testdata/api-reference):
// every key a sample shows, at every level, the fake's frame of the same
// kind carries too, with the same constant values. The fake sends more
// keys than the samples show ("id" and "created" on every chunk,
// "finish_reason": null on content and HITL chunks): the samples
// abbreviate, and the fake follows the server's _make_chunk and
// _make_ki_event_chunk (chat_completions.py), which add them; SOURCES.md
// records this.
func TestFakeFramesCarryTheUpstreamKeys(t *testing.T) {
	srv := kubeqtest.NewServer()
	t.Cleanup(srv.Close)
	srv.Handle("why is web down?", kubeqtest.Script{
		kubeqtest.ToolCall("run_kubectl", "kubectl get pods -n prod"),
		kubeqtest.Tokens("The "),
	})
	srv.Handle("scale web", kubeqtest.Script{kubeqtest.Gate{Command: "kubectl scale deployment/web --replicas=5 -n prod"}})
	fake := append(frames(t, srv, "why is web down?"), frames(t, srv, "scale web")...)

	kind := func(f map[string]any) string {
		switch {
		case f["object"] == "stream.start":
			return "handshake"
		case f["ki_event"] != nil:
			return "ki_event:" + f["ki_event"].(map[string]any)["type"].(string)
		}
		choices, _ := f["choices"].([]any)
		if len(choices) == 0 {
			return "other"
		}
		c := choices[0].(map[string]any)
		switch {
		case c["hitl_required"] == true:
			return "hitl"
		case c["finish_reason"] == "stop":
			return "stop"
		default:
			return "content"
		}
	}
	byKind := map[string]map[string]any{}
	for _, f := range fake {
		if _, seen := byKind[kind(f)]; !seen {
			byKind[kind(f)] = f
		}
	}

	hitl := readUpstream(t, "api-reference/hitl_choice.json")
	for name, sampleJSON := range map[string][]byte{
		"handshake":          dataOf(t, readUpstream(t, "api-reference/handshake.sse")),
		"content":            dataOf(t, readUpstream(t, "api-reference/answer_token.sse")),
		"ki_event:tool_call": dataOf(t, readUpstream(t, "api-reference/ki_event_tool_call.sse")),
		"hitl":               hitl,
	} {
		t.Run(name, func(t *testing.T) {
			var sample map[string]any
			require.NoError(t, json.Unmarshal(sampleJSON, &sample))
			got, ok := byKind[name]
			require.Truef(t, ok, "the fake sent no %s frame", name)
			assert.Empty(t, missingKeys("", sample, got), "keys of the upstream sample the fake's frame lacks:\nsample %v\nfake   %v", sample, got)
		})
	}
	// Constant values the samples show.
	assert.Equal(t, "1.0", byKind["handshake"]["protocol_version"])
	for _, k := range []string{"content", "ki_event:tool_call", "hitl", "stop"} {
		assert.Equal(t, "chat.completion.chunk", byKind[k]["object"], k)
		assert.Equal(t, "kubeintellect", byKind[k]["model"], k)
	}
	assert.Equal(t, []any{}, byKind["ki_event:tool_call"]["choices"], "a ki_event chunk has an empty choices array")
	assert.Equal(t, "Running: kubectl get pods -n prod", byKind["ki_event:tool_call"]["ki_event"].(map[string]any)["message"])
	choice := byKind["hitl"]["choices"].([]any)[0].(map[string]any)
	assert.Equal(t, "medium", choice["risk_level"], "scale is a medium-risk verb, as in the sample")
	assert.Equal(t, "kubectl scale deployment/web --replicas=5 -n prod", choice["human_summary"])
	assert.Equal(t, "assistant", choice["delta"].(map[string]any)["role"])
	stop := byKind["stop"]["choices"].([]any)[0].(map[string]any)
	assert.Equal(t, map[string]any{}, stop["delta"], "the completion sample's stop chunk has an empty delta")
}

// missingKeys lists the key paths of want that got lacks, descending into
// objects and the first element of arrays of objects.
func missingKeys(prefix string, want, got map[string]any) []string {
	var out []string
	for k, wv := range want {
		gv, ok := got[k]
		if !ok {
			out = append(out, prefix+k)
			continue
		}
		switch w := wv.(type) {
		case map[string]any:
			if g, ok := gv.(map[string]any); ok {
				out = append(out, missingKeys(prefix+k+".", w, g)...)
			} else {
				out = append(out, prefix+k+" (not an object)")
			}
		case []any:
			g, ok := gv.([]any)
			if len(w) > 0 && ok && len(g) > 0 {
				wm, wok := w[0].(map[string]any)
				gm, gok := g[0].(map[string]any)
				if wok && gok {
					out = append(out, missingKeys(prefix+k+"[0].", wm, gm)...)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// frames posts question to the fake and returns the JSON of each data frame.
func frames(t *testing.T, srv *kubeqtest.Server, question string) []map[string]any {
	t.Helper()
	body, err := json.Marshal(map[string]any{"messages": []any{map[string]any{"role": "user", "content": question}}, "stream": true})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("X-Session-ID", "upstream-"+strings.ReplaceAll(question, " ", "-"))
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out []map[string]any
	for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var f map[string]any
		require.NoError(t, json.Unmarshal([]byte(data), &f), data)
		out = append(out, f)
	}
	return out
}

func readUpstream(t *testing.T, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", rel))
	require.NoError(t, err)
	return data
}

// dataOf returns the payload of a one-frame SSE sample.
func dataOf(t *testing.T, sse []byte) []byte {
	t.Helper()
	line, ok := bytes.CutPrefix(bytes.TrimSpace(sse), []byte("data: "))
	require.True(t, ok, "%s", sse)
	return line
}

// TestFakeReplayRecordsHaveTheWireShape compares the fake's replay history
// (GET /v1/events/replay/{id}) with the ki-protocol wire samples
// (testdata/ki-protocol): each record type has exactly the keys, in the
// order, that wire.py's model_dump() writes.
func TestFakeReplayRecordsHaveTheWireShape(t *testing.T) {
	srv := kubeqtest.NewServer()
	t.Cleanup(srv.Close)
	srv.Handle("check web", kubeqtest.Script{
		kubeqtest.Status("snapshot", "Fetching cluster snapshot…"),
		kubeqtest.Plan(kubeqtest.PlanStep{Description: "check pods", Status: "pending"}),
		kubeqtest.ToolCall("run_kubectl", "kubectl get pods -A"),
		kubeqtest.ToolResult("run_kubectl", "NAME   READY\nweb    1/1"),
		kubeqtest.MidTurnError("boom"),
		kubeqtest.Tokens("hello"),
		kubeqtest.Gate{Command: "kubectl delete pod x"},
	})
	session := "upstream-check-web"
	frames(t, srv, "check web")
	resp, err := srv.Client().Get(srv.URL + "/v1/events/replay/" + session)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	got := map[string][]string{}
	for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		keys := orderedKeys(t, []byte(data))
		var typ struct{ Type string }
		require.NoError(t, json.Unmarshal([]byte(data), &typ))
		if _, seen := got[typ.Type]; !seen {
			got[typ.Type] = keys
		}
	}

	var file struct {
		Wire []struct {
			Sample string          `json:"sample"`
			Raw    json.RawMessage `json:"raw"`
		} `json:"wire"`
	}
	require.NoError(t, json.Unmarshal(readUpstream(t, "ki-protocol/wire_samples.json"), &file))
	checked := 0
	for _, w := range file.Wire {
		var typ struct{ Type string }
		require.NoError(t, json.Unmarshal(w.Raw, &typ))
		fake, ok := got[typ.Type]
		if !ok {
			continue // final ends a turn that is not at a gate; tool_call_non_kubectl repeats tool_call
		}
		assert.Equal(t, orderedKeys(t, w.Raw), fake, "%s record", w.Sample)
		checked++
	}
	assert.GreaterOrEqual(t, checked, 7, "records compared: %v", got)
}

// orderedKeys lists an object's top-level keys in the order written.
func orderedKeys(t *testing.T, raw []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	require.NoError(t, err)
	require.Equal(t, json.Delim('{'), tok)
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		require.NoError(t, err)
		keys = append(keys, k.(string))
		var skip json.RawMessage
		require.NoError(t, dec.Decode(&skip))
	}
	return keys
}
