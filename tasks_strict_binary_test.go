package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// The Tasks extension against messages a decoder could read two ways, bad
// parameter types, the HTTP headers of the 2026 era, and calls that only
// look like task calls; on the built binary.

const (
	approveWeb5JSON = `{"action":"accept","content":{"decision":"approve","confirm":"web-5"}}`
	declineJSON     = `{"action":"decline"}`
)

func (c *taskClient) metaJSON() string {
	b, err := json.Marshal(c.meta())
	require.NoError(c.t, err)
	return string(b)
}

// rpcAnswer decodes a JSON-RPC answer written by the server.
func rpcAnswer(t *testing.T, raw []byte) (id json.RawMessage, result map[string]any, e *rpcErr) {
	t.Helper()
	var m struct {
		ID     json.RawMessage `json:"id"`
		Result map[string]any  `json:"result"`
		Error  *rpcErr         `json:"error"`
	}
	require.NoError(t, json.Unmarshal(raw, &m), string(raw))
	return m.ID, m.Result, m.Error
}

// gateTask starts a task that waits at web-5's gate and returns its id and
// the form's key.
func gateTask(t *testing.T, transport string) (*kubeqtest.Server, *taskClient, string, string) {
	t.Helper()
	backend := kubeqtest.NewServer()
	t.Cleanup(backend.Close)
	backend.Handle("clean up web-5", binScript(podGate("web-5", "")))
	b := startBinaryWith(t, transport, backend, "--approval-timeout", "60s", "--approval-browser", "none")
	c := newTaskClient(t, b, true)
	id := created(t, c.callQuery(map[string]any{"question": "clean up web-5"}))
	task, _ := c.poll(id, 30*time.Second, func(task map[string]any) bool { return task["status"] == "input_required" })
	require.Equal(t, "input_required", task["status"], task)
	reqs := task["inputRequests"].(map[string]any)
	require.Len(t, reqs, 1)
	for k := range reqs {
		return backend, c, id, k
	}
	return nil, nil, "", ""
}

// A key repeated in tasks/update's inputResponses is an ambiguous answer:
// whichever of its values a decoder keeps (Go's, the last: an approve), it
// is judged a denial. inputResponses given twice in params, in another
// letter case (Go's decoder merges the two), is refused as mcp-go refuses
// it on its own methods, and the form stays open.
func TestBinaryTaskUpdateRepeatedKeyDenies(t *testing.T) {
	bothTransports(t, func(t *testing.T, transport string) {
		backend, c, id, key := gateTask(t, transport)

		folded := fmt.Sprintf(`{"jsonrpc":"2.0","id":901,"method":"tasks/update","params":{"_meta":%s,"taskId":%q,`+
			`"inputResponses":{%q:%s},"InputResponses":{%q:%s}}}`, c.metaJSON(), id, key, declineJSON, key, approveWeb5JSON)
		raw, status := c.send("tasks/update", id, 901, []byte(folded))
		require.NotNil(t, raw, "answered")
		_, _, e := rpcAnswer(t, raw)
		require.NotNil(t, e, string(raw))
		assert.Equal(t, -32600, e.Code, e.Message)
		if transport == "http" {
			assert.Equal(t, http.StatusBadRequest, status)
		}
		again, e := c.request("tasks/get", map[string]any{"taskId": id})
		require.Nil(t, e)
		assert.Equal(t, "input_required", again["status"], "the form is still open")
		assert.Empty(t, backend.Decisions())

		repeated := fmt.Sprintf(`{"jsonrpc":"2.0","id":902,"method":"tasks/update","params":{"_meta":%s,"taskId":%q,`+
			`"inputResponses":{%q:%s,%q:%s}}}`, c.metaJSON(), id, key, declineJSON, key, approveWeb5JSON)
		raw, _ = c.send("tasks/update", id, 902, []byte(repeated))
		require.NotNil(t, raw, "answered")
		_, _, e = rpcAnswer(t, raw)
		require.Nil(t, e, string(raw))
		task, _ := c.poll(id, 30*time.Second, nil)
		require.Equal(t, "completed", task["status"], task)
		d := backend.Decisions()
		require.Len(t, d, 1)
		assert.False(t, d[0].Approved, "an ambiguous answer never approves")
		assert.Contains(t, structured(t, task["result"].(map[string]any))["answer"], "Did not run web-5.")
	})
}

