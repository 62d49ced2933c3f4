package approval

import (
	"errors"
	"net/http"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
)

// Outcome is what is known of a send's arrival at the backend's agent.
type Outcome int

const (
	// Unknown: it may or may not have arrived (a gateway's 502/503/504, a
	// connection dropped after the request was written, a timeout).
	Unknown Outcome = iota
	// Delivered: the backend had it (it answered, or its reply broke off
	// or reported a failure after it began).
	Delivered
	// NotDelivered: it surely never reached the agent (refused with a
	// status of the backend's own, or never written).
	NotDelivered
)

func (o Outcome) String() string {
	switch o {
	case Delivered:
		return "delivered"
	case NotDelivered:
		return "not delivered"
	}
	return "unknown"
}

// Classify is the one reading of a send's error.
func Classify(err error) Outcome {
	if err == nil {
		return Delivered
	}
	var (
		ie *kubeq.InterruptedError
		fe *kubeq.FatalError
		st *kubeq.StatusError
		tr *kubeq.TransportError
	)
	switch {
	case errors.As(err, &ie), errors.As(err, &fe):
		return Delivered
	case errors.As(err, &st):
		// A 502, 503 or 504 can come from a gateway that passed the request
		// on before it gave up, so those prove nothing.
		if st.StatusCode < 500 || st.StatusCode == http.StatusInternalServerError {
			return NotDelivered
		}
	case errors.As(err, &tr):
		if !tr.MaybeDelivered {
			return NotDelivered
		}
	}
	return Unknown
}
