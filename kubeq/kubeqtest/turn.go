package kubeqtest

import (
	"context"
	"errors"
	"net/http"
	"time"
)

var (
	// errGone ends a turn whose client went away or whose server closed.
	errGone = errors.New("kubeqtest: client gone")
	// errStolen ends a turn whose session a concurrent turn took over.
	errStolen = errors.New("kubeqtest: session taken by a concurrent turn")
)

type turnEnd int

const (
	endNormal turnEnd = iota // usage, stop, [DONE]
	endPaused                // a gate paused the turn: usage, stop, [DONE]
	endFatal                 // [DONE] only
	endNoDone                // nothing more, clean end of the response
	endAbort                 // drop the connection
)

// turn writes one chat response. It is used by one handler goroutine only.
type turn struct {
	srv      *Server
	released bool // the session claim was given back (under srv.mu)
	ctx      context.Context
	w        http.ResponseWriter
	rc       *http.ResponseController
	id       string // chatcmpl-<12 hex>, shared by every chunk of the turn
	session  *session
	req      *Request

	sep         string // "\n\n" or "\r\n\r\n"
	frameDelay  time.Duration
	autoApprove bool
	stolen      <-chan struct{} // closed when a concurrent turn took the session (hang mode)

	cutAfter int  // drop the connection mid-frame after this many frames (0: never)
	noDone   bool // leave out [DONE]
	frames   int
	gone     bool // the client went away (a failed write or a cancelled request)

	lastWrite time.Time
	usage     [4]int
	end       turnEnd
}

func (t *turn) created() int64 { return t.srv.now().Unix() }

func (t *turn) chunkBytes(delta Obj, finish any, extra Obj) []byte {
	choice := Obj{{"index", 0}, {"delta", delta}, {"finish_reason", finish}}
	choice = append(choice, extra...)
	return []byte("data: " + PyJSON(Obj{
		{"id", t.id}, {"object", "chat.completion.chunk"}, {"created", t.created()},
		{"model", "kubeintellect"}, {"choices", []Obj{choice}},
	}))
}

// chunk writes a content chunk. finish is nil (null) or "stop".
func (t *turn) chunk(delta Obj, finish any, extra Obj) error {
	return t.writeFrame(t.chunkBytes(delta, finish, extra))
}

func (t *turn) kiEvent(ev Obj) error {
	return t.writeFrame([]byte("data: " + PyJSON(Obj{
		{"id", t.id}, {"object", "chat.completion.chunk"}, {"created", t.created()},
		{"model", "kubeintellect"}, {"ki_event", ev}, {"choices", []any{}},
	})))
}

func (t *turn) token(s string) error {
	t.record(Obj{{"type", "token"}, {"content", s}})
	return t.chunk(Obj{{"content", s}, {"role", "assistant"}}, nil, nil)
}

func (t *turn) toolCall(tool, command string) error {
	msg := "Calling " + tool
	var cmd any
	if command != "" {
		msg = "Running: " + command
		cmd = command
	}
	t.record(Obj{{"type", "tool_call"}, {"tool", tool}, {"command", cmd}})
	return t.kiEvent(Obj{{"type", "tool_call"}, {"tool", tool}, {"message", msg}})
}

func (t *turn) toolResult(tool, output string) error {
	if r := []rune(output); len(r) > 500 {
		output = string(r[:500])
	}
	t.record(Obj{{"type", "tool_result"}, {"tool", tool}, {"output", output}})
	return t.kiEvent(Obj{{"type", "tool_result"}, {"tool", tool}, {"output", output}})
}

func (t *turn) heartbeat() error {
	return t.writeRaw([]byte(": heartbeat" + t.sep))
}

// writeFrame writes one SSE frame (adding the separator) after the
// per-frame delay.
func (t *turn) writeFrame(b []byte) error {
	if t.frameDelay > 0 {
		if err := t.wait(t.frameDelay, nil); err != nil {
			return err
		}
	}
	if t.cutAfter > 0 && t.frames >= t.cutAfter {
		if err := t.writeRaw(b[:len(b)/2]); err != nil {
			return err
		}
		return errAbort
	}
	t.frames++
	return t.writeRaw(append(b, t.sep...))
}

