package kubeq

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// frames reads every frame of input, rendering each as kind:data.
func frames(t *testing.T, r io.Reader) ([]string, error) {
	t.Helper()
	s := newSSEReader(r)
	var out []string
	for {
		f, err := s.next()
		if err != nil {
			return out, err
		}
		switch f.kind {
		case frameData:
			out = append(out, "data:"+string(f.data))
		case frameComment:
			out = append(out, "comment")
		case frameOversized:
			out = append(out, "oversized")
		}
	}
}

func TestSSELineEndings(t *testing.T) {
	want := []string{"data:a", "data:b", "comment", "data:c"}
	for name, in := range map[string]string{
		"LF":      "data: a\n\ndata: b\n\n: heartbeat\n\ndata: c\n\n",
		"CRLF":    "data: a\r\n\r\ndata: b\r\n\r\n: heartbeat\r\n\r\ndata: c\r\n\r\n",
		"CR":      "data: a\r\rdata: b\r\r: heartbeat\r\rdata: c\r\r",
		"mixed":   "data: a\r\n\ndata: b\n\r\n: heartbeat\r\rdata: c\n\n",
		"BOM":     "\xEF\xBB\xBFdata: a\n\ndata: b\n\n: heartbeat\n\ndata: c\n\n",
		"extra":   "\n\n\ndata: a\n\nevent: x\nid: 1\n\ndata: b\n\n: heartbeat\n\nretry: 5\ndata: c\n\n",
		"nospace": "data:a\n\ndata:b\n\n:heartbeat\n\ndata:c\n\n",
	} {
		t.Run(name, func(t *testing.T) {
			for _, r := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in))} {
				got, err := frames(t, r)
				require.ErrorIs(t, err, io.EOF)
				require.Equal(t, want, got)
			}
		})
	}
}

func TestSSEMultiLineDataAndComments(t *testing.T) {
	got, err := frames(t, strings.NewReader("data: one\n: a comment\ndata: two\ndata\ndata:  three\n\n"))
	require.ErrorIs(t, err, io.EOF)
	// "data" alone appends an empty line; only one leading space is dropped.
	require.Equal(t, []string{"data:one\ntwo\n\n three"}, got)
}

func TestSSEEndOfInput(t *testing.T) {
	for in, want := range map[string]error{
		"":                      io.EOF,
		"data: a\n\n":           io.EOF,
		"data: a\n":             io.ErrUnexpectedEOF, // frame never closed
		"data: a":               io.ErrUnexpectedEOF, // line never closed
		"data: a\n\n: hb\n":     io.ErrUnexpectedEOF,
		"data: a\n\ndata: {\"x": io.ErrUnexpectedEOF,
		"\xEF\xBB":              io.ErrUnexpectedEOF, // two bytes of a BOM, then nothing
	} {
		_, err := frames(t, strings.NewReader(in))
		require.ErrorIs(t, err, want, "input %q", in)
	}
}

// A server that closes right after "data: [DONE]", without the blank line
// or even the newline, has still finished the turn. Any other frame cut by
// EOF is dropped and the turn reads as interrupted.
func TestSSEDoneAtEOF(t *testing.T) {
	for _, tail := range []string{"data: [DONE]", "data: [DONE]\n", "data: [DONE]\r\n", "data: [DONE]\r", "data:[DONE]\n"} {
		in := start("s") + contentChunk("ok") + tail
		for _, r := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in))} {
			var evs []Event
			st, err := readTurn(r, End{}, func(e Event) bool { evs = append(evs, e); return true })
			require.NoError(t, err, "tail %q", tail)
			require.True(t, st.Done, "tail %q", tail)
			require.Equal(t, []Event{Handshake{ProtocolVersion: "1.0", SessionID: "s"}, Token{Content: "ok"}, End{}}, evs, "tail %q", tail)
		}
	}
	for _, tail := range []string{
		strings.TrimSuffix(contentChunk("cut"), "\n"), // complete JSON, frame not closed
		strings.TrimSuffix(contentChunk("cut"), "\n\n"),
		"data: [DONE",
		"data: [DONE]\ndata: more\n",
		": heartbeat\n",
		"event: x",
	} {
		in := start("s") + tail
		var evs []Event
		st, err := readTurn(strings.NewReader(in), End{}, func(e Event) bool { evs = append(evs, e); return true })
		require.ErrorIs(t, err, io.ErrUnexpectedEOF, "tail %q", tail)
		require.False(t, st.Done, "tail %q", tail)
		require.Equal(t, []Event{Handshake{ProtocolVersion: "1.0", SessionID: "s"}}, evs, "tail %q: a cut frame is not delivered", tail)
	}
}

