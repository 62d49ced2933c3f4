package server

import (
	"net/http"
	"sync"
	"time"
)

// limitStalls gives up on a client that stopped reading its response: a
// write (or flush) that cannot hand its bytes to the connection within
// Config.WriteTimeout fails, and the connection is closed. Without it, a
// stalled reader holds its connection, a goroutine and whatever waits to
// be written (a whole result) for as long as it likes. Progress queued
// meanwhile is bounded by mcp-go's session queue (see notifier).
//
// The deadline is set afresh before every write, so a stream that is
// merely quiet (a long turn, a human deciding) is never cut by it.
func (s *Server) limitStalls(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		// Not every ResponseWriter has a connection (in-process tests).
		if rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout)) != nil {
			next.ServeHTTP(w, r)
			return
		}
		dw := &deadlineWriter{ResponseWriter: w, rc: rc, d: s.cfg.WriteTimeout}
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

// deadlineWriter sets the write deadline before each write and flush.
type deadlineWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration

	mu      sync.Mutex
	timeout bool
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	n, err := w.ResponseWriter.Write(p)
	w.note(err)
	return n, err
}

func (w *deadlineWriter) Flush() { _ = w.FlushError() }

func (w *deadlineWriter) FlushError() error {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
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
