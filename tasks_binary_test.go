package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// The Tasks extension (io.modelcontextprotocol/tasks, 2026-07-28) on the
// built binary, over both transports, against the fake backend. None of the
// go-sdk v1.8.0, the TypeScript SDK 1.32.2 (2025-11-25 tasks only) or the
// MCP Inspector implement the extension, so taskClient is a JSON-RPC
// client written from the extension's text: per-request capabilities in
// _meta, Mcp-Method and Mcp-Name headers over HTTP, tasks/get polled at
// pollIntervalMs, tasks/update with inputResponses, tasks/cancel.

const tasksExt = "io.modelcontextprotocol/tasks"

type rpcErr struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

type taskClient struct {
	t        *testing.T
	endpoint string // http; else stdio
	declare  bool   // the extension in every request's capabilities
	bearer   string // its Authorization over HTTP, when set
	host     string // its Host header over HTTP, when set (a rebinding page's)

	in      io.Writer
	mu      sync.Mutex
	nextID  int
	pending map[string]chan json.RawMessage

	elicit  string // the result sent to an elicitation/create (stdio); "{}" otherwise
	legacy  bool   // a 2025-11-25 session (initialize first), not 2026 requests
	session string // its Mcp-Session-Id over HTTP
	notes   []json.RawMessage
	asked   []json.RawMessage // the server's requests (stdio)
}

// newLegacyTaskClient opens a 2025-11-25 session that declares the tasks
// capability, as that revision's text says.
func newLegacyTaskClient(t *testing.T, b *binInstance) *taskClient {
	t.Helper()
	c := newTaskClient(t, b, false)
	c.legacy = true
	res, e := c.request("initialize", map[string]any{"protocolVersion": "2025-11-25",
		"clientInfo": map[string]any{"name": "tasks-2025-client", "version": "1"},
		"capabilities": map[string]any{"elicitation": map[string]any{},
			"tasks": map[string]any{"list": map[string]any{}, "cancel": map[string]any{},
				"requests": map[string]any{"elicitation": map[string]any{"create": map[string]any{}}}}}})
	require.Nil(t, e)
	require.Equal(t, "2025-11-25", res["protocolVersion"])
	caps := res["capabilities"].(map[string]any)
	require.Contains(t, caps, "tasks", "the server declares the 2025-11-25 tasks")
	c.notify("notifications/initialized")
	return c
}

func (c *taskClient) notify(method string) {
	body := []byte(`{"jsonrpc":"2.0","method":"` + method + `"}`)
	if c.endpoint == "" {
		c.mu.Lock()
		_, err := c.in.Write(append(body, '\n'))
		c.mu.Unlock()
		require.NoError(c.t, err)
		return
	}
	req, err := http.NewRequest(http.MethodPost, c.endpoint, bytes.NewReader(body))
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", c.session)
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	_ = resp.Body.Close()
}

// notifications returns the notifications of method seen so far (stdio).
func (c *taskClient) notifications(method string) []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return paramsOf(c.notes, method)
}

// requests returns the server's requests of method seen so far (stdio).
func (c *taskClient) requests(method string) []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return paramsOf(c.asked, method)
}

// relatedTaskOf is the task id in params' related-task _meta, "" if none.
func relatedTaskOf(params map[string]any) string {
	meta, _ := params["_meta"].(map[string]any)
	rt, _ := meta["io.modelcontextprotocol/related-task"].(map[string]any)
	id, _ := rt["taskId"].(string)
	return id
}

func paramsOf(msgs []json.RawMessage, method string) []map[string]any {
	var out []map[string]any
	for _, n := range msgs {
		var m struct {
			Method string         `json:"method"`
			Params map[string]any `json:"params"`
		}
		if json.Unmarshal(n, &m) == nil && m.Method == method {
			out = append(out, m.Params)
		}
	}
	return out
}

// newTaskClient connects to b: over stdio it starts its own process (its
// own session).
func newTaskClient(t *testing.T, b *binInstance, declare bool) *taskClient {
	t.Helper()
	c := &taskClient{t: t, endpoint: b.endpoint, declare: declare, pending: map[string]chan json.RawMessage{}}
	if b.transport == "http" {
		return c
	}
	cmd := exec.Command(kubeqMCPBinary(t), b.args...)
	cmd.Stderr = b.stderr
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = in.Close(); _ = cmd.Process.Kill(); _ = cmd.Wait() })
	c.in = in
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			c.deliver(sc.Bytes())
		}
	}()
	return c
}

