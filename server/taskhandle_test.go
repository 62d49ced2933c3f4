package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const handleEvent = `{"jsonrpc":"2.0","id":3,"result":{"_meta":{"kubeq-mcp/task":{"taskId":"abc","status":"working"}},"content":[]}}`

// An event stream passes through as it is written, each flush reaching the
// client, and only the data line carrying a task handle is rewritten, even
// when it comes in pieces.
func TestTaskHandleWriterStreams(t *testing.T) {
	rec := httptest.NewRecorder()
	w := &taskHandleWriter{w: rec}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	progress := "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n"
	_, err := w.Write([]byte(progress))
	require.NoError(t, err)
	w.Flush()
	assert.Equal(t, progress, rec.Body.String(), "progress is not held back")
	assert.True(t, rec.Flushed)

	_, err = w.Write([]byte("event: message\ndata: " + handleEvent[:40]))
	require.NoError(t, err)
	assert.Equal(t, progress+"event: message\n", rec.Body.String(), "a line is written once it ends")
	_, err = w.Write([]byte(handleEvent[40:] + "\n\n"))
	require.NoError(t, err)
	w.finish()
	rest := strings.TrimPrefix(rec.Body.String(), progress+"event: message\n")
	assert.JSONEq(t, `{"jsonrpc":"2.0","id":3,"result":{"taskId":"abc","status":"working","resultType":"task"}}`,
		strings.TrimSpace(strings.TrimPrefix(rest, "data: ")))
	assert.True(t, strings.HasSuffix(rest, "}\n\n"), "the event keeps its end: %q", rest)
}

// A JSON response is one message: kept until the handler returns, then
// rewritten whole.
func TestTaskHandleWriterJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	w := &taskHandleWriter{w: rec}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "999")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write([]byte(handleEvent + "\n"))
	require.NoError(t, err)
	w.finish()
	assert.Empty(t, rec.Header().Get("Content-Length"))
	assert.JSONEq(t, `{"jsonrpc":"2.0","id":3,"result":{"taskId":"abc","status":"working","resultType":"task"}}`, rec.Body.String())

	plain := `{"jsonrpc":"2.0","id":4,"result":{"content":[{"type":"text","text":"kubeq-mcp/task"}]}}`
	rec = httptest.NewRecorder()
	w = &taskHandleWriter{w: rec}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_, err = w.Write([]byte(plain))
	require.NoError(t, err)
	w.finish()
	assert.Equal(t, http.StatusBadRequest, rec.Code)
	assert.Equal(t, plain, rec.Body.String(), "no handle in _meta: unchanged")
}