func TestSSEDoneAtEOFThenEOF(t *testing.T) {
	s := newSSEReader(strings.NewReader("data: [DONE]"))
	f, err := s.next()
	require.NoError(t, err)
	require.Equal(t, "[DONE]", string(f.data))
	_, err = s.next()
	require.Equal(t, io.EOF, err, "the input is used up, on a frame boundary")
}

func TestQueryDoneWithoutFinalNewline(t *testing.T) {
	b := newBackend(t, serveSSE([]byte(start("s")+contentChunk("ok")+"data: [DONE]")))
	res, err := newClient(t, b.URL, WithRetryDelays()).Query(testCtx(t), Turn{Question: "q"})
	require.NoError(t, err)
	require.Equal(t, "ok", res.Answer)
}

// A read error is the cause of the break, wherever in the input it comes:
// between frames, inside a frame, or inside a line.
func TestSSEReadErrorIsReturned(t *testing.T) {
	boom := io.ErrClosedPipe
	for _, in := range []string{"data: a\n\n", "data: a\n\ndata: b\n", "data: a\n\ndata: {\"b", "data: a\n\n: hb"} {
		got, err := frames(t, io.MultiReader(strings.NewReader(in), iotest.ErrReader(boom)))
		require.ErrorIs(t, err, boom, "input %q", in)
		require.Equal(t, []string{"data:a"}, got, "input %q", in)
	}
}

func TestSSEOneMegabyteFrame(t *testing.T) {
	content := strings.Repeat("x", 1<<20)
	in := start("s") + contentChunk(content) + "data: [DONE]\n\n"
	var got string
	st, err := readTurn(strings.NewReader(in), End{}, func(e Event) bool {
		if tok, ok := e.(Token); ok {
			got += tok.Content
		}
		return true
	})
	require.NoError(t, err)
	require.True(t, st.Done)
	require.Equal(t, content, got)
}

// The cap is on a frame's data, not on its lines: "data: " and the joining
// newlines do not count.
func TestSSEFrameOfMaxFrameBytesParses(t *testing.T) {
	x := strings.Repeat("x", maxFrame)
	for name, tc := range map[string]struct{ in, data string }{
		"one line":          {"data: " + x + "\n\n", x},
		"no space":          {"data:" + x + "\n\n", x},
		"just under":        {"data: " + x[3:] + "\n\n", x[3:]},
		"two lines":         {"data: " + x[1:] + "\ndata:\n\n", x[1:] + "\n"},
		"CRLF":              {"data: " + x + "\r\n\r\n", x},
		"with comment line": {": c\ndata: " + x + "\n\n", x},
	} {
		s := newSSEReader(strings.NewReader(tc.in))
		f, err := s.next()
		require.NoError(t, err, name)
		require.Equal(t, frameData, f.kind, name)
		require.Equal(t, len(tc.data), len(f.data), name)
		require.True(t, string(f.data) == tc.data, name)
	}
}

func TestSSEOversizedFrameIsSkippedAndCounted(t *testing.T) {
	huge := strings.Repeat("y", maxFrame+10)
	ghost := `data: {"type": "token", "content": "ghost"}`
	for name, in := range map[string]string{
		"one line":       "data: " + huge + "\n\n",
		"many lines":     strings.Repeat("data: "+strings.Repeat("z", 1<<20)+"\n", 9) + "\n",
		"one byte over":  "data: " + huge[:maxFrame+1] + "\n\n",
		"two lines over": "data: " + huge[:maxFrame] + "\ndata: y\n\n",
		// Lines the reader drops whole (the buffer is full of them before
		// their terminator arrives): the rest of the frame is dropped too.
		"long line, LF":           "data: " + huge[:maxFrame+1] + "\n" + ghost + "\n\n",
		"long line, CRLF":         "data: " + huge[:maxFrame+1] + "\r\n" + ghost + "\r\n\r\n",
		"long line, CR":           "data: " + huge[:maxFrame+1] + "\r" + ghost + "\r\r",
		"long comment":            ": " + huge + "\n" + ghost + "\n\n",
		"long line, then more":    "data: " + huge + "\n" + ghost + "\n" + ghost + "\n\n",
		"fitting line, then more": "data: " + huge[:maxFrame-6] + "\n" + ghost + "\n\n",
	} {
		t.Run(name, func(t *testing.T) {
			stream := start("s") + in + contentChunk("after") + "data: [DONE]\n\n"
			var evs []Event
			st, err := readTurn(strings.NewReader(stream), End{}, func(e Event) bool {
				evs = append(evs, e)
				return true
			})
			require.NoError(t, err)
			require.Equal(t, 1, st.Dropped)
			require.Equal(t, []Event{Handshake{ProtocolVersion: "1.0", SessionID: "s"}, Token{Content: "after"},
				End{DroppedFrames: 1}}, evs)
		})
	}
}