func (c *taskClient) deliver(line []byte) {
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	if json.Unmarshal(line, &m) != nil {
		return
	}
	if len(m.ID) == 0 {
		c.mu.Lock()
		c.notes = append(c.notes, append(json.RawMessage(nil), line...))
		c.mu.Unlock()
		return
	}
	if m.Method != "" { // a request of the server's (a ping, a form): answer it
		c.mu.Lock()
		c.asked = append(c.asked, append(json.RawMessage(nil), line...))
		result := "{}"
		if m.Method == "elicitation/create" && c.elicit != "" {
			result = c.elicit
		}
		_, _ = fmt.Fprintf(c.in, `{"jsonrpc":"2.0","id":%s,"result":%s}`+"\n", m.ID, result)
		c.mu.Unlock()
		return
	}
	c.mu.Lock()
	ch := c.pending[string(m.ID)]
	delete(c.pending, string(m.ID))
	c.mu.Unlock()
	if ch != nil {
		ch <- append(json.RawMessage(nil), line...)
	}
}

func (c *taskClient) meta() map[string]any {
	if c.legacy {
		return map[string]any{"progressToken": "p1"}
	}
	caps := map[string]any{"elicitation": map[string]any{"form": map[string]any{}}}
	if c.declare {
		caps["extensions"] = map[string]any{tasksExt: map[string]any{}}
	}
	return map[string]any{
		"io.modelcontextprotocol/protocolVersion":    "2026-07-28",
		"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "tasks-spec-client", "version": "1"},
		"io.modelcontextprotocol/clientCapabilities": caps,
	}
}

// request sends one request and returns its result or its error.
func (c *taskClient) request(method string, params map[string]any) (map[string]any, *rpcErr) {
	c.t.Helper()
	if params == nil {
		params = map[string]any{}
	}
	if method != "initialize" {
		params["_meta"] = c.meta()
	}
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	c.mu.Unlock()
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	require.NoError(c.t, err)
	var raw []byte
	if c.endpoint != "" {
		raw = c.post(method, params, body, id)
	} else {
		ch := make(chan json.RawMessage, 1)
		c.mu.Lock()
		c.pending[fmt.Sprint(id)] = ch
		_, err = c.in.Write(append(body, '\n'))
		c.mu.Unlock()
		require.NoError(c.t, err)
		select {
		case raw = <-ch:
		case <-time.After(30 * time.Second):
			c.t.Fatalf("no answer to %s", method)
		}
	}
	var resp struct {
		Result map[string]any `json:"result"`
		Error  *rpcErr        `json:"error"`
	}
	require.NoError(c.t, json.Unmarshal(raw, &resp), string(raw))
	return resp.Result, resp.Error
}

func (c *taskClient) post(method string, params map[string]any, body []byte, id int) []byte {
	name, _ := params["taskId"].(string) // Mcp-Name routes a task's requests to the replica holding it
	if name == "" {
		name, _ = params["name"].(string)
	}
	out, status := c.postRaw(method, name, body, id, nil)
	if status != http.StatusOK {
		// Over HTTP, a 2026-era error has the status its code maps to.
		var e struct {
			Error *rpcErr `json:"error"`
		}
		require.NoError(c.t, json.Unmarshal(out, &e), string(out))
		require.NotNil(c.t, e.Error, "status %d without a JSON-RPC error: %s", status, out)
		require.False(c.t, c.legacy || method == "initialize", "a 2025-era error is HTTP 200: %d %s", status, out)
		require.Equal(c.t, httpStatusOf(e.Error.Code), status, string(out))
	}
	return out
}

// httpStatusOf is the HTTP status of a 2026-era JSON-RPC error, as mcp-go
// v1.6.0 maps it.
func httpStatusOf(code int) int {
	switch code {
	case -32601:
		return http.StatusNotFound
	case -32020, -32021, -32022, -32600, -32602, -32700:
		return http.StatusBadRequest
	}
	return http.StatusOK
}

