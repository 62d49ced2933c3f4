package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	mcpserver "github.com/mark3labs/mcp-go/server"
)

// boundedEventStore is mcp-go's resumability store with caps. mcp-go
// stores every message of a 2025-era POST stream in it, results included,
// until the session ends, so without caps a client that holds a session
// open for hours, or makes many calls with large answers, grows the server
// without bound. It keeps, per session, at most max events and maxBytes of
// them (always the newest one), and at most maxTotal bytes in all sessions,
// dropping the oldest first. Resuming from an event that was dropped fails
// as an unknown id.
type boundedEventStore struct {
	mu       sync.Mutex
	max      int
	maxBytes int64
	maxTotal int64
	seq      int64
	total    int64 // bytes stored in all sessions
	live     int   // events stored in all sessions
	sessions map[string]*eventLog
	order    deque[eventRef] // every event stored, oldest first; some already dropped
}

// Events and refs are kept in ring buffers: storing one and dropping the
// oldest move nothing and allocate nothing once a session's buffer has
// grown to its size (a slice cut at the front and appended to is copied
// whole every so often). An event's id is its sequence number, written
// out when it is needed.
type eventLog struct {
	events deque[storedEvent] // oldest first
	bytes  int64
}

type storedEvent struct {
	seq     int64
	stream  string
	message json.RawMessage
}

// eventRef names a stored event in the order of all sessions.
type eventRef struct {
	session string
	seq     int64
}

func newBoundedEventStore(max int, maxBytes, maxTotal int64) *boundedEventStore {
	return &boundedEventStore{max: max, maxBytes: maxBytes, maxTotal: maxTotal, sessions: make(map[string]*eventLog)}
}

// newEventStore sizes the store from the answer cap: a session keeps room
// for its last result (the answer is in it twice, as text and as
// structured content) and some progress.
func (s *Server) newEventStore() *boundedEventStore {
	perSession := 2*s.cfg.MaxAnswerBytes + 1<<20
	return newBoundedEventStore(1024, perSession, max(64<<20, 4*perSession))
}

func (s *boundedEventStore) StoreEvent(_ context.Context, sessionID, streamID string, message json.RawMessage) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	log := s.sessions[sessionID]
	if log == nil {
		log = &eventLog{}
		s.sessions[sessionID] = log
	}
	log.events.push(storedEvent{seq: s.seq, stream: streamID, message: message})
	log.bytes += int64(len(message))
	s.total += int64(len(message))
	s.live++
	s.order.push(eventRef{sessionID, s.seq})
	for log.events.len() > s.max || (log.bytes > s.maxBytes && log.events.len() > 1) {
		s.dropOldest(log)
	}
	for s.total > s.maxTotal && s.order.len() > 0 {
		ref := s.order.pop()
		if l := s.sessions[ref.session]; l != nil && l.events.len() > 0 && l.events.at(0).seq == ref.seq {
			s.dropOldest(l)
		}
	}
	// Refs to events dropped per session or purged stay in order until
	// they reach its front: compact when they outnumber the live ones.
	if s.order.len() > 2*s.live+1024 {
		s.compact()
	}
	return strconv.FormatInt(s.seq, 10), nil
}

// dropOldest drops the oldest event of log; the caller holds s.mu.
func (s *boundedEventStore) dropOldest(log *eventLog) {
	n := int64(len(log.events.pop().message))
	log.bytes -= n
	s.total -= n
	s.live--
}

// compact keeps in order only the refs of events still stored, in place.
func (s *boundedEventStore) compact() {
	k := 0
	for i := range s.order.len() {
		ref := *s.order.at(i)
		l := s.sessions[ref.session]
		if l != nil && l.events.len() > 0 && l.events.at(0).seq <= ref.seq {
			*s.order.at(k) = ref
			k++
		}
	}
	s.order.truncate(k)
}

func (s *boundedEventStore) ReplayEventsAfter(ctx context.Context, sessionID, lastEventID string, send func(eventID string, message json.RawMessage) error) (string, error) {
	s.mu.Lock()
	log := s.sessions[sessionID]
	var stream string
	var todo []storedEvent
	if after, err := strconv.ParseInt(lastEventID, 10, 64); err == nil && log != nil &&
		strconv.FormatInt(after, 10) == lastEventID { // the id exactly as it was handed out
		for i := range log.events.len() {
			if e := log.events.at(i); e.seq == after {
				stream = e.stream
				for j := i + 1; j < log.events.len(); j++ {
					if later := log.events.at(j); later.stream == stream {
						todo = append(todo, *later)
					}
				}
				break
			}
		}
	}
	s.mu.Unlock()
	if stream == "" {
		return "", fmt.Errorf("replay after %q: %w", lastEventID, mcpserver.ErrUnknownEventID)
	}
	for _, e := range todo {
		if err := ctx.Err(); err != nil {
			return stream, err
		}
		if err := send(strconv.FormatInt(e.seq, 10), e.message); err != nil {
			return stream, err
		}
	}
	return stream, nil
}

func (s *boundedEventStore) PurgeSession(_ context.Context, sessionID string) error {
	s.mu.Lock()
	if log := s.sessions[sessionID]; log != nil {
		s.total -= log.bytes
		s.live -= log.events.len()
		delete(s.sessions, sessionID)
	}
	s.mu.Unlock()
	return nil
}

// deque is a first-in first-out queue in a ring buffer that doubles when
// full and halves when three quarters empty.
type deque[T any] struct {
	buf  []T
	head int
	n    int
}

func (q *deque[T]) len() int { return q.n }

// at is the i-th element from the front.
func (q *deque[T]) at(i int) *T { return &q.buf[(q.head+i)%len(q.buf)] }

func (q *deque[T]) push(v T) {
	if q.n == len(q.buf) {
		q.resize(max(8, 2*len(q.buf)))
	}
	q.buf[(q.head+q.n)%len(q.buf)] = v
	q.n++
}

// pop removes and returns the front element; the queue must not be empty.
func (q *deque[T]) pop() T {
	v := q.buf[q.head]
	var zero T
	q.buf[q.head] = zero // let go of what it held
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	if len(q.buf) > 64 && q.n < len(q.buf)/4 {
		q.resize(len(q.buf) / 2)
	}
	return v
}

// truncate keeps the first n elements.
func (q *deque[T]) truncate(n int) {
	var zero T
	for i := n; i < q.n; i++ {
		*q.at(i) = zero
	}
	q.n = n
}

func (q *deque[T]) resize(size int) {
	buf := make([]T, size)
	for i := range q.n {
		buf[i] = *q.at(i)
	}
	q.buf, q.head = buf, 0
}
