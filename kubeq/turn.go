package kubeq

import (
	"io"
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
	var st turnStats
	sse := newSSEReader(body)
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