// The same in a 2026-era multi-round-trip retry: mcp-go decodes
// inputResponses into a map, which keeps the last of a repeated key.
func TestBinaryRetryRepeatedKeyDenies(t *testing.T) {
	bothTransports(t, func(t *testing.T, transport string) {
		backend := kubeqtest.NewServer()
		t.Cleanup(backend.Close)
		backend.Handle("clean up web-5", binScript(podGate("web-5", "")))
		b := startBinaryWith(t, transport, backend, "--approval-timeout", "60s", "--approval-browser", "none")
		c := newTaskClient(t, b, false)
		res := c.callQuery(map[string]any{"question": "clean up web-5"})
		require.Equal(t, "input_required", res["resultType"], res)
		state, _ := res["requestState"].(string)
		require.NotEmpty(t, state)
		reqs := res["inputRequests"].(map[string]any)
		require.Len(t, reqs, 1)
		var key string
		for k := range reqs {
			key = k
		}
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":903,"method":"tools/call","params":{"_meta":%s,"name":"kube_query",`+
			`"arguments":{"question":"clean up web-5"},"requestState":%q,"inputResponses":{%q:%s,%q:%s}}}`,
			c.metaJSON(), state, key, declineJSON, key, approveWeb5JSON)
		raw, _ := c.send("tools/call", "kube_query", 903, []byte(body))
		require.NotNil(t, raw, "answered")
		_, result, e := rpcAnswer(t, raw)
		require.Nil(t, e, string(raw))
		d := backend.Decisions()
		require.Len(t, d, 1)
		assert.False(t, d[0].Approved, "an ambiguous answer never approves")
		assert.Contains(t, structured(t, result)["answer"], "Did not run web-5.")
	})
}

// tasks/* with parameters of the wrong type are answered -32602 with the
// request's id (over stdio an answer with id null matches no request and
// the client waits forever).
func TestBinaryTaskBadParamTypes(t *testing.T) {
	bothTransports(t, func(t *testing.T, transport string) {
		backend := liveBackend(t, "quick", []string{"done."}, 0)
		b := startBinaryWith(t, transport, backend)
		c := newTaskClient(t, b, true)
		for i, p := range []string{`"taskId":123`, `"taskId":"x","inputResponses":[1]`, `"taskId":["x"]`, `"taskId":"x","inputResponses":"no"`} {
			id := 910 + i
			body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tasks/update","params":{"_meta":%s,%s}}`, id, c.metaJSON(), p)
			raw, status := c.send("tasks/update", "x", id, []byte(body))
			require.NotNil(t, raw, "%s: no answer with the request's id", p)
			gotID, _, e := rpcAnswer(t, raw)
			assert.Equal(t, fmt.Sprint(id), string(gotID), p)
			require.NotNil(t, e, p)
			assert.Equal(t, -32602, e.Code, "%s: %s", p, e.Message)
			if transport == "http" {
				assert.Equal(t, http.StatusBadRequest, status, p)
			}
		}
		// The process still answers.
		id := created(t, c.callQuery(map[string]any{"question": "quick"}))
		task, _ := c.poll(id, 30*time.Second, nil)
		assert.Equal(t, "completed", task["status"])
	})
}

