package e2etest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"
)

// wireLog watches the JSON-RPC messages the server writes, in wire order,
// and counts for each call the progress notifications that came before and
// after its result. Calls run one at a time: a result seen while call c is
// current is c's result.
type wireLog struct {
	mu       sync.Mutex
	current  string          // progress token of the call in flight
	returned map[string]bool // tokens whose result was seen
	before   map[string]int
	after    map[string]int
	tokens   map[string]*bytes.Buffer // answer text streamed as progress, before the result
	steps    map[string][]string      // all progress messages before the result
}

func newWireLog() *wireLog {
	return &wireLog{
		returned: map[string]bool{}, before: map[string]int{}, after: map[string]int{},
		tokens: map[string]*bytes.Buffer{}, steps: map[string][]string{},
	}
}

func (w *wireLog) start(token string) {
	w.mu.Lock()
	w.current = token
	w.mu.Unlock()
}

// message records one JSON-RPC message from the server.
func (w *wireLog) message(line []byte) {
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Result json.RawMessage `json:"result"`
		Params struct {
			Token   any    `json:"progressToken"`
			Message string `json:"message"`
		} `json:"params"`
	}
	if json.Unmarshal(line, &m) != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case m.Method == "notifications/progress":
		tok, _ := m.Params.Token.(string)
		if w.returned[tok] {
			w.after[tok]++
			return
		}
		w.before[tok]++
		w.steps[tok] = append(w.steps[tok], m.Params.Message)
	case m.Method == "" && len(m.ID) > 0 && m.Result != nil && w.current != "":
		w.returned[w.current] = true
	}
}

// feed splits a byte stream into lines and records each JSON message,
// unwrapping SSE "data:" lines.
func (w *wireLog) feed(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := bytes.TrimPrefix(sc.Bytes(), []byte("data:"))
		line = bytes.TrimSpace(line)
		if len(line) > 0 && line[0] == '{' {
			w.message(line)
		}
	}
}

// tee returns a reader that passes r through and records what it reads.
func (w *wireLog) tee(r io.ReadCloser) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() { w.feed(pr); _, _ = io.Copy(io.Discard, pr) }()
	return readCloser{Reader: io.TeeReader(r, pw), close: func() error { pw.Close(); return r.Close() }}
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// httpClient records every response body the server sends.
func (w *wireLog) httpClient() *http.Client {
	return &http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		res, err := http.DefaultTransport.RoundTrip(req)
		if err == nil && res.Body != nil {
			res.Body = w.tee(res.Body)
		}
		return res, err
	})}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// waitResult waits until the wire showed token's result (the recorder can
// lag the client by a read), at most limit.
func (w *wireLog) waitResult(token string, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		w.mu.Lock()
		ok := w.returned[token]
		w.mu.Unlock()
		if ok || time.Now().After(deadline) {
			return ok
		}
		time.Sleep(200 * time.Microsecond)
	}
}
