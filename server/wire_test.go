package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
)

// wireLog records the JSON-RPC messages a client reads, in the order it
// reads them off the wire. The go-sdk client runs notification handlers on
// their own goroutine, so handler order cannot tell whether progress came
// before the result; the wire can.
type wireLog struct {
	mu   sync.Mutex
	msgs []wireMsg
}

type wireMsg struct {
	Method string
	Token  any
	Result bool // a response carrying a tool result
	Params map[string]any
}

func (w *wireLog) feed(line []byte) {
	var m struct {
		Method string          `json:"method"`
		Params map[string]any  `json:"params"`
		Result json.RawMessage `json:"result"`
	}
	if json.Unmarshal(line, &m) != nil {
		return
	}
	msg := wireMsg{Method: m.Method, Params: m.Params}
	if m.Params != nil {
		msg.Token = m.Params["progressToken"]
	}
	if len(m.Result) > 0 && bytes.Contains(m.Result, []byte(`"content"`)) {
		msg.Result = true
	}
	w.mu.Lock()
	w.msgs = append(w.msgs, msg)
	w.mu.Unlock()
}

// progressBeforeResult counts the progress notifications for token that
// were read before, and after, the first tool result that follows them.
func (w *wireLog) progressBeforeResult(token string) (before, after int, sawResult bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	started := false
	for _, m := range w.msgs {
		if m.Method == "notifications/progress" && m.Token == token {
			started = true
			if sawResult {
				after++
			} else {
				before++
			}
			continue
		}
		if started && m.Result && !sawResult {
			sawResult = true
		}
	}
	return before, after, sawResult
}

// lineSplitter feeds every complete line of what passes through it.
type lineSplitter struct {
	buf  []byte
	emit func([]byte)
}

func (s *lineSplitter) write(p []byte) {
	s.buf = append(s.buf, p...)
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			return
		}
		s.emit(bytes.TrimRight(s.buf[:i], "\r"))
		s.buf = s.buf[i+1:]
	}
}

// stdioReader records the lines a stdio client reads.
func (w *wireLog) stdioReader(r io.Reader) io.Reader {
	ls := &lineSplitter{emit: w.feed}
	return readerFunc(func(p []byte) (int, error) {
		n, err := r.Read(p)
		ls.write(p[:n])
		return n, err
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// httpClient records the SSE data lines and JSON bodies an HTTP client
// reads.
func (w *wireLog) httpClient() *http.Client {
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			return resp, err
		}
		sse := resp.Header.Get("Content-Type") == "text/event-stream"
		ls := &lineSplitter{emit: func(line []byte) {
			if sse {
				if data, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
					w.feed(data)
				}
				return
			}
			w.feed(line)
		}}
		body := resp.Body
		resp.Body = readCloser{readerFunc(func(p []byte) (int, error) {
			n, err := body.Read(p)
			ls.write(p[:n])
			if err == io.EOF && !sse && len(ls.buf) > 0 {
				w.feed(ls.buf)
				ls.buf = nil
			}
			return n, err
		}), body}
		return resp, nil
	})}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type readCloser struct {
	io.Reader
	io.Closer
}

// assertProgressBeforeResult fails unless every progress notification of
// token was read before the call's result.
func assertProgressBeforeResult(t *testing.T, w *wireLog, token string, min int) {
	t.Helper()
	before, after, saw := w.progressBeforeResult(token)
	if !saw || after > 0 || before < min {
		t.Errorf("progress for %s: %d before the result, %d after (result seen: %v); want at least %d, all before",
			token, before, after, saw, min)
	}
}

// methods lists the methods of the messages read so far.
func (w *wireLog) methods() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, len(w.msgs))
	for i, m := range w.msgs {
		out[i] = m.Method
	}
	return out
}