// Over HTTP, tasks/* are held to the 2026 era's headers as mcp-go holds its
// own methods (-32020, HTTP 400): Mcp-Protocol-Version present and equal
// to the body's, Mcp-Method equal to the method, Mcp-Name equal to the
// taskId. Errors have the HTTP status of their code.
func TestBinaryTaskHTTPHeaders(t *testing.T) {
	backend := liveBackend(t, "quick", []string{"done."}, 0)
	b := startBinaryWith(t, "http", backend)
	c := newTaskClient(t, b, true)
	id := created(t, c.callQuery(map[string]any{"question": "quick"}))
	body := []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":920,"method":"tasks/get","params":{"_meta":%s,"taskId":%q}}`, c.metaJSON(), id))
	for _, tc := range []struct {
		name string
		edit func(http.Header)
	}{
		{"Mcp-Method of another method", func(h http.Header) { h.Set("Mcp-Method", "tools/list") }},
		{"no Mcp-Method", func(h http.Header) { h.Del("Mcp-Method") }},
		{"Mcp-Name of another task", func(h http.Header) { h.Set("Mcp-Name", strings.Repeat("0", 32)) }},
		{"no Mcp-Name", func(h http.Header) { h.Del("Mcp-Name") }},
		{"no Mcp-Protocol-Version", func(h http.Header) { h.Del("Mcp-Protocol-Version") }},
		{"Mcp-Protocol-Version not the body's", func(h http.Header) { h.Set("Mcp-Protocol-Version", "2025-11-25") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, status := c.postRaw("tasks/get", id, body, 920, tc.edit)
			assert.Equal(t, http.StatusBadRequest, status, string(raw))
			gotID, res, e := rpcAnswer(t, raw)
			require.NotNil(t, e, "refused, not answered: %v", res)
			assert.Equal(t, -32020, e.Code, e.Message)
			assert.Equal(t, "920", string(gotID))
		})
	}
	// The Mcp-Name of the right task, base64-encoded as the header rules allow.
	raw, status := c.postRaw("tasks/get", id, body, 920, func(h http.Header) {
		h.Set("Mcp-Name", "=?base64?"+base64.StdEncoding.EncodeToString([]byte(id))+"?=")
	})
	assert.Equal(t, http.StatusOK, status, string(raw))

	for _, tc := range []struct {
		method string
		params map[string]any
		code   int
		status int
		client *taskClient
	}{
		{"tasks/get", map[string]any{"taskId": strings.Repeat("0", 32)}, -32602, http.StatusBadRequest, c},
		{"tasks/list", map[string]any{}, -32601, http.StatusNotFound, c},
		{"tasks/get", map[string]any{"taskId": id}, -32021, http.StatusBadRequest, newTaskClient(t, b, false)},
	} {
		tc.params["_meta"] = tc.client.meta()
		body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 921, "method": tc.method, "params": tc.params})
		require.NoError(t, err)
		name, _ := tc.params["taskId"].(string)
		raw, status := c.postRaw(tc.method, name, body, 921, nil)
		_, _, e := rpcAnswer(t, raw)
		require.NotNil(t, e, string(raw))
		assert.Equal(t, tc.code, e.Code)
		assert.Equal(t, tc.status, status, "%s: %s", tc.method, raw)
	}
}

// A 2026-era tools/call carrying a 2025-11-25 task param gets no mcp-go
// task: such a task belongs to no session, so every 2025 session could list
// it and read its result. It is served as a normal call, or as the
// extension's task when it declares the extension.
func TestBinaryModernCallWithLegacyTaskParam(t *testing.T) {
	bothTransports(t, func(t *testing.T, transport string) {
		backend := liveBackend(t, "secret question", []string{"secret answer"}, 0)
		b := startBinaryWith(t, transport, backend)
		modern := newTaskClient(t, b, false)
		res, e := modern.request("tools/call", map[string]any{"name": "kube_query",
			"arguments": map[string]any{"question": "secret question"}, "task": map[string]any{"ttl": 60000}})
		require.Nil(t, e)
		assert.NotContains(t, res, "task", "no 2025-11-25 task")
		assert.Equal(t, "secret answer", structured(t, res)["answer"])

		declaring := newTaskClient(t, b, true)
		res, e = declaring.request("tools/call", map[string]any{"name": "kube_query",
			"arguments": map[string]any{"question": "secret question"}, "task": map[string]any{"ttl": 60000}})
		require.Nil(t, e)
		id := created(t, res)
		task, _ := declaring.poll(id, 30*time.Second, nil)
		assert.Equal(t, "completed", task["status"])

		if transport == "http" {
			other := newLegacyTaskClient(t, b)
			list, e := other.request("tasks/list", nil)
			require.Nil(t, e)
			assert.Empty(t, list["tasks"], "another session lists nothing")
		}
	})
}

