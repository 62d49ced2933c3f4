package main

import (
	"context"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/internal/redistest"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

func kubeAnswer(cs *sdk.ClientSession, args map[string]any, state string, content map[string]any) (*sdk.CallToolResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := &sdk.CallToolParams{Name: "kube_answer", Arguments: args}
	if state != "" {
		p.RequestState = state
		p.InputResponses = sdk.InputResponseMap{"approval": &sdk.ElicitResult{Action: "accept", Content: content}}
	}
	return cs.CallTool(ctx, p)
}

// With the Redis store, kube_answer on another replica returns the answer
// of a turn running on the first one, and asks the human for a gate that
// turn raised while nobody watched; the approval is applied once.
func TestReplicasAnswerFromAnotherReplica(t *testing.T) {
	srv := redistest.Start(t)
	backend := kubeqtest.NewServer(kubeqtest.WithHeartbeat(100 * time.Millisecond))
	t.Cleanup(backend.Close)
	backend.Handle("long look", kubeqtest.Script{
		kubeqtest.Status("investigating", "Looking"), kubeqtest.Tokens("Part one. "),
		kubeqtest.Sleep(2 * time.Second), kubeqtest.Tokens("Part two."),
	})
	release := make(chan struct{})
	backend.Handle("clean up web-1", kubeqtest.Script{
		kubeqtest.Status("investigating", "Looking"), kubeqtest.WaitFor(release),
		kubeqtest.Gate{Command: "kubectl delete pod web-1 -n shop",
			OnApprove: kubeqtest.Script{kubeqtest.Tokens("Deleted web-1.")},
			OnDeny:    kubeqtest.Script{kubeqtest.Tokens("Left it.")}},
	})
	rs := startReplicas(t, 2, backend, srv.URL(0), "--call-deadline", "1s")
	cs := rs.client() // 2026-era: each request is routed on its own

	rs.only(0)
	res, err := ask(cs, map[string]any{"question": "long look", "conversation_id": "conv-mirror"})
	require.NoError(t, err)
	first := res.StructuredContent.(map[string]any)
	require.Equal(t, "running", first["status"], "%v", res.Content)

	rs.only(1)
	var out map[string]any
	require.Eventually(t, func() bool {
		res, err := kubeAnswer(cs, map[string]any{"conversation_id": "conv-mirror", "wait_seconds": 1}, "", nil)
		if err != nil || res.IsError {
			return false
		}
		out = res.StructuredContent.(map[string]any)
		return out["status"] == "complete"
	}, 20*time.Second, 50*time.Millisecond, "replica 1 answers from the store")
	assert.Equal(t, "Part one. Part two.", out["answer"])
	assert.Len(t, backend.ChatRequests(), 1, "replica 1 sent nothing")

	// A gate raised on replica 0 while nobody watched is asked on replica 1.
	rs.only(0)
	res, err = ask(cs, map[string]any{"question": "clean up web-1", "conversation_id": "conv-gate"})
	require.NoError(t, err)
	require.Equal(t, "running", res.StructuredContent.(map[string]any)["status"])
	close(release)
	rs.only(1)
	var state string
	require.Eventually(t, func() bool {
		res, err := kubeAnswer(cs, map[string]any{"conversation_id": "conv-gate", "wait_seconds": 1}, "", nil)
		if err != nil || res.IsError {
			return false
		}
		state = res.RequestState
		return state != ""
	}, 20*time.Second, 50*time.Millisecond, "replica 1 asks for the gate (input_required)")
	res, err = kubeAnswer(cs, map[string]any{"conversation_id": "conv-gate"}, state, approveWithName("web-1"))
	require.NoError(t, err)
	require.False(t, res.IsError, "%v", res.Content)
	assert.Contains(t, res.StructuredContent.(map[string]any)["answer"], "Deleted web-1.")
	approves := 0
	for _, r := range backend.ChatRequests() {
		if r.Message == "approve" {
			approves++
		}
	}
	assert.Equal(t, 1, approves, "approved once")
	assert.Empty(t, strays(backend))
}
