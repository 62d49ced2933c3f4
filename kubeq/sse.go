package kubeq

import (
	"bytes"
	"errors"
	"io"
	"sync"
)

// The SSE reader: bytes in, frames out. It knows the SSE line format and
// nothing about KubeIntellect (decode.go does that).
//
// Rules (WHATWG SSE, trimmed to what a client of this protocol needs):
//   - a line ends at "\n", "\r\n" or a lone "\r";
//   - a blank line ends a frame;
//   - "data:" lines are joined with "\n" (one space after the colon dropped);
//   - lines starting with ":" are comments; a frame of comments only is a
//     keep-alive (the server's ": heartbeat");
//   - other fields (event, id, retry) are ignored;
//   - a frame larger than maxFrame is skipped (reported as oversized), and
//     memory stays bounded while it is skipped;
//   - EOF in the middle of a frame drops that frame: the stream was cut.
//     One exception: a frame whose data is exactly [DONE] is dispatched at
//     EOF even without its blank line or final newline (see next).

// maxFrame caps one frame's data. Real frames are a few KB (1 MB ones must
// parse); anything near this is garbage or an attack.
const maxFrame = 8 << 20

// maxLine is the longest line kept: a data line whose data alone fills a
// frame. A longer line is dropped as it is read, so the buffer never
// outgrows maxLine+1 bytes.
const maxLine = len("data: ") + maxFrame

const initialBuf = 4 << 10 // grows by doubling; most frames are a few hundred bytes

type frameKind int

const (
	frameData      frameKind = iota + 1 // data holds the joined data lines
	frameComment                        // comment lines only: a keep-alive
	frameOversized                      // data exceeded maxFrame; skipped
)

// frame is valid until the next call to next.
type frame struct {
	kind frameKind
	data []byte
}

type sseReader struct {
	src    io.Reader
	buf    []byte // buf[r:w] is unread input
	r, w   int
	err    error // sticky error from src
	skipLF bool  // the last line ended in "\r": a following "\n" belongs to it
	cut    bool  // the input ended inside a line
	skip   bool  // inside a line too long to keep: drop input up to its end
	start  bool  // a leading UTF-8 BOM has been checked for

	data     []byte // joined data lines of the current frame
	hasData  bool
	comments bool
	oversize bool
}

func newSSEReader(src io.Reader) *sseReader {
	return &sseReader{src: src, buf: make([]byte, initialBuf)}
}

// readerPool keeps the readers of finished turns, so the next turn reads
// into their buffers instead of allocating its own. Only readers whose
// buffers did not grow are kept: a turn with huge frames does not make
// every later turn hold that much.
type readerPool struct{ p sync.Pool }

// maxPooledData is the largest frame buffer kept for reuse.
const maxPooledData = 16 << 10

func (rp *readerPool) get(src io.Reader) *sseReader {
	if s, ok := rp.p.Get().(*sseReader); ok {
		*s = sseReader{src: src, buf: s.buf, data: s.data[:0]}
		return s
	}
	return newSSEReader(src)
}

// put keeps s for a later turn; s must not be used after.
func (rp *readerPool) put(s *sseReader) {
	if len(s.buf) != initialBuf || cap(s.data) > maxPooledData {
		return
	}
	*s = sseReader{buf: s.buf, data: s.data[:0]}
	rp.p.Put(s)
}

// next returns the next complete frame. At the end of input it returns
// io.EOF when the input ended on a frame boundary, io.ErrUnexpectedEOF when
// it ended inside a frame, or the reader's error.
func (s *sseReader) next() (frame, error) {
	for {
		line, err := s.readLine()
		if err != nil {
			if err == io.EOF && (s.hasData || s.comments || s.oversize || s.cut) {
				// The SSE spec drops a frame cut by EOF, and so do we, with
				// one exception: data that is exactly [DONE] (the check
				// decode makes). A server that closes right after it, with
				// no blank line or no newline, has finished the turn; [DONE]
				// is no prefix of anything else the protocol sends. Any
				// other cut frame, such as half-written JSON, is dropped.
				if s.hasData && !s.oversize && bytes.Equal(bytes.TrimSpace(s.data), doneMarker) {
					f, _ := s.dispatch()
					s.cut = false // the cut line is used up: the next call reports io.EOF
					return f, nil
				}
				err = io.ErrUnexpectedEOF
			}
			return frame{}, err
		}
		if len(line) == 0 {
			if f, ok := s.dispatch(); ok {
				return f, nil
			}
			continue
		}
		s.field(line)
	}
}