// A declaring client's call served without a task (past --max-detached)
// streams its progress as it comes, event by event, before the result:
// nothing is held back to look for a task handle. The backend holds the
// turn until the test has read the first progress event.
func TestBinaryTaskDeclaringCallStreamsProgress(t *testing.T) {
	backend := liveBackend(t, "slow one", []string{"first. ", "never sent"}, time.Minute)
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	backend.Handle("held", kubeqtest.Script{kubeqtest.Status("investigating", "first step"),
		kubeqtest.WaitFor(release), kubeqtest.Tokens("done.")})
	b := startBinaryWith(t, "http", backend, "--max-detached", "1")
	c := newTaskClient(t, b, true)
	created(t, c.callQuery(map[string]any{"question": "slow one"}))

	meta := c.meta()
	meta["progressToken"] = "held-1"
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 930, "method": "tools/call",
		"params": map[string]any{"name": "kube_query", "arguments": map[string]any{"question": "held"}, "_meta": meta}})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, b.endpoint, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", "tools/call")
	req.Header.Set("Mcp-Name", "kube_query")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Headers held back too would hold Do: it runs beside the wait below.
	events := make(chan string, 64)
	go func() {
		defer close(events)
		resp, err := http.DefaultClient.Do(req.WithContext(ctx))
		if err != nil {
			events <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			events <- fmt.Sprintf("error: status %d, %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			return
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				events <- data
			}
		}
	}()
	var first string
	select {
	case first = <-events:
	case <-time.After(30 * time.Second):
		t.Fatal("no event while the backend holds the turn: the stream is held back")
	}
	assert.Contains(t, first, `"notifications/progress"`, "the first event is progress, before the result")
	assert.Contains(t, first, "first step")
	once.Do(func() { close(release) })
	var last string
	for ev := range events {
		last = ev
		if strings.Contains(ev, `"id":930`) {
			break
		}
	}
	_, result, e := rpcAnswer(t, []byte(last))
	require.Nil(t, e, last)
	assert.NotEqual(t, "task", result["resultType"], "served without a task")
	assert.Equal(t, "done.", structured(t, result)["answer"])
}

// A 2025-era call whose question names the extension is a plain call: its
// approval form reaches the human while the call waits.
func TestBinaryLegacyFormMentioningTheExtension(t *testing.T) {
	q := "clean up web-5 (" + tasksExt + ")"
	backend := kubeqtest.NewServer()
	t.Cleanup(backend.Close)
	backend.Handle(q, binScript(podGate("web-5", "")))
	// Held back, the form would be denied when this runs out.
	b := startBinaryWith(t, "http", backend, "--approval-timeout", "20s", "--approval-browser", "none")
	var forms atomic.Int32
	cs := b.connect("2025-11-25", &sdk.ClientOptions{
		ElicitationHandler: func(context.Context, *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
			forms.Add(1)
			return &sdk.ElicitResult{Action: "accept", Content: map[string]any{"decision": "approve", "confirm": "web-5"}}, nil
		}})
	res, err := binQuery(cs, map[string]any{"question": q})
	require.NoError(t, err)
	assert.Equal(t, int32(1), forms.Load())
	d := backend.Decisions()
	require.Len(t, d, 1)
	assert.True(t, d[0].Approved, "the human's approval arrived: %s", textContent(res))
	assert.Contains(t, textContent(res), "Ran web-5.")
}