func (t *turn) writeRaw(b []byte) error {
	if err := t.alive(); err != nil {
		return err
	}
	if _, err := t.w.Write(b); err != nil {
		t.gone = true
		return errGone
	}
	if err := t.rc.Flush(); err != nil {
		t.gone = true
		return errGone
	}
	t.lastWrite = time.Now()
	return nil
}

func (t *turn) alive() error {
	select {
	case <-t.ctx.Done():
		t.gone = true
		return errGone
	case <-t.srv.done:
		return errGone
	default:
		return nil
	}
}

// wait pauses for d (d < 0: until release fires), writing a heartbeat each
// time the heartbeat interval passes without a write.
func (t *turn) wait(d time.Duration, release <-chan struct{}) error {
	var deadline <-chan time.Time
	if d >= 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		deadline = timer.C
	}
	for {
		hb := time.NewTimer(time.Until(t.lastWrite.Add(t.srv.opts.heartbeat)))
		if t.srv.opts.heartbeat <= 0 { // heartbeats off
			hb.Stop()
		}
		select {
		case <-deadline:
			hb.Stop()
			return nil
		case <-release:
			hb.Stop()
			return nil
		case <-t.ctx.Done():
			hb.Stop()
			t.gone = true
			return errGone
		case <-t.srv.done:
			hb.Stop()
			return errGone
		case <-t.stolen:
			hb.Stop()
			return errStolen
		case <-hb.C:
			if err := t.heartbeat(); err != nil {
				return err
			}
		}
	}
}

// record appends a flat wire.py event to the session's replay history.
func (t *turn) record(ev Obj) {
	t.srv.appendHistory(t.session, append(ev, KV{"session_id", t.session.id}, KV{"ts", float64(t.srv.now().UnixMilli()) / 1000}))
}

// run writes the handshake, the script and the end of the turn.
func (t *turn) run(script Script) {
	hs := "data: " + PyJSON(Obj{{"protocol_version", "1.0"}, {"object", "stream.start"}, {"session_id", t.session.id}})
	err := t.writeFrame([]byte(hs))
	for _, step := range script {
		if err != nil {
			break
		}
		err = step.write(t)
		if err == nil && t.isStolen() {
			err = errStolen
		}
		if errors.Is(err, errStolen) {
			// The real server's queue was replaced by a concurrent turn:
			// this stream only ever sees heartbeats again.
			t.stolen = nil
			_ = t.wait(-1, nil)
			return
		}
		if t.end != endNormal {
			break
		}
	}
	if err == nil {
		err = t.finish()
	}
	if errors.Is(err, errAbort) || t.srv.closed() {
		panic(http.ErrAbortHandler) // a killed server drops its connections
	}
}

// finish writes the end of the turn that t.end asks for.
func (t *turn) finish() error {
	switch t.end {
	case endAbort:
		return errAbort
	case endNoDone:
		return nil
	case endNormal, endPaused:
		t.record(Obj{{"type", "final"}})
		if t.srv.opts.usageFrame {
			if err := t.kiEvent(t.usageEvent()); err != nil {
				return err
			}
		}
		if err := t.chunk(Obj{}, "stop", nil); err != nil {
			return err
		}
	}
	if t.noDone {
		return nil
	}
	// The real server's stream loop has exited when it yields [DONE], so a
	// client may start the next turn as soon as it reads it.
	t.srv.releaseSession(t)
	if err := t.writeFrame([]byte("data: [DONE]")); err != nil {
		return err
	}
	t.srv.markFinished(t.req)
	return nil
}

func (t *turn) isStolen() bool {
	select {
	case <-t.stolen:
		return true
	default:
		return false
	}
}

func (t *turn) usageEvent() Obj {
	u := t.usage
	ev := Obj{{"type", "usage"}, {"prompt_tokens", u[0]}, {"completion_tokens", u[1]}, {"total_tokens", u[2]}, {"llm_calls", u[3]}}
	if t.srv.opts.usageSessionTS {
		ev = append(ev, KV{"session_id", t.session.id}, KV{"ts", float64(t.srv.now().UnixMilli()) / 1000})
	}
	return ev
}
