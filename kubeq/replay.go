package kubeq

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// GateState is what the backend's history says about a conversation's
// approval gate.
type GateState int

const (
	// GateUnknown: the history could not say (no history in the process
	// that answered, an older server, an error).
	GateUnknown GateState = iota
	// GateNone: the conversation's last turn did not end at a gate.
	GateNone
	// GatePending: the last turn ended at a gate nobody has answered.
	GatePending
)

const (
	replayPath    = "/v1/events/replay/"
	replayTimeout = 5 * time.Second
	maxReplay     = 16 << 20
)

// GateState reads GET /v1/events/replay/{conversation}, the backend's event
// history of the conversation, and tells whether a gate is pending on it:
// the last turn held a hitl_request and no turn followed it. The history is
// kept in the memory of one backend process, so GateUnknown is a normal
// answer; errors are returned for logging only.
//
// With GatePending it also returns the pending gate.
func (c *Client) GateState(ctx context.Context, conversation string) (GateState, HitlRequest, error) {
	if !safeHeaderValue(conversation, 200) || conversation == "" {
		return GateUnknown, HitlRequest{}, fmt.Errorf("gate state: %w: conversation id", ErrInvalidTurn)
	}
	ctx, cancel := context.WithTimeout(ctx, replayTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+replayPath+url.PathEscape(conversation), nil)
	if err != nil {
		return GateUnknown, HitlRequest{}, fmt.Errorf("gate state: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	c.authorize(req)
	resp, err := c.hc.Do(req)
	if err != nil {
		return GateUnknown, HitlRequest{}, fmt.Errorf("gate state from %s: %w", c.redactedBase()+replayPath, innerError(c.redactErr(err)))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return GateUnknown, HitlRequest{}, nil
	}
	state, gate, err := replayGateState(io.LimitReader(resp.Body, maxReplay))
	return state, c.redact.event(gate).(HitlRequest), c.redactErr(err)
}

// replayGateState scans a replay stream. History is a series of turns, each
// closed by a final event.
func replayGateState(r io.Reader) (GateState, HitlRequest, error) {
	sse := newSSEReader(r)
	var (
		dec        decoder
		evs        []Event
		turns      int
		gate       HitlRequest
		inTurnGate bool // a gate in the turn being read
		lastGate   bool // the last closed turn ended at a gate
		afterFinal bool // agent work arrived after the last final
	)
	for {
		fr, err := sse.next()
		if err != nil {
			return GateUnknown, HitlRequest{}, fmt.Errorf("gate state: history cut: %w", err)
		}
		if fr.kind != frameData {
			continue
		}
		var out outcome
		evs, out = dec.decode(fr.data, evs[:0])
		if out == frameDone {
			break
		}
		for _, ev := range evs {
			switch e := ev.(type) {
			case HitlRequest:
				gate, inTurnGate, afterFinal = e, true, true
			case Final:
				turns++
				lastGate, inTurnGate, afterFinal = inTurnGate, false, false
			case Status, ToolCall, ToolResult, Token, Plan:
				afterFinal = true
			}
			// Other events are not work of a new turn: usage and error
			// records may be bookkeeping of the turn just closed, and taking
			// them for a new turn would hide a pending gate.
		}
	}
	switch {
	case afterFinal: // a turn is still being written
		if inTurnGate {
			return GatePending, gate, nil
		}
		return GateNone, HitlRequest{}, nil
	case turns == 0:
		return GateUnknown, HitlRequest{}, nil
	case lastGate:
		return GatePending, gate, nil
	default:
		return GateNone, HitlRequest{}, nil
	}
}
