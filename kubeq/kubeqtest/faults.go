package kubeqtest

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Fault is something that goes wrong with one chat request. Queue faults
// with Server.FailNext or Server.Fault; each chat request that arrives takes
// the next queued fault, whatever its question. (To break the answer to one
// question only, put fault steps in its Script instead.)
type Fault struct {
	name string

	drop   bool // close the connection before any response
	status int  // answer this status instead of a stream
	body   string
	header http.Header

	inject    Step // written right after the handshake
	cutAfter  int  // cut mid-frame after this many frames (handshake counts); 0: off
	noDone    bool
	crlf      bool
	slowFrame time.Duration
}

// String names the fault; it is also recorded in Request.Fault.
func (f Fault) String() string { return f.name }

// DropConnection closes the connection before any response is written:
// the client sees a transport error (EOF / connection reset).
func DropConnection() Fault { return Fault{name: "drop connection", drop: true} }

// Respond answers code with the body the real server gives for it:
//
//	401 {"detail":"Authorization: Bearer <api_key> required"}
//	422 {"detail":"No user message provided"}
//	429 the rate limiter's body, Retry-After: 30, X-RateLimit-* headers
//	500 Starlette's plain-text "Internal Server Error"
//	others {"detail":"<status text>"}
func Respond(code int) Fault {
	switch code {
	case http.StatusUnauthorized:
		return RespondWith(code, detailBody(detailBearerRequired), nil)
	case http.StatusUnprocessableEntity:
		return RespondWith(code, detailBody(detailNoUserMessage), nil)
	case http.StatusTooManyRequests:
		return RateLimited(30)
	case http.StatusInternalServerError:
		return Fault{name: "500", status: code, body: "Internal Server Error",
			header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}}}
	}
	return RespondWith(code, detailBody(http.StatusText(code)), nil)
}

// RespondInvalidKey answers 401 {"detail":"Invalid API key"}.
func RespondInvalidKey() Fault {
	return RespondWith(http.StatusUnauthorized, detailBody(detailInvalidKey), nil)
}

// RespondValidationList answers 422 in FastAPI's list form, as for a
// non-string message content.
func RespondValidationList() Fault {
	return RespondWith(http.StatusUnprocessableEntity, validationList("string_type",
		[]any{"body", "messages", 0, "content"}, "Input should be a valid string", []any{}), nil)
}

// RateLimited answers 429 like the V4 rate limiter at its defaults (120 per
// minute, burst 30) with Retry-After: retryAfter.
func RateLimited(retryAfter int) Fault {
	n := strconv.Itoa(retryAfter)
	body := detailBody(fmt.Sprintf("Rate limit exceeded: 120 requests/minute per API key (burst 30). Retry after %ss.", n))
	f := RespondWith(http.StatusTooManyRequests, body, http.Header{
		"Retry-After": {n}, "X-Ratelimit-Limit": {"120"}, "X-Ratelimit-Remaining": {"0"},
	})
	return f
}

// RespondWith answers code with body (JSON unless header sets Content-Type).
func RespondWith(code int, body string, header http.Header) Fault {
	h := http.Header{"Content-Type": {"application/json"}}
	for k, v := range header {
		h[http.CanonicalHeaderKey(k)] = append([]string(nil), v...)
	}
	return Fault{name: strconv.Itoa(code), status: code, body: body, header: h}
}

// CutMidStream writes the first frames of the turn (the handshake counts as
// one), then half of the next frame, then drops the connection.
func CutMidStream(afterFrames int) Fault {
	if afterFrames < 1 {
		afterFrames = 1
	}
	return Fault{name: fmt.Sprintf("cut after %d frames", afterFrames), cutAfter: afterFrames}
}

// TruncateStream writes the whole turn except [DONE], then ends the response.
func TruncateStream() Fault { return Fault{name: "no [DONE]", noDone: true} }

// MalformedFrame writes a frame of broken JSON right after the handshake;
// the turn is otherwise normal.
func MalformedFrame() Fault { return Fault{name: "malformed frame", inject: Malformed()} }

// HugeFrame writes a token frame with n bytes of content right after the
// handshake; the turn is otherwise normal.
func HugeFrame(n int) Fault { return Fault{name: fmt.Sprintf("huge frame %d", n), inject: Huge(n)} }

// CRLFFrames frames this turn with "\r\n\r\n".
func CRLFFrames() Fault { return Fault{name: "CRLF", crlf: true} }

// SlowStream delays every frame of this turn by d.
func SlowStream(d time.Duration) Fault { return Fault{name: "slow " + d.String(), slowFrame: d} }

// FailNext queues f for the next n chat requests (after any already queued).
func (s *Server) FailNext(n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < n; i++ {
		s.faults = append(s.faults, f)
	}
}

// Fault queues f for the next chat request.
func (s *Server) Fault(f Fault) { s.FailNext(1, f) }

// ClearFaults drops every queued fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

func (s *Server) takeFault() (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) == 0 {
		return Fault{}, false
	}
	f := s.faults[0]
	s.faults = s.faults[1:]
	return f, true
}

// dropConnection closes the client connection without a response.
func dropConnection(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		_ = conn.Close()
		return
	}
	panic(http.ErrAbortHandler)
}
