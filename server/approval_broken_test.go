package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// cutAfterGate passes the first chat answer on up to the frame that
// raises a gate, then breaks the connection: the gate is open at the
// backend, the reply never ended.
func cutAfterGate(backend *url.URL) http.Handler {
	var cut atomic.Bool
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, backend.String()+r.URL.Path, bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		if i := bytes.Index(data, []byte("hitl_required")); i >= 0 && r.Method == http.MethodPost && cut.CompareAndSwap(false, true) {
			end := i + bytes.Index(data[i:], []byte("\n\n")) + 2
			_, _ = w.Write(data[:end])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		_, _ = w.Write(data)
	})
}

// Issue 10: a gate that arrives in a reply whose stream then breaks is
// kept, never dropped: recorded, and denied before the next question.
func TestBrokenReplyKeepsItsGate(t *testing.T) {
	f := newFixture(t, nil)
	f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
	f.backend.Handle("what now?", kubeqtest.Answer("all quiet."))
	g := f.behind(t, cutAfterGate, nil)
	cs := g.connectHuman("http", "2025-11-25", newHuman(t, accept("approve", podTarget)), true)
	res, err := query(context.Background(), cs, map[string]any{"question": podQuestion})
	require.NoError(t, err)
	require.True(t, res.IsError, "the reply broke: %s", textOf(res))
	conv := f.backend.ChatRequests()[0].Session
	_, pending := f.backend.PendingGate(conv)
	require.True(t, pending, "the gate is open at the backend")

	res, err = query(context.Background(), cs, map[string]any{"question": "what now?", "conversation_id": conv})
	require.NoError(t, err)
	require.False(t, res.IsError, textOf(res))
	assert.Equal(t, []string{podQuestion, "deny", "what now?"}, f.backend.MessagesFor(conv))
	assert.Contains(t, textOf(res), "An approval left pending on this conversation (`"+podCommand+"`) was denied",
		"the result names the gate of the broken reply")
	assertNeverApproved(t, f.backend)
}