// postRaw posts body over HTTP with the headers of its era (edit changes
// them) and returns the JSON-RPC message answering id, whether it came as
// JSON or in an event stream, and the HTTP status.
func (c *taskClient) postRaw(method, name string, body []byte, id int, edit func(http.Header)) ([]byte, int) {
	req, err := http.NewRequest(http.MethodPost, c.endpoint, bytes.NewReader(body))
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if c.host != "" {
		req.Host = c.host
	}
	if c.legacy || method == "initialize" {
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		if c.session != "" {
			req.Header.Set("Mcp-Session-Id", c.session)
		}
	} else {
		req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
		req.Header.Set("Mcp-Method", method)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	if name != "" {
		req.Header.Set("Mcp-Name", name)
	}
	if edit != nil {
		edit(req.Header)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	if sid := resp.Header.Get("Mcp-Session-Id"); sid != "" {
		c.session = sid
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return out, resp.StatusCode
	}
	for _, line := range strings.Split(string(out), "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if ok && strings.Contains(data, fmt.Sprintf(`"id":%d`, id)) {
			return []byte(data), resp.StatusCode
		}
	}
	c.t.Fatalf("no response in the event stream: %s", out)
	return nil, 0
}

// send sends body, a request with id written by the test as it is, and
// returns the message answering id (nil when none came within 30 s: over
// stdio an answer without the id never matches) and, over HTTP, the
// status.
func (c *taskClient) send(method, name string, id int, body []byte) ([]byte, int) {
	c.t.Helper()
	if c.endpoint != "" {
		return c.postRaw(method, name, body, id, nil)
	}
	ch := make(chan json.RawMessage, 1)
	c.mu.Lock()
	c.pending[fmt.Sprint(id)] = ch
	_, err := c.in.Write(append(body, '\n'))
	c.mu.Unlock()
	require.NoError(c.t, err)
	select {
	case raw := <-ch:
		return raw, 0
	case <-time.After(30 * time.Second):
		return nil, 0
	}
}

func (c *taskClient) callQuery(args map[string]any) map[string]any {
	c.t.Helper()
	res, e := c.request("tools/call", map[string]any{"name": "kube_query", "arguments": args})
	require.Nil(c.t, e)
	return res
}

// poll polls tasks/get at the task's pollIntervalMs until until says stop
// or the task is terminal; it returns the last task and every statusMessage
// seen while working.
func (c *taskClient) poll(id string, limit time.Duration, until func(map[string]any) bool) (map[string]any, []string) {
	c.t.Helper()
	var msgs []string
	deadline := time.Now().Add(limit)
	for {
		task, e := c.request("tasks/get", map[string]any{"taskId": id})
		require.Nil(c.t, e)
		assert.Equal(c.t, "complete", task["resultType"])
		assert.Equal(c.t, "kubeq-mcp", serverNameOf(task), "tasks/get names the server (_meta serverInfo)")
		if task["status"] == "working" {
			if m, ok := task["statusMessage"].(string); ok {
				msgs = append(msgs, m)
			}
		}
		switch task["status"] {
		case "completed", "failed", "cancelled":
			return task, msgs
		}
		if until != nil && until(task) {
			return task, msgs
		}
		require.True(c.t, time.Now().Before(deadline), "task %s still %v", id, task["status"])
		time.Sleep(time.Duration(task["pollIntervalMs"].(float64)) * time.Millisecond)
	}
}

var taskIDRe = regexp.MustCompile(`^[0-9a-f]{32}$`)

// created checks a CreateTaskResult and returns its task id.
func created(t *testing.T, res map[string]any) string {
	t.Helper()
	require.Equal(t, "task", res["resultType"], res)
	id, _ := res["taskId"].(string)
	require.Regexp(t, taskIDRe, id, "128 random bits")
	assert.Equal(t, "working", res["status"])
	assert.Positive(t, res["ttlMs"])
	assert.Positive(t, res["pollIntervalMs"])
	assert.NotEmpty(t, res["createdAt"])
	assert.NotEmpty(t, res["lastUpdatedAt"])
	assert.NotContains(t, res, "content", "a CreateTaskResult, not a CallToolResult")
	assert.Equal(t, "kubeq-mcp", serverNameOf(res), "the handle names the server (_meta serverInfo)")
	return id
}

// serverNameOf is the name in a result's serverInfo _meta.
func serverNameOf(res map[string]any) string {
	meta, _ := res["_meta"].(map[string]any)
	info, _ := meta["io.modelcontextprotocol/serverInfo"].(map[string]any)
	name, _ := info["name"].(string)
	return name
}

func structured(t *testing.T, res map[string]any) map[string]any {
	t.Helper()
	sc, ok := res["structuredContent"].(map[string]any)
	require.True(t, ok, res)
	return sc
}

func bothTransports(t *testing.T, f func(t *testing.T, transport string)) {
	for _, tr := range []string{"stdio", "http"} {
		t.Run(tr, func(t *testing.T) { t.Parallel(); f(t, tr) })
	}
}

// A ten-second investigation as a task: polled to completed, the latest
// progress line as statusMessage while it works, the whole CallToolResult
// at the end with the answer byte-exact. A client without the capability
// asking the same gets that result directly.
func TestBinaryTaskPolledToCompleted(t *testing.T) {
	bothTransports(t, func(t *testing.T, transport string) {
		pieces := []string{"Pod web-1 is in CrashLoopBackOff.\n", "Its last exit code was 137 ", "(OOMKilled: limit 256Mi).\n", "Raise the limit", " or fix the leak — «ünïcode» kept.\n"}
		backend := liveBackend(t, "why is web-1 crashing?", pieces, 2500*time.Millisecond)
		b := startBinaryWith(t, transport, backend, "--approval-browser", "none")
		c := newTaskClient(t, b, true)

		id := created(t, c.callQuery(map[string]any{"question": "why is web-1 crashing?"}))
		task, msgs := c.poll(id, 60*time.Second, nil)
		require.Equal(t, "completed", task["status"], task)
		assert.Contains(t, msgs, "[investigating] step 3", "statusMessage is the latest progress line")
		res, ok := task["result"].(map[string]any)
		require.True(t, ok)
		assert.NotEqual(t, true, res["isError"])
		out := structured(t, res)
		assert.Equal(t, strings.Join(pieces, ""), out["answer"])
		assert.Equal(t, "complete", out["status"])

		// Polled again: the same outcome, until the TTL.
		again, e := c.request("tasks/get", map[string]any{"taskId": id})
		require.Nil(t, e)
		assert.Equal(t, task["result"], again["result"])

		plain := newTaskClient(t, b, false)
		res2 := plain.callQuery(map[string]any{"question": "why is web-1 crashing?"})
		assert.NotContains(t, res2, "taskId", "no task for a client that did not declare the extension")
		assert.Equal(t, strings.Join(pieces, ""), structured(t, res2)["answer"])
		assert.Equal(t, 2, backend.Received("why is web-1 crashing?"))
	})
}

// An approval inside a task: the form in inputRequests, answered with
// tasks/update. Only an accept that approves with the right confirmation
// approves; a decline, a wrong confirmation denies; a key that is not
// outstanding is ignored.
func TestBinaryTaskApproval(t *testing.T) {
	cases := []struct {
		name     string
		answer   map[string]any
		approved bool
	}{
		{"approve", map[string]any{"action": "accept", "content": map[string]any{"decision": "approve", "confirm": "web-5"}}, true},
		{"decline", map[string]any{"action": "decline"}, false},
		{"wrong confirmation", map[string]any{"action": "accept", "content": map[string]any{"decision": "approve", "confirm": "web-6"}}, false},
	}
	bothTransports(t, func(t *testing.T, transport string) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				backend := kubeqtest.NewServer()
				t.Cleanup(backend.Close)
				backend.Handle("clean up web-5", binScript(podGate("web-5", "")))
				b := startBinaryWith(t, transport, backend, "--approval-timeout", "60s", "--approval-browser", "none")
				c := newTaskClient(t, b, true)

				id := created(t, c.callQuery(map[string]any{"question": "clean up web-5"}))
				task, _ := c.poll(id, 30*time.Second, func(task map[string]any) bool { return task["status"] == "input_required" })
				require.Equal(t, "input_required", task["status"], task)
				reqs, ok := task["inputRequests"].(map[string]any)
				require.True(t, ok)
				require.Len(t, reqs, 1)
				var key string
				for k := range reqs {
					key = k
				}
				form := reqs[key].(map[string]any)
				assert.Equal(t, "elicitation/create", form["method"])
				assert.Contains(t, form["params"].(map[string]any)["message"], "web-5")
				assert.NotContains(t, task, "requestState", "the sealed state stays on the server")

				// A key never issued is ignored: the task still waits.
				_, e := c.request("tasks/update", map[string]any{"taskId": id, "inputResponses": map[string]any{
					"approval-99": map[string]any{"action": "accept", "content": map[string]any{"decision": "approve", "confirm": "web-5"}}}})
				require.Nil(t, e)
				again, e := c.request("tasks/get", map[string]any{"taskId": id})
				require.Nil(t, e)
				assert.Equal(t, "input_required", again["status"])
				assert.Empty(t, backend.Decisions())

				_, e = c.request("tasks/update", map[string]any{"taskId": id, "inputResponses": map[string]any{key: tc.answer}})
				require.Nil(t, e)
				task, _ = c.poll(id, 30*time.Second, nil)
				require.Equal(t, "completed", task["status"], task)
				out := structured(t, task["result"].(map[string]any))
				d := backend.Decisions()
				require.Len(t, d, 1)
				assert.Equal(t, tc.approved, d[0].Approved)
				if tc.approved {
					assert.Contains(t, out["answer"], "Ran web-5.")
				} else {
					assert.Contains(t, out["answer"], "Did not run web-5.")
				}
				// The key was answered: a second answer changes nothing.
				_, e = c.request("tasks/update", map[string]any{"taskId": id, "inputResponses": map[string]any{key: cases[0].answer}})
				require.Nil(t, e)
				assert.Len(t, backend.Decisions(), 1)
			})
		}
	})
}

