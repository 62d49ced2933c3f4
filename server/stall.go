package server

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// limitStalls gives up on a client that stopped reading its response: a
// write (or flush) that cannot hand its bytes to the connection within
// Config.WriteTimeout fails, and the connection is closed. Without it, a
// stalled reader holds its connection, a goroutine and whatever waits to
// be written (a whole result) for as long as it likes. Progress queued
// meanwhile is bounded by the call's outbox (see outbox.go).
//
// The deadline is set afresh before every write (unless it was set within
// the last 1/64 of the timeout), so a stream that is merely quiet (a long
// turn, a human deciding) is never cut by it.
func (s *Server) limitStalls(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		// Not every ResponseWriter has a connection (in-process tests).
		if rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)) != nil {
			next.ServeHTTP(w, r)
			return
		}
		dw := &deadlineWriter{ResponseWriter: w, rc: rc, d: s.cfg.WriteTimeout, start: time.Now()}
		next.ServeHTTP(dw, r)
		// What net/http writes after the handler (the end of a chunked
		// body) gets a fresh deadline too.
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		if dw.stalled() {
			s.stallLog.warn(s.log, "closed a response whose client stopped reading",
				"write_timeout", s.cfg.WriteTimeout, "remote", r.RemoteAddr)
		}
	})
}

// deadlineWriter sets the write deadline before each write and flush:
// d from now, unless it set it within the last d/64 (a blocked write
// fails after between 63/64 d and d). An event written and flushed, or a
// burst of them, then costs one deadline update, not one per write.
type deadlineWriter struct {
	http.ResponseWriter
	rc    *http.ResponseController
	d     time.Duration
	start time.Time    // monotonic base of setAt; the deadline was set then
	setAt atomic.Int64 // when this writer last set the deadline, since start; -1 after another did

	mu      sync.Mutex
	timeout bool
}

func (w *deadlineWriter) refresh() {
	now := time.Since(w.start)
	if at := w.setAt.Load(); at >= 0 && now-time.Duration(at) < w.d/64 {
		return
	}
	w.setAt.Store(int64(now))
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
}

// SetWriteDeadline is another handler's deadline (mcp-go's, for a resumed
// stream): this writer sets its own afresh at the next write.
func (w *deadlineWriter) SetWriteDeadline(t time.Time) error {
	w.setAt.Store(-1)
	return w.rc.SetWriteDeadline(t)
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	w.refresh()
	n, err := w.ResponseWriter.Write(p)
	w.note(err)
	return n, err
}

func (w *deadlineWriter) Flush() { _ = w.FlushError() }

func (w *deadlineWriter) FlushError() error {
	w.refresh()
	err := w.rc.Flush()
	w.note(err)
	return err
}

func (w *deadlineWriter) note(err error) {
	if err != nil && isTimeout(err) {
		w.mu.Lock()
		w.timeout = true
		w.mu.Unlock()
	}
}

func (w *deadlineWriter) stalled() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.timeout
}

func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
