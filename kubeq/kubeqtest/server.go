package kubeqtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server is a fake KubeIntellect backend. Create it with NewServer (started
// on 127.0.0.1) or NewUnstartedServer (for Handler-only, in-process use).
// All methods are safe for concurrent use.
type Server struct {
	// URL is the base URL, "http://127.0.0.1:<port>", without trailing
	// slash. Empty until the server is started.
	URL string

	opts    options
	handler http.Handler
	hs      *http.Server
	client  *http.Client

	done      chan struct{} // closed by Close: every running turn returns
	closeOnce sync.Once
	running   sync.WaitGroup // handlers in flight

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced whenever the log changes
	counter    int64         // deterministic ids
	seq        int           // requests received
	routes     map[string]Script
	fallback   func(Request) Script
	faults     []Fault
	sessions   map[string]*session
	log        []*Request
	decisions  []Decision
	violations []Violation
	health     healthState
	draining   bool     // /readyz answers 503
	degraded   []string // /healthz degraded_experimental_flags
	nsError    string
}

type session struct {
	id      string
	pending *GateInfo
	active  int           // turns streaming right now
	steal   chan struct{} // closed when a concurrent turn takes over (HangConcurrent)
	history []Obj
}

type healthState struct {
	status int
	hang   bool
}

// NewServer starts a fake on 127.0.0.1 with a random port. Close it when done
// (t.Cleanup(srv.Close)).
func NewServer(opts ...Option) *Server {
	s := NewUnstartedServer(opts...)
	s.Start()
	return s
}

// NewUnstartedServer returns a fake that is not listening yet: call Start,
// or mount Handler on your own listener, or use Transport for in-process
// requests.
func NewUnstartedServer(opts ...Option) *Server {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	s := &Server{
		opts:     o,
		done:     make(chan struct{}),
		changed:  make(chan struct{}),
		routes:   map[string]Script{},
		sessions: map[string]*session{},
		health:   o.health,
	}
	s.handler = s.mux()
	return s
}

// Start listens on 127.0.0.1:0 and serves. It panics when it cannot listen,
// as httptest does: a test cannot go on without its backend.
func (s *Server) Start() {
	if s.URL != "" {
		panic("kubeqtest: Server already started")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("kubeqtest: listen on 127.0.0.1: %v", err))
	}
	s.URL = "http://" + ln.Addr().String()
	s.hs = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	s.client = &http.Client{Transport: &http.Transport{}}
	go func() { _ = s.hs.Serve(ln) }()
}

// Handler is the fake as an http.Handler, for mounting on another listener.
// Faults that drop a connection abort the handler with http.ErrAbortHandler.
func (s *Server) Handler() http.Handler { return s.handler }

// Client returns an *http.Client for this server; Close closes its idle
// connections.
func (s *Server) Client() *http.Client {
	if s.client == nil {
		return &http.Client{Transport: s.Transport()}
	}
	return s.client
}

// Close ends every running turn, closes all client connections and stops
// listening. It does not wait for clients: a turn blocked in Sleep, WaitFor,
// a hang or a slow write returns at once. Safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		if s.hs != nil {
			_ = s.hs.Close() // closes the listener and every connection
		}
		close(s.done)
		waited := make(chan struct{})
		go func() { s.running.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(5 * time.Second): // a handler stuck outside our control
		}
		if s.client != nil {
			s.client.CloseIdleConnections()
		}
	})
}

// Handle makes the fake answer question with script. The question is
// matched exactly after the "[context: …] " prefixes kube-q adds are removed.
// A later Handle for the same question replaces the earlier one.
func (s *Server) Handle(question string, script Script) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routes[question] = script
}

// HandleFunc sets the fallback consulted when no Handle matches. Returning
// nil falls back to the default reply (a short answer echoing the question).
func (s *Server) HandleFunc(f func(req Request) Script) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fallback = f
}

func (s *Server) scriptFor(req Request) Script {
	s.mu.Lock()
	script, ok := s.routes[req.Question]
	fallback := s.fallback
	s.mu.Unlock()
	if ok {
		return script
	}
	if fallback != nil {
		if script := fallback(req); script != nil {
			return script
		}
	}
	return Answer("(kubeqtest) You asked: " + req.Question)
}

func (s *Server) now() time.Time { return s.opts.now() }

func (s *Server) closed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// notify wakes every Wait; callers hold s.mu.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) sessionLocked(id string) *session {
	ss := s.sessions[id]
	if ss == nil {
		ss = &session{id: id}
		s.sessions[id] = ss
	}
	return ss
}

func (s *Server) appendHistory(ss *session, ev Obj) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss.history = append(ss.history, ev)
}

// newUUID returns a uuid4 (or a counter-based one with WithDeterministicIDs).
func (s *Server) newUUID() string {
	if s.opts.deterministic {
		return fmt.Sprintf("00000000-0000-4000-8000-%012d", s.nextCount())
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// newCompletionID returns "chatcmpl-" and 12 hex digits.
func (s *Server) newCompletionID() string {
	if s.opts.deterministic {
		return fmt.Sprintf("chatcmpl-%012d", s.nextCount())
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "chatcmpl-" + hex.EncodeToString(b[:])
}

func (s *Server) nextCount() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counter++
	return s.counter
}