// tasks/cancel stops the turn and closes its backend request.
func TestBinaryTaskCancel(t *testing.T) {
	bothTransports(t, func(t *testing.T, transport string) {
		backend := liveBackend(t, "slow one", []string{"first. ", "never sent"}, time.Minute)
		b := startBinaryWith(t, transport, backend)
		c := newTaskClient(t, b, true)
		id := created(t, c.callQuery(map[string]any{"question": "slow one"}))
		c.poll(id, 30*time.Second, func(task map[string]any) bool { return task["statusMessage"] != nil })

		res, e := c.request("tasks/cancel", map[string]any{"taskId": id})
		require.Nil(t, e)
		assert.Equal(t, "complete", res["resultType"])
		task, _ := c.poll(id, 30*time.Second, nil)
		assert.Equal(t, "cancelled", task["status"])
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := backend.WaitForDisconnect(ctx, "")
		require.NoError(t, err, "the backend request is closed")
	})
}

// A task still running at its TTL is failed (its turn stopped), then
// deleted.
func TestBinaryTaskTTL(t *testing.T) {
	bothTransports(t, func(t *testing.T, transport string) {
		backend := liveBackend(t, "slow one", []string{"first. ", "never sent"}, time.Minute)
		b := startBinaryWith(t, transport, backend, "--task-ttl", "2s")
		c := newTaskClient(t, b, true)
		res := c.callQuery(map[string]any{"question": "slow one"})
		id := created(t, res)
		assert.Equal(t, float64(2000), res["ttlMs"])
		task, _ := c.poll(id, 30*time.Second, nil)
		require.Equal(t, "failed", task["status"], task)
		assert.Equal(t, "Task has expired", task["error"].(map[string]any)["message"])
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := backend.WaitForDisconnect(ctx, "")
		require.NoError(t, err, "the backend request is closed")
		require.Eventually(t, func() bool {
			_, e := c.request("tasks/get", map[string]any{"taskId": id})
			return e != nil && e.Code == -32602
		}, 30*time.Second, 200*time.Millisecond, "deleted after its grace")
	})
}

