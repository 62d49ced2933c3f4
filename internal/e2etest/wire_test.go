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
// after its result. A result belongs to the call whose request carried its
// id: both transports record the requests the client sends.
type wireLog struct {
	mu       sync.Mutex
	calls    map[string]string // JSON-RPC id of each tools/call the client sent → its progress token
	returned map[string]bool   // tokens whose result was seen
	before   map[string]int
	after    map[string]int
	tokens   map[string]*bytes.Buffer // answer text streamed as progress, before the result
	steps    map[string][]string      // all progress messages before the result
	getOK    int                      // standalone GET streams the server answered with 200
	pings    int                      // server-to-client ping requests
}

func newWireLog() *wireLog {
	return &wireLog{
		returned: map[string]bool{}, before: map[string]int{}, after: map[string]int{}, calls: map[string]string{},
		tokens: map[string]*bytes.Buffer{}, steps: map[string][]string{},
	}
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
	case m.Method == "ping":
		w.pings++
	case m.Method == "notifications/progress":
		tok, _ := m.Params.Token.(string)
		if w.returned[tok] {
			w.after[tok]++
			return
		}
		w.before[tok]++
		w.steps[tok] = append(w.steps[tok], m.Params.Message)
	case m.Method == "" && len(m.ID) > 0 && m.Result != nil:
		// Only the result whose id a tools/call carried counts. The
		// recorder parses each response body on its own goroutine, so the
		// answer to an earlier request (server/discover, tools/list) can be
		// parsed after the next call started: guessing "the call in flight"
		// once attributed that answer to call 0.
		if tok, ok := w.calls[string(m.ID)]; ok {
			w.returned[tok] = true
		}
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

// request notes the id of a tools/call request and its progress token.
func (w *wireLog) request(body []byte) {
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			Meta struct {
				Token any `json:"progressToken"`
			} `json:"_meta"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &m) != nil || m.Method != "tools/call" || len(m.ID) == 0 {
		return
	}
	if tok, ok := m.Params.Meta.Token.(string); ok {
		w.mu.Lock()
		w.calls[string(m.ID)] = tok
		w.mu.Unlock()
	}
}

// httpClient records every response body the server sends, and which
// request id each call used.
func (w *wireLog) httpClient() *http.Client {
	return &http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.Body != nil && req.Method == http.MethodPost {
			body, err := io.ReadAll(req.Body)
			_ = req.Body.Close()
			if err != nil {
				return nil, err
			}
			w.request(body)
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		res, err := http.DefaultTransport.RoundTrip(req)
		if err == nil && req.Method == http.MethodGet && res.StatusCode == http.StatusOK {
			w.mu.Lock()
			w.getOK++
			w.mu.Unlock()
		}
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

// requestWriter records the requests a stdio client writes, so results can
// be matched to their calls by id there too.
func (w *wireLog) requestWriter(dst io.WriteCloser) io.WriteCloser {
	return &lineRecorder{dst: dst, w: w}
}

type lineRecorder struct {
	dst io.WriteCloser
	w   *wireLog
	buf []byte
}

func (l *lineRecorder) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.w.request(l.buf[:i])
		l.buf = l.buf[i+1:]
	}
	return l.dst.Write(p)
}

func (l *lineRecorder) Close() error { return l.dst.Close() }

// getStreams reports how many standalone GET streams the server opened.
func (w *wireLog) getStreams() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.getOK
}

// serverPings reports how many ping requests the server sent the client.
func (w *wireLog) serverPings() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pings
}
