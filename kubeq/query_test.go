package kubeq

import (
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func queryFixture(t *testing.T, name string) (*Result, error) {
	t.Helper()
	b := newBackend(t, serveSSE(fixture(t, name)))
	return newClient(t, b.URL, WithRetryDelays()).Query(testCtx(t), Turn{Question: "q", Conversation: "conv-1"})
}

func TestQueryPlainAnswer(t *testing.T) {
	res, err := queryFixture(t, "plain_answer")
	require.NoError(t, err)
	require.Equal(t, "conv-1", res.Conversation)
	require.Equal(t, "**Root cause:** `checkout` exits at start-up because `DB_URL` is not set.", res.Answer)
	require.Equal(t, &Usage{PromptTokens: 14210, CompletionTokens: 655, TotalTokens: 14865, LLMCalls: 4}, res.Usage)
	require.Len(t, res.ToolCalls, 2)
	require.Equal(t, "kubectl logs checkout-7d4b9cf6-xk2lp -n shop --previous", res.ToolCalls[1].Command)
	require.Nil(t, res.Hitl)
	require.Empty(t, res.Errors)
	require.Positive(t, res.Elapsed)
}

func TestQueryHitlGate(t *testing.T) {
	res, err := queryFixture(t, "hitl_gate_yaml")
	require.NoError(t, err, "a paused gate is a normal end of turn")
	require.NotNil(t, res.Hitl)
	require.Equal(t, "kubectl apply -f - -n shop", res.Hitl.Action)
	require.Equal(t, "medium", res.Hitl.Risk)
	require.Equal(t, "9d0c7f5e-2a41-4b8e-8f3c-6e1a2b3c4d5e", res.Hitl.ApprovalID)
	require.Contains(t, res.Hitl.YAML, "kind: ConfigMap")
	require.Equal(t, "I will create the missing config map."+res.Hitl.Prompt, res.Answer)
}

func TestQueryWithoutUsageFrame(t *testing.T) {
	res, err := queryFixture(t, "v2_no_usage")
	require.NoError(t, err)
	require.Nil(t, res.Usage, "no usage frame means unknown, not zero")

	res, err = queryFixture(t, "mid_turn_error")
	require.NoError(t, err, "a mid-turn error chunk is text; the turn goes on")
	require.Contains(t, res.Answer, "**Error:** LLM rate limit hit")
	require.NotNil(t, res.Usage, "the usage after the first stop is not lost")
	require.Zero(t, res.Usage.CompletionTokens)
}

func TestQueryFatalError(t *testing.T) {
	res, err := queryFixture(t, "fatal_error")
	var fe *FatalError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "checkpoint store unavailable: connection refused", fe.Message)
	require.Equal(t, []Error{{Message: fe.Message, Fatal: true}}, res.Errors)
	require.Equal(t, "Looking at the \n\n[Error: checkpoint store unavailable: connection refused]", res.Answer,
		"kept for diagnostics; the caller must not present it as the answer")
	require.Nil(t, res.Usage)
}

func TestQueryInterrupted(t *testing.T) {
	res, err := queryFixture(t, "truncated")
	var ie *InterruptedError
	require.ErrorAs(t, err, &ie)
	require.Equal(t, "All three nodes are ", res.Answer, "the partial answer comes back with the error")
	require.Len(t, res.ToolCalls, 1)

	// Dropped frames before the break are reported on both.
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		writeFlush(w, handshake+"data: {oops\n\ndata: [DONE\n\n")
		panic(http.ErrAbortHandler)
	})
	res, err = newClient(t, b.URL).Query(testCtx(t), Turn{Question: "q"})
	require.True(t, errors.As(err, &ie))
	require.Equal(t, 2, ie.DroppedFrames)
	require.Equal(t, 2, res.DroppedFrames)
	require.Contains(t, err.Error(), "2 unreadable frame(s) skipped")
}

func TestQueryCountsSkippedFrames(t *testing.T) {
	res, err := queryFixture(t, "malformed_frame")
	require.NoError(t, err)
	require.Equal(t, 2, res.DroppedFrames)
	res, err = queryFixture(t, "unknown_frames")
	require.NoError(t, err)
	require.Equal(t, 4, res.UnknownFrames)
	require.Equal(t, "Fine.", res.Answer)
}

// An error chunk followed by more content is part of the answer, not the
// V2 way of ending a turn on a fatal error.
func TestV2FatalErrorChunkMustBeLast(t *testing.T) {
	var v v2Fatal
	for _, e := range []Event{Token{Content: "\n\n[Error: not the end]"}, Token{Content: " and more"}} {
		v.see(e)
	}
	_, ok := v.error()
	require.False(t, ok)

	// Python prints an empty message for some exceptions.
	v = v2Fatal{}
	v.see(Token{Content: "\n\n[Error: ]"})
	e, ok := v.error()
	require.True(t, ok)
	require.Equal(t, Error{Message: "", Fatal: true}, e)
}