func TestSSEBufferStaysBounded(t *testing.T) {
	// A 20 MiB line without a terminator must not be held in memory whole.
	s := newSSEReader(io.MultiReader(strings.NewReader("data: "), bytes.NewReader(make([]byte, 20<<20))))
	_, err := s.next()
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.LessOrEqual(t, len(s.buf), maxLine+1)
}

func TestOnlyDoneEndsATurn(t *testing.T) {
	stop := `data: {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}` + "\n\n"
	in := start("s") + contentChunk("a") + stop + contentChunk("b") + stop
	var tokens []string
	st, err := readTurn(strings.NewReader(in), End{}, func(e Event) bool {
		if tok, ok := e.(Token); ok {
			tokens = append(tokens, tok.Content)
		}
		return true
	})
	require.ErrorIs(t, err, io.ErrUnexpectedEOF, "EOF without [DONE] is an interrupted turn")
	require.False(t, st.Done)
	require.Equal(t, []string{"a", "b"}, tokens, "finish_reason stop is not the end")
}

func TestNothingIsReadAfterDone(t *testing.T) {
	in := start("s") + "data: [DONE]\n\n" + contentChunk("late")
	var n int
	st, err := readTurn(strings.NewReader(in), End{}, func(Event) bool { n++; return true })
	require.NoError(t, err)
	require.True(t, st.Done)
	require.Equal(t, 2, n)
}

func TestConsumerStop(t *testing.T) {
	in := start("s") + contentChunk("a") + contentChunk("b") + "data: [DONE]\n\n"
	var n int
	st, err := readTurn(strings.NewReader(in), End{}, func(Event) bool { n++; return n < 2 })
	require.NoError(t, err)
	require.True(t, st.Stopped)
	require.Equal(t, 2, n)
}

func start(sid string) string {
	return `data: {"protocol_version": "1.0", "object": "stream.start", "session_id": "` + sid + `"}` + "\n\n"
}

func contentChunk(text string) string {
	return `data: {"id": "chatcmpl-000000000000", "object": "chat.completion.chunk", "created": 1, "model": "kubeintellect", "choices": [{"index": 0, "delta": {"content": "` +
		text + `", "role": "assistant"}, "finish_reason": null}]}` + "\n\n"
}

// A pooled reader starts clean: the next turn reads its own frames only,
// and a reader whose buffer grew for a huge frame is not kept.
func TestReaderPoolStartsClean(t *testing.T) {
	var rp readerPool
	first := rp.get(strings.NewReader("data: {\"type\": \"token\", \"content\": \"a\"}\n\ndata: cut"))
	_, err := readTurnFrom(first, End{}, func(Event) bool { return true })
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	rp.put(first)

	var evs []Event
	again := rp.get(strings.NewReader("data: {\"type\": \"token\", \"content\": \"b\"}\n\ndata: [DONE]\n\n"))
	st, err := readTurnFrom(again, End{}, func(e Event) bool { evs = append(evs, e); return true })
	require.NoError(t, err)
	assert.Equal(t, []Event{Token{Content: "b"}, End{}}, evs)
	assert.Equal(t, 2, st.Frames)

	huge := newSSEReader(strings.NewReader("data: " + strings.Repeat("x", 3*initialBuf) + "\n\n"))
	_, _ = readTurnFrom(huge, End{}, func(Event) bool { return true })
	require.Greater(t, len(huge.buf), initialBuf)
	rp.put(huge)
	for range 10 { // sync.Pool may drop what it holds, never hand back what it was not given
		got := rp.get(strings.NewReader(""))
		assert.Len(t, got.buf, initialBuf, "a grown reader was kept")
		rp.put(got)
	}
}
