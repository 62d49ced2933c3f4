package kubeq

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// ErrInvalidTurn is wrapped by the error for a turn that is refused before
// anything is sent (empty question, unsafe conversation id).
var ErrInvalidTurn = errors.New("invalid turn")

// ErrIdleTimeout is wrapped when the backend sent nothing (not even a
// heartbeat or a response header) for longer than the client's timeout.
var ErrIdleTimeout = errors.New("no data from KubeIntellect within the timeout")

// StatusError is a non-200 answer, or a 200 that is not an event stream
// (another web server at the URL). Never retried.
type StatusError struct {
	URL        string
	StatusCode int
	Detail     string        // the server's "detail", flattened
	RetryAfter time.Duration // from Retry-After, 0 when absent
	KeySent    bool          // the request carried an API key (a 401 then means it was refused)
	// Redirect is the Location of a 3xx answer (masked, capped): redirects
	// are never followed, since they would carry the API key elsewhere.
	Redirect string
}

func (e *StatusError) Error() string {
	if e.StatusCode >= 300 && e.StatusCode < 400 {
		return fmt.Sprintf("KubeIntellect at %s answered HTTP %d, a redirect to %s: redirects are not followed, "+
			"so the API key is never sent elsewhere (set KUBE_Q_URL / --url to the URL that answers)",
			e.URL, e.StatusCode, e.redirectTarget())
	}
	detail := e.Detail
	if detail == "" {
		detail = http.StatusText(e.StatusCode)
	}
	return fmt.Sprintf("KubeIntellect at %s answered HTTP %d: %s (%s)", e.URL, e.StatusCode, detail, e.hint())
}

func (e *StatusError) redirectTarget() string {
	if e.Redirect == "" {
		return "nowhere (no Location)"
	}
	return strconv.Quote(e.Redirect)
}

func (e *StatusError) hint() string {
	switch code := e.StatusCode; {
	case code == http.StatusUnauthorized && e.KeySent:
		return "the API key was rejected; check KUBE_Q_API_KEY or --api-key"
	case code == http.StatusUnauthorized:
		return "no API key set; set KUBE_Q_API_KEY or --api-key"
	case code == http.StatusForbidden:
		return "the API key's role does not allow this"
	case code == http.StatusNotFound, code == http.StatusOK:
		return "is this a KubeIntellect URL? check KUBE_Q_URL / --url"
	case code == http.StatusTooManyRequests && e.RetryAfter > 0:
		return fmt.Sprintf("rate limited; retry after %s", e.RetryAfter)
	case code == http.StatusTooManyRequests:
		return "rate limited; retry later"
	case code >= 500:
		return "server error; see the KubeIntellect logs"
	case code == http.StatusUnprocessableEntity:
		return "the backend rejected the request"
	default:
		return "unexpected answer"
	}
}

// TransportError is a failure to get any response after all retries.
type TransportError struct {
	URL      string
	Attempts int
	Err      error
	// MaybeDelivered: an AtMostOnce turn's request was written before the
	// failure, so the backend may have received it.
	MaybeDelivered bool
}

func (e *TransportError) Error() string {
	if e.MaybeDelivered {
		return fmt.Sprintf("KubeIntellect at %s did not answer: %v; the request was sent and may have reached it, "+
			"so it was not sent again (%s)", e.URL, innerError(e.Err), transportHint(e.Err))
	}
	attempts := "attempts"
	if e.Attempts == 1 {
		attempts = "attempt"
	}
	return fmt.Sprintf("cannot reach KubeIntellect at %s after %d %s: %v (%s)",
		e.URL, e.Attempts, attempts, innerError(e.Err), transportHint(e.Err))
}

func (e *TransportError) Unwrap() error { return e.Err }

func transportHint(err error) string {
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &hostname):
		return "TLS: check the CA bundle (--ca-cert / KUBE_Q_CA_CERT) and the host name in KUBE_Q_URL"
	case isTimeout(err):
		return "no answer in time; is it running and reachable? check KUBE_Q_URL / --url"
	default:
		return "is it running? check KUBE_Q_URL / --url"
	}
}

// innerError drops net/http's `Post "<url>": ` prefix, since our messages
// already name the URL.
func innerError(err error) error {
	if re, ok := err.(redactedError); ok {
		return redactedError{innerError(re.err), re.r}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// InterruptedError: the stream ended (EOF, reset, read error) without [DONE].
type InterruptedError struct {
	URL           string
	Events        int // typed events received before the break
	DroppedFrames int
	Err           error // the underlying read error, or io.ErrUnexpectedEOF
}

func (e *InterruptedError) Error() string {
	dropped := ""
	if e.DroppedFrames > 0 {
		dropped = fmt.Sprintf(", %d unreadable frame(s) skipped", e.DroppedFrames)
	}
	return fmt.Sprintf("KubeIntellect stream from %s broke off after %d event(s) without [DONE]%s: %v "+
		"(the answer is incomplete; not retried, since that would run the turn again)",
		e.URL, e.Events, dropped, innerError(e.Err))
}

func (e *InterruptedError) Unwrap() error { return e.Err }

// FatalError is a fatal in-band error (ki_event error fatal:true); Query
// returns it after reading to [DONE].
type FatalError struct{ Message string }

func (e *FatalError) Error() string {
	return "KubeIntellect failed the turn: " + e.Message + " (the partial answer must not be trusted)"
}

func isTimeout(err error) bool {
	if errors.Is(err, ErrIdleTimeout) {
		return true
	}
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
