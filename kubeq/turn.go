package kubeq

import (
	"io"
	"strings"
)

// turnStats is the bookkeeping of one response body.
type turnStats struct {
	Frames  int  // complete frames read (data, comment or oversized)
	Events  int  // typed events yielded
	Dropped int  // malformed or oversized frames skipped
	Unknown int  // well-formed frames of unknown kind skipped
	Done    bool // [DONE] seen and End yielded
	Stopped bool // the consumer stopped early
}

// readTurn reads one SSE body and yields its typed events until [DONE]
// (yielding end, with the counts filled in), EOF, a read error or the
// consumer's stop. It returns nil after [DONE] or a stop;
// io.ErrUnexpectedEOF when the input ended without [DONE]; or the read error.
func readTurn(body io.Reader, end End, yield func(Event) bool) (turnStats, error) {
	return readTurnFrom(newSSEReader(body), end, yield)
}

// readTurnFrom is readTurn on a reader of the body.
func readTurnFrom(sse *sseReader, end End, yield func(Event) bool) (turnStats, error) {
	var st turnStats
	var v2 v2Fatal
	var dec decoder
	evs := make([]Event, 0, maxEventsPerFrame)
	for {
		f, err := sse.next()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // only [DONE] ends a turn
			}
			return st, err
		}
		st.Frames++
		evs = evs[:0]
		switch f.kind {
		case frameComment:
			evs = append(evs, Heartbeat{})
		case frameOversized:
			st.Dropped++
		case frameData:
			var o outcome
			evs, o = dec.decode(f.data, evs)
			switch o {
			case frameDone:
				if e, ok := v2.error(); ok {
					evs = append(evs, e)
				}
				end.DroppedFrames, end.UnknownFrames = st.Dropped, st.Unknown
				evs = append(evs, end)
				st.Done = true
			case frameUnknown:
				st.Unknown++
			case frameBad:
				st.Dropped++
			}
		}
		for _, e := range evs {
			v2.see(e)
			st.Events++
			if !yield(e) {
				st.Stopped = true
				return st, nil
			}
		}
		if st.Done {
			return st, nil
		}
	}
}

// v2Fatal recognises an older (V2) server's fatal error. A current server
// sends a fatal error event, then the content chunk "\n\n[Error: <msg>]",
// stop and [DONE]; V2 sends only the chunk. A turn whose last content is
// exactly that chunk, with no fatal event, gets the fatal Error it implies,
// so callers treat both servers alike.
type v2Fatal struct {
	fatalSeen bool
	matched   bool   // the last content was a "[Error: …]" chunk
	message   string // its message, which may be empty (Python prints "" for some exceptions)
}

const v2ErrorPrefix, v2ErrorSuffix = "\n\n[Error: ", "]"

func (v *v2Fatal) see(e Event) {
	switch e := e.(type) {
	case Error:
		v.fatalSeen = v.fatalSeen || e.Fatal
	case Token:
		v.matched = len(e.Content) >= len(v2ErrorPrefix)+len(v2ErrorSuffix) &&
			strings.HasPrefix(e.Content, v2ErrorPrefix) && strings.HasSuffix(e.Content, v2ErrorSuffix)
		v.message = ""
		if v.matched {
			v.message = e.Content[len(v2ErrorPrefix) : len(e.Content)-len(v2ErrorSuffix)]
		}
	case Heartbeat, Usage, End:
	default:
		v.matched = false // the error chunk must be the last thing the agent said
	}
}

// error is the fatal Error to add before End, if the turn ended the V2 way.
func (v *v2Fatal) error() (Error, bool) {
	if v.fatalSeen || !v.matched {
		return Error{}, false
	}
	return Error{Message: v.message, Fatal: true}, true
}
