package server

import (
	"context"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/approval"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// TestTurnsOnOneConversationAreSerialised: the backend hangs the first of
// two concurrent turns on one session, so kubeq-mcp must never send them.
func TestTurnsOnOneConversationAreSerialised(t *testing.T) {
	f := newFixture(t, nil)
	f.backend.HandleFunc(func(req kubeqtest.Request) kubeqtest.Script {
		return kubeqtest.Script{kubeqtest.Sleep(50 * time.Millisecond), kubeqtest.Tokens("answer to " + req.Question)}
	})
	const calls = 6
	var wg sync.WaitGroup
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs, _ := f.connect("http", clientOpts{version: "2025-11-25"})
			res := call(t, cs, map[string]any{"question": "q" + string(rune('a'+i)), "conversation_id": "shared-conv"})
			assert.False(t, res.IsError, textOf(res))
		}()
	}
	wg.Wait()
	assert.Empty(t, f.backend.ConcurrentTurnViolations())
	assert.Len(t, f.backend.MessagesFor("shared-conv"), calls)

	// Every turn gave the conversation back: one more question on it goes
	// straight through, within a fraction of the call's own time limit.
	cs, _ := f.connect("stdio", clientOpts{version: "2025-11-25"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "kube_query",
		Arguments: map[string]any{"question": "one more", "conversation_id": "shared-conv"}})
	require.NoError(t, err, "the conversation is still held")
	assert.False(t, res.IsError, textOf(res))
	assert.Len(t, f.backend.MessagesFor("shared-conv"), calls+1)
}

func TestAcquireHonoursContext(t *testing.T) {
	l := approval.NewLedger(approval.NewMemoryStore(), approval.Options{})
	first, err := l.Acquire(context.Background(), "x")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = l.Acquire(ctx, "x")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	first.Release()

	// Released: the next turn gets it at once. A second call of the first
	// release must not free it under that next turn.
	next, err := l.Acquire(context.Background(), "x")
	require.NoError(t, err)
	first.Release()
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = l.Acquire(ctx, "x")
	require.ErrorIs(t, err, context.DeadlineExceeded, "a repeated release freed someone else's turn")
	next.Release()
	again, err := l.Acquire(context.Background(), "x")
	require.NoError(t, err)
	again.Release()
	assert.Zero(t, l.Tracked(), "nothing left behind")
}
