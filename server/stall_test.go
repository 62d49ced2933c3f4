package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// deadlineRecorder is a response writer that records the write deadlines
// set on it, as a connection would take them.
type deadlineRecorder struct {
	*httptest.ResponseRecorder
	deadlines []time.Time
}

func (r *deadlineRecorder) SetWriteDeadline(t time.Time) error {
	r.deadlines = append(r.deadlines, t)
	return nil
}

// Writes and flushes in a burst set the deadline once; a deadline set by
// another handler (mcp-go's, around a resumed stream, cleared after) is
// followed by a fresh one at the next write; every deadline set by the
// writer is the whole timeout from when it was set.
func TestDeadlineWriterSetsTheDeadline(t *testing.T) {
	const d = time.Minute
	rec := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
	w := &deadlineWriter{ResponseWriter: rec, rc: http.NewResponseController(rec), d: d, start: time.Now()}
	before := time.Now()
	_, err := w.Write([]byte("a"))
	require.NoError(t, err)
	require.NoError(t, w.FlushError())
	_, _ = w.Write([]byte("b"))
	assert.Empty(t, rec.deadlines, "set at start (by limitStalls), not again within d/64")

	w.start = w.start.Add(-d / 32) // as if d/32 had passed since
	_, _ = w.Write([]byte("c"))
	require.Len(t, rec.deadlines, 1)
	assert.False(t, rec.deadlines[0].Before(before.Add(d)))

	// mcp-go sets its own deadline through the response controller, then
	// clears it.
	rc := http.NewResponseController(w)
	require.NoError(t, rc.SetWriteDeadline(time.Now().Add(time.Second)))
	require.NoError(t, rc.SetWriteDeadline(time.Time{}))
	_, _ = w.Write([]byte("d"))
	require.Len(t, rec.deadlines, 4)
	assert.True(t, rec.deadlines[2].IsZero())
	assert.False(t, rec.deadlines[3].Before(before.Add(d)), "the writer's own deadline is back")
}
