package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// The extension's tasks/* methods are answered in front of mcp-go, and
// were let through by its Host and Content-Type checks: a DNS-rebinding
// page (a foreign Host on the loopback listener, no Origin) could read a
// task, approve its change with tasks/update, or cancel it. Each is
// refused exactly as tools/list is, the task still waits and no decision
// reaches the backend; then its own client approves it as usual.
func TestBinaryTaskRebindingRefused(t *testing.T) {
	backend := kubeqtest.NewServer()
	t.Cleanup(backend.Close)
	backend.Handle("clean up web-5", binScript(podGate("web-5", "")))
	b := startBinaryWith(t, "http", backend, "--approval-timeout", "60s", "--approval-browser", "none")
	c := newTaskClient(t, b, true)

	id := created(t, c.callQuery(map[string]any{"question": "clean up web-5"}))
	task, _ := c.poll(id, 30*time.Second, func(task map[string]any) bool { return task["status"] == "input_required" })
	require.Equal(t, "input_required", task["status"], task)
	reqs, _ := task["inputRequests"].(map[string]any)
	require.Len(t, reqs, 1)
	var key string
	for k := range reqs {
		key = k
	}
	approve := map[string]any{key: map[string]any{"action": "accept", "content": map[string]any{"decision": "approve", "confirm": "web-5"}}}

	nextID := 100
	send := func(cl *taskClient, method string, params map[string]any, edit func(http.Header)) (string, int) {
		t.Helper()
		nextID++
		params["_meta"] = cl.meta()
		body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": nextID, "method": method, "params": params})
		require.NoError(t, err)
		name, _ := params["taskId"].(string)
		out, status := cl.postRaw(method, name, body, nextID, edit)
		return string(out), status
	}
	taskCalls := []struct {
		method string
		params func() map[string]any
	}{
		{"tasks/get", func() map[string]any { return map[string]any{"taskId": id} }},
		{"tasks/update", func() map[string]any { return map[string]any{"taskId": id, "inputResponses": approve} }},
		{"tasks/cancel", func() map[string]any { return map[string]any{"taskId": id} }},
	}

	rebound := newTaskClient(t, b, true)
	rebound.host = "rebound.evil.example:8080"
	wantBody, wantStatus := send(rebound, "tools/list", map[string]any{}, nil)
	require.Equal(t, http.StatusForbidden, wantStatus, wantBody)
	require.Contains(t, wantBody, "invalid Host header")
	for _, tc := range taskCalls {
		out, status := send(rebound, tc.method, tc.params(), nil)
		assert.Equal(t, wantStatus, status, "%s from a rebound Host: %s", tc.method, out)
		assert.Equal(t, wantBody, out, tc.method)
	}

	textPlain := func(h http.Header) { h.Set("Content-Type", "text/plain") }
	wantBody, wantStatus = send(c, "tools/list", map[string]any{}, textPlain)
	require.Equal(t, http.StatusBadRequest, wantStatus, wantBody)
	require.Contains(t, wantBody, "Invalid content type")
	for _, tc := range taskCalls {
		out, status := send(c, tc.method, tc.params(), textPlain)
		assert.Equal(t, wantStatus, status, "%s as text/plain: %s", tc.method, out)
		assert.Equal(t, wantBody, out, tc.method)
	}

	again, e := c.request("tasks/get", map[string]any{"taskId": id})
	require.Nil(t, e)
	assert.Equal(t, "input_required", again["status"], "the refused requests neither approved nor cancelled")
	assert.Empty(t, backend.Decisions())

	_, e = c.request("tasks/update", map[string]any{"taskId": id, "inputResponses": approve})
	require.Nil(t, e)
	task, _ = c.poll(id, 30*time.Second, nil)
	require.Equal(t, "completed", task["status"], task)
	d := backend.Decisions()
	require.Len(t, d, 1)
	assert.True(t, d[0].Approved)
}
