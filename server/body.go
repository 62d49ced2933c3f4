package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
	"unicode/utf8"
)

// limitBody reads a request's body before the transport does, within
// Config.MaxRequestBytes and Config.RequestReadTimeout, and hands it on
// from memory.
//
// A body over the limit gets 413 and is never buffered past the limit: a
// declared Content-Length over it is refused unread, and a chunked body is
// read to one byte past it. A body that does not arrive within the timeout
// gets 408 and its connection is closed. The deadline is boundBodyReads',
// on the connection until the body is read whole, so the response streams
// that follow are not bound by it (http.Server's ReadTimeout would also
// cancel them).
func (s *Server) limitBody(next http.Handler) http.Handler {
	limit := s.cfg.MaxRequestBytes
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > limit {
			s.refuseLargeBody(w, r)
			return
		}
		body, err := readAtMost(r.Body, limit, r.ContentLength)
		if err != nil {
			// A body not read whole is not waited for again: net/http
			// would read on what is left of it.
			_ = http.NewResponseController(w).SetReadDeadline(time.Now())
		}
		switch {
		case errors.Is(err, errBodyTooLarge):
			s.refuseLargeBody(w, r)
			return
		case isTimeout(err):
			s.slowLog.warn(s.log, "closed a connection whose request body did not arrive in time",
				"timeout", s.cfg.RequestReadTimeout, "remote", r.RemoteAddr)
			w.Header().Set("Connection", "close")
			writeJSONRPCError(w, http.StatusRequestTimeout, fmt.Sprintf(
				"request body not received within %s (--request-read-timeout)", s.cfg.RequestReadTimeout))
			return
		case err != nil:
			w.Header().Set("Connection", "close")
			writeJSONRPCError(w, http.StatusBadRequest, "cannot read the request body")
			return
		}
		_ = r.Body.Close()
		r.Body = &bufferedBody{Reader: bytes.NewReader(body), b: body}
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

func (s *Server) refuseLargeBody(w http.ResponseWriter, r *http.Request) {
	s.counters.refusedBodies.Add(1)
	s.log.Debug("refused a request body over the limit", "limit", s.cfg.MaxRequestBytes,
		"content_length", r.ContentLength, "remote", r.RemoteAddr)
	// The rest of the body is not read: the connection cannot be reused.
	w.Header().Set("Connection", "close")
	writeJSONRPCError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf(
		"request body too large: the limit is %d bytes (--max-request-bytes)", s.cfg.MaxRequestBytes))
}

var errBodyTooLarge = errors.New("request body too large")

// readAtMost reads r whole when it holds at most limit bytes, and fails
// with errBodyTooLarge after reading limit+1 bytes otherwise. size is the
// declared length (-1 if unknown): the buffer is made to fit it at once.
func readAtMost(r io.Reader, limit, size int64) ([]byte, error) {
	var buf bytes.Buffer
	if size >= 0 && size <= limit {
		// One byte more than declared: a body that ends there is read
		// into it whole; one that does not goes on below.
		b := make([]byte, size+1)
		n := 0
		for n < len(b) {
			k, err := r.Read(b[n:])
			n += k
			if err == io.EOF {
				return b[:n], nil
			}
			if err != nil {
				return nil, err
			}
		}
		buf.Write(b)
	}
	if _, err := buf.ReadFrom(io.LimitReader(r, limit+1-int64(buf.Len()))); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > limit {
		return nil, errBodyTooLarge
	}
	return buf.Bytes(), nil
}

// bufferedBody is a request body read into memory; later handlers may
// look at it whole.
type bufferedBody struct {
	*bytes.Reader
	b []byte
}

func (b *bufferedBody) Bytes() []byte { return b.b }
func (b *bufferedBody) Close() error  { return nil }

// requestBody is r's body as limitBody read it into memory, so the
// handlers after it look at one copy instead of each reading and
// re-wrapping the stream. A body not buffered yet (a handler used without
// limitBody) is read and buffered here.
func requestBody(r *http.Request) ([]byte, error) {
	if b, ok := r.Body.(interface{ Bytes() []byte }); ok {
		return b.Bytes(), nil
	}
	body, err := io.ReadAll(r.Body)
	_ = r.Body.Close()
	if err != nil {
		return nil, err
	}
	setRequestBody(r, body)
	return body, nil
}

// setRequestBody makes body r's body, buffered.
func setRequestBody(r *http.Request, body []byte) {
	r.Body = &bufferedBody{Reader: bytes.NewReader(body), b: body}
	r.ContentLength = int64(len(body))
}

// mayMention reports whether a JSON message may name one of words (ASCII,
// lower case) as a member or hold it in a string. It is false only when
// the message cannot: it is plain ASCII with no escape, and no word
// appears in it in any letter case (encoding/json matches member names
// case-insensitively, with Unicode folding: hence plain ASCII only). The
// middlewares use it to skip decoding what cannot be what they look for.
func mayMention(msg []byte, words ...string) bool {
	for _, c := range msg {
		if c >= utf8.RuneSelf || c == '\\' {
			return true
		}
	}
	for _, w := range words {
		if containsFoldASCII(msg, w) {
			return true
		}
	}
	return false
}

// containsFoldASCII reports whether b holds w (lower case) in any letter
// case.
func containsFoldASCII(b []byte, w string) bool {
	if len(w) == 0 {
		return true
	}
	lo, up := w[0], w[0]
	if 'a' <= lo && lo <= 'z' {
		up = lo - 'a' + 'A'
	}
	// Jump from one place the first letter is (in either case) to the
	// next; each case's next place is looked for once it is passed.
	nextLo, nextUp := next(b, 0, lo), -1
	if up != lo {
		nextUp = next(b, 0, up)
	}
	for {
		i := nextLo
		if nextUp >= 0 && (i < 0 || nextUp < i) {
			i = nextUp
		}
		if i < 0 || i+len(w) > len(b) {
			return false
		}
		j := 1
		for j < len(w) && lowerASCII(b[i+j]) == w[j] {
			j++
		}
		if j == len(w) {
			return true
		}
		if i == nextLo {
			nextLo = next(b, i+1, lo)
		} else {
			nextUp = next(b, i+1, up)
		}
	}
}

// next is the index of the first c in b at or after from, or -1.
func next(b []byte, from int, c byte) int {
	if k := bytes.IndexByte(b[from:], c); k >= 0 {
		return from + k
	}
	return -1
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// boundBodyReads gives every request body a read deadline,
// Config.RequestReadTimeout, until it is read to its end. A handler that
// answers without reading the body (a refusal: 401, 403, 404, 413) leaves
// it to net/http, which reads up to 256 KiB of what is left before it
// writes the response or lets go of the connection: without a deadline a
// client that sends part of a body and stops holds a connection and its
// goroutine for good, before any token is checked. Requests without a body
// get no deadline: it would end the long response streams that follow.
func (s *Server) boundBodyReads(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		// Not every ResponseWriter has a connection (in-process tests).
		if rc.SetReadDeadline(time.Now().Add(s.cfg.RequestReadTimeout)) != nil {
			next.ServeHTTP(w, r)
			return
		}
		r.Body = &clearAtEOF{ReadCloser: r.Body, clear: func() { _ = rc.SetReadDeadline(time.Time{}) }}
		next.ServeHTTP(w, r)
	})
}

// clearAtEOF runs clear once the body has been read to its end.
type clearAtEOF struct {
	io.ReadCloser
	clear func()
	done  bool
}

func (b *clearAtEOF) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		b.clear()
	}
	return n, err
}