// The protocol edges: another client's task id (stdio: another session)
// and an unknown id are not found; tasks/result and tasks/list do not
// exist; a request without the capability is refused with -32021;
// server/discover advertises the extension.
func TestBinaryTaskProtocolEdges(t *testing.T) {
	bothTransports(t, func(t *testing.T, transport string) {
		backend := liveBackend(t, "quick", []string{"done."}, 0)
		b := startBinaryWith(t, transport, backend)
		c := newTaskClient(t, b, true)
		id := created(t, c.callQuery(map[string]any{"question": "quick"}))

		_, e := c.request("tasks/get", map[string]any{"taskId": strings.Repeat("0", 32)})
		require.NotNil(t, e)
		assert.Equal(t, -32602, e.Code)
		for _, m := range []string{"tasks/result", "tasks/list"} {
			_, e := c.request(m, map[string]any{"taskId": id})
			require.NotNil(t, e, m)
			assert.Equal(t, -32601, e.Code, m)
		}
		plain := newTaskClient(t, b, false)
		_, e = plain.request("tasks/get", map[string]any{"taskId": id})
		require.NotNil(t, e)
		assert.Equal(t, -32021, e.Code)
		assert.Contains(t, string(e.Data), tasksExt)

		d, e := c.request("server/discover", nil)
		require.Nil(t, e)
		assert.Contains(t, d["capabilities"].(map[string]any)["extensions"], tasksExt)

		if transport == "stdio" {
			other := newTaskClient(t, b, true)
			_, e = other.request("tasks/get", map[string]any{"taskId": id})
			require.NotNil(t, e)
			assert.Equal(t, -32602, e.Code, "another session's task is not found")
		}
		task, _ := c.poll(id, 30*time.Second, nil)
		assert.Equal(t, "completed", task["status"])
	})
}

