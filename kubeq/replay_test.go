package kubeq_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

func TestGateStateFromReplayHistory(t *testing.T) {
	srv := kubeqtest.NewServer()
	t.Cleanup(srv.Close)
	srv.Handle("delete it", kubeqtest.Script{kubeqtest.Gate{Command: "kubectl delete pod web-1 -n shop", ActionID: "a-1"}})
	c, err := kubeq.New(srv.URL)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	state, _, err := c.GateState(ctx, "never-seen")
	require.NoError(t, err)
	assert.Equal(t, kubeq.GateUnknown, state, "no history is not the same as no gate")

	_, err = c.Query(ctx, kubeq.Turn{Question: "hello", Conversation: "conv-1"})
	require.NoError(t, err)
	state, _, err = c.GateState(ctx, "conv-1")
	require.NoError(t, err)
	assert.Equal(t, kubeq.GateNone, state)

	res, err := c.Query(ctx, kubeq.Turn{Question: "delete it", Conversation: "conv-1"})
	require.NoError(t, err)
	require.NotNil(t, res.Hitl)
	state, gate, err := c.GateState(ctx, "conv-1")
	require.NoError(t, err)
	assert.Equal(t, kubeq.GatePending, state)
	assert.Equal(t, "a-1", gate.ApprovalID)
	assert.Equal(t, "kubectl delete pod web-1 -n shop", gate.Action)

	_, err = c.Query(ctx, kubeq.Turn{Question: "deny", Conversation: "conv-1"})
	require.NoError(t, err)
	state, _, err = c.GateState(ctx, "conv-1")
	require.NoError(t, err)
	assert.Equal(t, kubeq.GateNone, state, "a decided gate is not pending")
}
