package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/internal/redistest"
)

// A stdio connection's tasks belong to its process, even with the Redis
// store: another replica cannot know its owner. So a tasks/* request on
// stdin is answered without the store: with the store down, an unknown id
// is "not found" (not a store error), and a known task is served.
func TestBinaryStdioTasksNeverWaitForTheStore(t *testing.T) {
	srv := redistest.Start(t)
	backend := liveBackend(t, "quick", []string{"done."}, 0)
	b := startBinaryWith(t, "stdio", backend, "--store", srv.URL(0), "--state-key", replicaStateKey)
	c := newTaskClient(t, b, true)
	id := created(t, c.callQuery(map[string]any{"question": "quick"}))
	task, _ := c.poll(id, 30*time.Second, nil)
	require.Equal(t, "completed", task["status"])

	srv.Stop()
	_, e := c.request("tasks/get", map[string]any{"taskId": strings.Repeat("ab", 16)})
	require.NotNil(t, e)
	assert.Equal(t, -32602, e.Code, "not found, without asking the store: %s", e.Message)
	again, e := c.request("tasks/get", map[string]any{"taskId": id})
	require.Nil(t, e)
	assert.Equal(t, "completed", again["status"])
	assert.NotContains(t, b.stderr.String(), "could not read a task from the store")
}
