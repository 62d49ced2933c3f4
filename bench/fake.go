package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// Backend is a fake KubeIntellect for the two scenarios kubeqtest cannot
// script: status events stamped with the time they are written, and a
// flood of token frames written as fast as the socket takes them. Frames
// are in the real server's format (Python spacing, via kubeqtest.PyJSON).
// The turn is chosen by the question (see StampedQuestion, FloodQuestion).
type Backend struct {
	URL string
	hs  *http.Server
	ln  net.Listener
}

// StatusPhase is the phase of stamped status events; kubeq-mcp forwards
// them as "[bench] t=<unix nanos>".
const StatusPhase = "bench"

// StampedQuestion asks for n status events, one every interval, each with
// the message "t=<unix nanoseconds when written>".
func StampedQuestion(n int, every time.Duration) string {
	return fmt.Sprintf("stamped %d %s", n, every)
}

// FloodQuestion asks for n answer-token frames written back to back.
func FloodQuestion(n int) string { return fmt.Sprintf("flood %d", n) }

var floodWords = []string{"pod ", "node ", "crash ", "loop ", "back ", "off ", "oom ", "kill ",
	"scale ", "drain ", "taint ", "label ", "svc ", "ing ", "pvc ", "cm "}

// FloodAnswer is the answer a flood of n frames adds up to.
func FloodAnswer(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(floodWords[i%len(floodWords)])
	}
	return b.String()
}

// StartBackend listens on 127.0.0.1 and serves the fake.
func StartBackend() (*Backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fake backend: listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", serveChat)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		// What a current (V4) KubeIntellect answers: "arm" marks it as one.
		_, _ = w.Write([]byte(`{"status": "ok", "arm": "v4", "version": "4.2.0"}`))
	})
	b := &Backend{URL: "http://" + ln.Addr().String(), ln: ln,
		hs: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = b.hs.Serve(ln) }()
	return b, nil
}

// Close stops the fake and drops its connections.
func (b *Backend) Close() { _ = b.hs.Close() }

type chatRequest struct {
	Messages []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	} `json:"messages"`
}

func serveChat(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil || len(req.Messages) == 0 {
		http.Error(w, `{"detail": "No user message provided"}`, http.StatusUnprocessableEntity)
		return
	}
	question := req.Messages[len(req.Messages)-1].Content
	session := r.Header.Get("X-Session-ID")
	fields := strings.Fields(question)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	fw := &frameWriter{w: bufio.NewWriterSize(w, 64<<10), rc: http.NewResponseController(w),
		id: "chatcmpl-0123456789ab", created: time.Now().Unix()}
	fw.frame(kubeqtest.Obj{{Key: "protocol_version", Val: "1.0"}, {Key: "object", Val: "stream.start"}, {Key: "session_id", Val: session}})
	switch {
	case len(fields) == 3 && fields[0] == "stamped":
		n, _ := strconv.Atoi(fields[1])
		every, _ := time.ParseDuration(fields[2])
		fw.stamped(r, n, every)
	case len(fields) == 2 && fields[0] == "flood":
		n, _ := strconv.Atoi(fields[1])
		fw.flood(n)
	default:
		fw.token("unknown bench question: " + question)
	}
	fw.end()
}

// frameWriter writes one turn through a buffer; flush pushes it to the
// socket.
type frameWriter struct {
	w       *bufio.Writer
	rc      *http.ResponseController
	id      string
	created int64
	err     error
}

func (f *frameWriter) raw(b []byte) {
	if f.err == nil {
		_, f.err = f.w.Write(b)
	}
}

func (f *frameWriter) frame(o kubeqtest.Obj) {
	f.raw([]byte("data: " + kubeqtest.PyJSON(o) + "\n\n"))
}

func (f *frameWriter) flush() {
	if f.err == nil {
		f.err = f.w.Flush()
	}
	if f.err == nil {
		f.err = f.rc.Flush()
	}
}

func (f *frameWriter) chunkObj(delta kubeqtest.Obj, finish any) kubeqtest.Obj {
	return kubeqtest.Obj{{Key: "id", Val: f.id}, {Key: "object", Val: "chat.completion.chunk"},
		{Key: "created", Val: f.created}, {Key: "model", Val: "kubeintellect"},
		{Key: "choices", Val: []kubeqtest.Obj{{{Key: "index", Val: 0}, {Key: "delta", Val: delta}, {Key: "finish_reason", Val: finish}}}}}
}

func (f *frameWriter) tokenBytes(s string) []byte {
	return []byte("data: " + kubeqtest.PyJSON(f.chunkObj(kubeqtest.Obj{{Key: "content", Val: s}, {Key: "role", Val: "assistant"}}, nil)) + "\n\n")
}

func (f *frameWriter) token(s string) { f.raw(f.tokenBytes(s)) }

// stamped writes n status events every interval, each stamped just before
// it is written and flushed on its own.
func (f *frameWriter) stamped(r *http.Request, n int, every time.Duration) {
	f.flush()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for range n {
		select {
		case <-r.Context().Done():
			f.err = r.Context().Err()
			return
		case <-tick.C:
		}
		msg := "t=" + strconv.FormatInt(time.Now().UnixNano(), 10)
		f.frame(kubeqtest.Obj{{Key: "id", Val: f.id}, {Key: "object", Val: "chat.completion.chunk"},
			{Key: "created", Val: f.created}, {Key: "model", Val: "kubeintellect"},
			{Key: "ki_event", Val: kubeqtest.Obj{{Key: "type", Val: "status"}, {Key: "phase", Val: StatusPhase}, {Key: "message", Val: msg}}},
			{Key: "choices", Val: []any{}}})
		f.flush()
		if f.err != nil {
			return
		}
	}
	f.token("done")
}

// flood writes n token frames, rendered once per word, through the buffer.
func (f *frameWriter) flood(n int) {
	frames := make([][]byte, len(floodWords))
	for i, w := range floodWords {
		frames[i] = f.tokenBytes(w)
	}
	for i := range n {
		if f.err != nil {
			return
		}
		f.raw(frames[i%len(frames)])
	}
}

// end writes the usage frame, the stop chunk and [DONE].
func (f *frameWriter) end() {
	f.frame(kubeqtest.Obj{{Key: "id", Val: f.id}, {Key: "object", Val: "chat.completion.chunk"},
		{Key: "created", Val: f.created}, {Key: "model", Val: "kubeintellect"},
		{Key: "ki_event", Val: kubeqtest.Obj{{Key: "type", Val: "usage"}, {Key: "prompt_tokens", Val: 1}, {Key: "completion_tokens", Val: 1}, {Key: "total_tokens", Val: 2}, {Key: "llm_calls", Val: 1}}},
		{Key: "choices", Val: []any{}}})
	f.frame(f.chunkObj(kubeqtest.Obj{}, "stop"))
	f.raw([]byte("data: [DONE]\n\n"))
	f.flush()
}