func (s *sseReader) dispatch() (frame, bool) {
	defer func() {
		s.data, s.hasData, s.comments, s.oversize = s.data[:0], false, false, false
	}()
	switch {
	case s.oversize:
		return frame{kind: frameOversized}, true
	case s.hasData:
		return frame{kind: frameData, data: s.data}, true
	case s.comments:
		return frame{kind: frameComment}, true
	}
	return frame{}, false // blank lines or ignored fields only
}

var dataField = []byte("data")

func (s *sseReader) field(line []byte) {
	if line[0] == ':' {
		s.comments = true
		return
	}
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	if !bytes.Equal(name, dataField) || s.oversize {
		return
	}
	extra := len(value)
	if s.hasData {
		extra++
	}
	if len(s.data)+extra > maxFrame {
		s.oversize, s.data = true, s.data[:0]
		return
	}
	if s.hasData {
		s.data = append(s.data, '\n')
	}
	s.data = append(s.data, value...)
	s.hasData = true
}

// readLine returns the next line without its terminator; the slice is valid
// until the next call. At EOF a last unterminated line is returned too (and
// s.cut set), so that next can see a [DONE] the server did not terminate.
// A line longer than maxLine is dropped while it is read and marks its
// frame oversized; its end is not a line of its own.
func (s *sseReader) readLine() ([]byte, error) {
	scanned := 0 // bytes of buf[r:w] already known to hold no terminator
	for {
		if !s.start {
			if s.w-s.r < 3 && s.err == nil {
				s.fill()
				continue
			}
			s.start = true
			s.r += bomLen(s.buf[s.r:s.w])
		}
		if s.skipLF && s.r < s.w {
			s.skipLF = false
			if s.buf[s.r] == '\n' {
				s.r++
			}
		}
		if s.skip {
			if i := lineEnd(s.buf[s.r:s.w]); i >= 0 {
				s.skipLF = s.buf[s.r+i] == '\r'
				s.r += i + 1
				s.skip = false
				continue
			}
			s.r = s.w
			if s.err != nil {
				return nil, s.err // EOF here is inside the oversized frame: next reports it
			}
			s.fill()
			continue
		}
		if i := lineEnd(s.buf[s.r+scanned : s.w]); i >= 0 {
			end := s.r + scanned + i
			line := s.buf[s.r:end]
			s.skipLF = s.buf[end] == '\r'
			s.r = end + 1
			return line, nil
		}
		scanned = s.w - s.r
		if s.err != nil {
			if scanned > 0 {
				line := s.buf[s.r:s.w]
				s.r = s.w
				if s.err == io.EOF {
					s.cut = true
					return line, nil
				}
				return nil, s.err // the cause of the break (a reset, say), not a mere EOF
			}
			return nil, s.err
		}
		if scanned > maxLine {
			// Too long to keep: drop what we hold and, until its end, the
			// rest of the line; the whole frame is lost, whatever follows.
			s.oversize, s.data = true, s.data[:0]
			s.skip = true
			s.r, s.w, scanned = 0, 0, 0
			continue
		}
		s.fill()
	}
}

// lineEnd finds the first "\n" or "\r" in b (two fast scans, since "\r" is rare).
func lineEnd(b []byte) int {
	n := bytes.IndexByte(b, '\n')
	limit := b
	if n >= 0 {
		limit = b[:n]
	}
	if c := bytes.IndexByte(limit, '\r'); c >= 0 {
		return c
	}
	return n
}

func bomLen(b []byte) int {
	if len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF {
		return 3
	}
	return 0
}

// fill reads more input, compacting or growing the buffer as needed.
func (s *sseReader) fill() {
	if s.r > 0 {
		n := copy(s.buf, s.buf[s.r:s.w])
		s.r, s.w = 0, n
	}
	if s.w == len(s.buf) {
		// readLine drops a line before it outgrows maxLine+1 bytes, so
		// this size always has room for one more byte.
		grown := make([]byte, min(2*len(s.buf), maxLine+1))
		copy(grown, s.buf[:s.w])
		s.buf = grown
	}
	for range 100 { // io.Reader may return 0, nil; don't spin forever
		n, err := s.src.Read(s.buf[s.w:])
		s.w += n
		if err != nil {
			s.err = err
			if errors.Is(err, io.EOF) {
				s.err = io.EOF
			}
			return
		}
		if n > 0 {
			return
		}
	}
	s.err = io.ErrNoProgress
}
