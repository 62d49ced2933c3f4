package server

import (
	"errors"
	"net/http"
	"sync"
	"time"
)

// errResponseEnded is what a write to a response whose handler returned
// gets instead of reaching net/http, which forbids it.
var errResponseEnded = errors.New("the response has ended")

// releaseOnReturn hands next a ResponseWriter that lets go of the real one
// when next returns. mcp-go v1.6.0 keeps a 2025-era POST's resumable
// stream, and the writer it was given, until the session ends: without
// this an open session holds every finished call's response, and through
// it the request, its headers and body (about 3 KB a call). It also turns
// a write after the return into an error instead of a write net/http
// does not allow.
func releaseOnReturn(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &releasingWriter{w: w}
		defer rw.release()
		if _, ok := w.(http.Flusher); ok {
			next.ServeHTTP(releasingFlusher{rw}, r)
			return
		}
		// mcp-go streams only to a writer that flushes: this one must not
		// claim to.
		next.ServeHTTP(rw, r)
	})
}

// releasingWriter forwards to w until release. Its methods hold mu for
// reading, so release waits for a write in progress (bounded by the
// write deadline) and none starts after it.
type releasingWriter struct {
	mu sync.RWMutex
	w  http.ResponseWriter // nil once released
}

func (rw *releasingWriter) release() {
	rw.mu.Lock()
	rw.w = nil
	rw.mu.Unlock()
}

func (rw *releasingWriter) Header() http.Header {
	rw.mu.RLock()
	defer rw.mu.RUnlock()
	if rw.w != nil {
		return rw.w.Header()
	}
	return http.Header{} // a late caller's, read by nobody
}

func (rw *releasingWriter) WriteHeader(code int) {
	rw.mu.RLock()
	defer rw.mu.RUnlock()
	if rw.w != nil {
		rw.w.WriteHeader(code)
	}
}

func (rw *releasingWriter) Write(p []byte) (int, error) {
	rw.mu.RLock()
	defer rw.mu.RUnlock()
	if rw.w == nil {
		return 0, errResponseEnded
	}
	return rw.w.Write(p)
}

// releasingFlusher is a releasingWriter over a writer that flushes.
type releasingFlusher struct{ *releasingWriter }

func (rf releasingFlusher) Flush() { _ = rf.FlushError() }

func (rw *releasingWriter) FlushError() error {
	rw.mu.RLock()
	defer rw.mu.RUnlock()
	if rw.w == nil {
		return errResponseEnded
	}
	if f, ok := rw.w.(interface{ FlushError() error }); ok {
		return f.FlushError() // without a ResponseController made per flush
	}
	return http.NewResponseController(rw.w).Flush()
}

func (rw *releasingWriter) SetWriteDeadline(t time.Time) error {
	rw.mu.RLock()
	defer rw.mu.RUnlock()
	if rw.w == nil {
		return errResponseEnded
	}
	return http.NewResponseController(rw.w).SetWriteDeadline(t)
}
