package kubeq

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Result is a whole turn aggregated by Query.
type Result struct {
	Conversation  string
	Answer        string       // all Token contents concatenated, byte-exact
	Hitl          *HitlRequest // the gate the turn ended at, if any
	Usage         *Usage       // nil when the backend sent no usage frame
	ToolCalls     []ToolCall
	Errors        []Error // in-band errors (fatal ones too)
	DroppedFrames int
	UnknownFrames int
	Elapsed       time.Duration
}

// Query runs one turn and aggregates it. The Result is never nil: on an
// error it holds what arrived before it (the partial answer included).
//
// A fatal in-band error (ki_event error, fatal:true) is read through to
// [DONE] and returned as *FatalError. Answer still holds the text that
// arrived (usually ending in "[Error: …]"); the protocol says such a partial
// answer must be discarded, so show it as diagnostics, never as the answer.
// A mid-turn "**Error:**" chunk is answer text, not an error: the backend
// recovered and the turn goes on.
func (c *Client) Query(ctx context.Context, t Turn) (*Result, error) {
	if t.Conversation == "" {
		t.Conversation = NewConversationID()
	}
	start := time.Now()
	r := &Result{Conversation: t.Conversation}
	var answer strings.Builder
	var fatal *FatalError
	finish := func(err error) (*Result, error) {
		r.Answer, r.Elapsed = answer.String(), time.Since(start)
		var ie *InterruptedError
		if errors.As(err, &ie) {
			r.DroppedFrames = ie.DroppedFrames
		}
		return r, err
	}
	for ev, err := range c.Stream(ctx, t) {
		if err != nil {
			return finish(err)
		}
		switch e := ev.(type) {
		case Token:
			answer.WriteString(e.Content)
		case HitlRequest:
			r.Hitl = &e
		case Usage:
			r.Usage = &e
		case ToolCall:
			r.ToolCalls = append(r.ToolCalls, e)
		case Error:
			r.Errors = append(r.Errors, e)
			if e.Fatal && fatal == nil {
				fatal = &FatalError{Message: e.Message}
			}
		case End:
			r.DroppedFrames, r.UnknownFrames = e.DroppedFrames, e.UnknownFrames
		}
	}
	if fatal != nil {
		return finish(fatal)
	}
	return finish(nil)
}