// A task stopped while its form is open denies the gate: tasks/cancel
// (and the TTL, the same path) never leaves a change waiting.
func TestBinaryTaskCancelAtAGateDenies(t *testing.T) {
	bothTransports(t, func(t *testing.T, transport string) {
		backend := kubeqtest.NewServer()
		t.Cleanup(backend.Close)
		backend.Handle("clean up web-5", binScript(podGate("web-5", "")))
		b := startBinaryWith(t, transport, backend, "--approval-timeout", "60s", "--approval-browser", "none")
		c := newTaskClient(t, b, true)
		id := created(t, c.callQuery(map[string]any{"question": "clean up web-5"}))
		task, _ := c.poll(id, 30*time.Second, func(task map[string]any) bool { return task["status"] == "input_required" })
		require.Equal(t, "input_required", task["status"])
		_, e := c.request("tasks/cancel", map[string]any{"taskId": id})
		require.Nil(t, e)
		task, _ = c.poll(id, 30*time.Second, nil)
		assert.Equal(t, "cancelled", task["status"])
		require.Eventually(t, func() bool { return len(backend.Decisions()) == 1 }, 10*time.Second, 20*time.Millisecond)
		assert.False(t, backend.Decisions()[0].Approved, "the open gate was denied")
	})
}

// Past --max-detached tasks running, a call is served without a task.
func TestBinaryTaskCap(t *testing.T) {
	bothTransports(t, func(t *testing.T, transport string) {
		backend := liveBackend(t, "slow one", []string{"first. ", "never sent"}, time.Minute)
		backend.Handle("quick", kubeqtest.Script{kubeqtest.Tokens("done.")})
		b := startBinaryWith(t, transport, backend, "--max-detached", "1")
		c := newTaskClient(t, b, true)
		created(t, c.callQuery(map[string]any{"question": "slow one"}))
		res := c.callQuery(map[string]any{"question": "quick"})
		assert.NotContains(t, res, "taskId")
		assert.Equal(t, "done.", structured(t, res)["answer"])
	})
}

// The 2025-11-25 tasks (mcp-go's, for a session that declares them): a
// task param on tools/call, tasks/get, tasks/list, tasks/result blocking
// until the whole result, notifications/tasks/status; the TTL capped at
// --task-ttl.
func TestBinaryLegacyTaskToResult(t *testing.T) {
	bothTransports(t, func(t *testing.T, transport string) {
		pieces := []string{"Pod web-1 is in CrashLoopBackOff.\n", "OOMKilled — «ünïcode» kept.\n"}
		backend := liveBackend(t, "why is web-1 crashing?", pieces, time.Second)
		b := startBinaryWith(t, transport, backend, "--task-ttl", "10m")
		c := newLegacyTaskClient(t, b)

		res, e := c.request("tools/call", map[string]any{"name": "kube_query",
			"arguments": map[string]any{"question": "why is web-1 crashing?"}, "task": map[string]any{"ttl": 36000000}})
		require.Nil(t, e)
		task, ok := res["task"].(map[string]any)
		require.True(t, ok, res)
		id := task["taskId"].(string)
		assert.Equal(t, "working", task["status"])
		assert.Equal(t, float64(600000), task["ttl"], "capped at --task-ttl")

		list, e := c.request("tasks/list", nil)
		require.Nil(t, e)
		assert.Contains(t, fmt.Sprint(list["tasks"]), id)

		got, e := c.request("tasks/result", map[string]any{"taskId": id}) // blocks until the end
		require.Nil(t, e)
		assert.Equal(t, strings.Join(pieces, ""), structured(t, got)["answer"])
		final, e := c.request("tasks/get", map[string]any{"taskId": id})
		require.Nil(t, e)
		assert.Equal(t, "completed", final["status"])
		if transport == "stdio" {
			require.Eventually(t, func() bool {
				for _, n := range c.notifications("notifications/tasks/status") {
					if n["taskId"] == id && n["status"] == "completed" {
						return true
					}
				}
				return false
			}, 5*time.Second, 20*time.Millisecond)
		}
	})
}

