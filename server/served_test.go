package server

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// A follow-up on a conversation this process served costs one backend
// request: the ledger knows what is pending there. A conversation it has
// not served (another process, before a restart) is looked up first.
func TestOneRoundTripWhereTheLedgerVouches(t *testing.T) {
	f := newFixture(t, nil)
	f.backend.Handle("how are the pods?", kubeqtest.Answer("All running."))
	cs, _ := f.connect("http", clientOpts{version: "2025-11-25"})
	count := func() (chats, history int) {
		for _, r := range f.backend.Requests() {
			switch {
			case r.Path == "/v1/chat/completions":
				chats++
			case strings.HasPrefix(r.Path, "/v1/events/replay/"):
				history++
			}
		}
		return chats, history
	}
	for i, want := range []struct{ chats, history int }{{1, 1}, {2, 1}, {3, 1}} {
		res := call(t, cs, map[string]any{"question": "how are the pods?", "conversation_id": "conv-vouched"})
		require.False(t, res.IsError, textOf(res))
		chats, history := count()
		assert.Equal(t, want.chats, chats, "question %d", i+1)
		assert.Equal(t, want.history, history, "question %d: the history is read only for a conversation not served here", i+1)
	}
	// A new conversation this process starts needs no look-up either.
	res := call(t, cs, map[string]any{"question": "how are the pods?"})
	require.False(t, res.IsError, textOf(res))
	_, history := count()
	assert.Equal(t, 1, history)
}

// On an older backend, which takes any message but a denial as the answer
// to a pending gate, a conversation this process served is still denied
// first: a gate another client raised there (a kq user typing into the
// same session) is not in the ledger, and the question would approve it.
func TestServedConversationOnOlderBackendStillDeniedFirst(t *testing.T) {
	f := newFixture(t, nil, kubeqtest.WithV2())
	f.backend.Handle("how are the pods?", kubeqtest.Answer("All running."))
	cs := f.connectHuman("http", "2025-11-25", newHuman(t, declineForm), true)
	conv := "conv-served-v2"
	res := call(t, cs, map[string]any{"question": "how are the pods?", "conversation_id": conv})
	require.False(t, res.IsError, textOf(res))
	// The kq user's turn, straight to the backend on the same session.
	f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-kq-user")})
	kq, err := kubeq.New(f.backend.URL)
	require.NoError(t, err)
	for _, err := range kq.Stream(context.Background(), kubeq.Turn{Question: podQuestion, Conversation: conv}) {
		require.NoError(t, err)
	}
	res = call(t, cs, map[string]any{"question": "how are the pods?", "conversation_id": conv})
	require.False(t, res.IsError, textOf(res))
	assertNeverApproved(t, f.backend)
}