// 2025-11-25 tasks run detached like the extension's: at most
// --max-detached at once, the next refused with an error (a client could
// otherwise start them without limit, each held for the task TTL).
func TestBinaryLegacyTasksCapped(t *testing.T) {
	bothTransports(t, func(t *testing.T, transport string) {
		backend := liveBackend(t, "slow one", []string{"first. ", "never sent"}, time.Minute)
		b := startBinaryWith(t, transport, backend, "--max-detached", "2")
		c := newLegacyTaskClient(t, b)
		call := func() (map[string]any, *rpcErr) {
			res, e := c.request("tools/call", map[string]any{"name": "kube_query",
				"arguments": map[string]any{"question": "slow one"}, "task": map[string]any{"ttl": 60000}})
			return res, e
		}
		for range 2 {
			res, e := call()
			require.Nil(t, e)
			require.Contains(t, res, "task")
		}
		_, e := call()
		require.NotNil(t, e, "a third task while two run is refused")
		assert.Contains(t, e.Message, "max concurrent tasks")
	})
}

// tasks/cancel of a 2025-11-25 task stops the turn and closes its backend
// request (mcp-go cancels the task's context; kube_query takes it as the
// user's stop, not as a client giving up).
func TestBinaryLegacyTaskCancel(t *testing.T) {
	bothTransports(t, func(t *testing.T, transport string) {
		backend := liveBackend(t, "slow one", []string{"first. ", "never sent"}, time.Minute)
		b := startBinaryWith(t, transport, backend)
		c := newLegacyTaskClient(t, b)
		res, e := c.request("tools/call", map[string]any{"name": "kube_query",
			"arguments": map[string]any{"question": "slow one"}, "task": map[string]any{"ttl": 60000}})
		require.Nil(t, e)
		id := res["task"].(map[string]any)["taskId"].(string)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, backend.Wait(ctx, func(log []kubeqtest.Request) bool {
			for _, r := range log {
				if r.Question == "slow one" {
					return true
				}
			}
			return false
		}))
		_, e = c.request("tasks/cancel", map[string]any{"taskId": id})
		require.Nil(t, e)
		_, err := backend.WaitForDisconnect(ctx, "")
		require.NoError(t, err, "the backend request is closed")
		got, e := c.request("tasks/get", map[string]any{"taskId": id})
		require.Nil(t, e)
		assert.Equal(t, "cancelled", got["status"])
	})
}

// An approval inside a 2025-11-25 task (stdio): mcp-go has no
// input_required, so the form is an elicitation/create on the session while
// the task works; the human's answer decides, by the same judge.
func TestBinaryLegacyTaskApproval(t *testing.T) {
	for _, tc := range []struct {
		name, answer string
		approved     bool
	}{
		{"approve", `{"action":"accept","content":{"decision":"approve","confirm":"web-5"}}`, true},
		{"decline", `{"action":"decline"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			backend := kubeqtest.NewServer()
			t.Cleanup(backend.Close)
			backend.Handle("clean up web-5", binScript(podGate("web-5", "")))
			b := startBinaryWith(t, "stdio", backend, "--approval-timeout", "60s", "--approval-browser", "none")
			c := newLegacyTaskClient(t, b)
			c.elicit = tc.answer
			res, e := c.request("tools/call", map[string]any{"name": "kube_query",
				"arguments": map[string]any{"question": "clean up web-5"}, "task": map[string]any{"ttl": 60000}})
			require.Nil(t, e)
			id := res["task"].(map[string]any)["taskId"].(string)
			got, e := c.request("tasks/result", map[string]any{"taskId": id})
			require.Nil(t, e)
			d := backend.Decisions()
			require.Len(t, d, 1)
			assert.Equal(t, tc.approved, d[0].Approved)
			if tc.approved {
				assert.Contains(t, structured(t, got)["answer"], "Ran web-5.")
			} else {
				assert.Contains(t, structured(t, got)["answer"], "Did not run web-5.")
			}
			forms := c.requests("elicitation/create")
			require.Len(t, forms, 1)
			assert.Equal(t, id, relatedTaskOf(forms[0]), "the form names its task (related-task _meta)")
		})
	}
}
