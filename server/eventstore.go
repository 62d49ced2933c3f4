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
	order    []eventRef // every event stored, oldest first; some already dropped
}

type eventLog struct {
	events []storedEvent // oldest first
	bytes  int64
}

type storedEvent struct {
	seq        int64
	id, stream string
	message    json.RawMessage
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
	id := strconv.FormatInt(s.seq, 10)
	log := s.sessions[sessionID]
	if log == nil {
		log = &eventLog{}
		s.sessions[sessionID] = log
	}
	log.events = append(log.events, storedEvent{seq: s.seq, id: id, stream: streamID, message: message})
	log.bytes += int64(len(message))
	s.total += int64(len(message))
	s.live++
	s.order = append(s.order, eventRef{sessionID, s.seq})
	for len(log.events) > s.max || (log.bytes > s.maxBytes && len(log.events) > 1) {
		s.dropOldest(log)
	}
	for s.total > s.maxTotal && len(s.order) > 0 {
		ref := s.order[0]
		s.order[0] = eventRef{}
		s.order = s.order[1:]
		if l := s.sessions[ref.session]; l != nil && len(l.events) > 0 && l.events[0].seq == ref.seq {
			s.dropOldest(l)
		}
	}
	// Refs to events dropped per session or purged stay in order until
	// they reach its front: compact when they outnumber the live ones.
	if len(s.order) > 2*s.live+1024 {
		s.compact()
	}
	return id, nil
}

// dropOldest drops the oldest event of log; the caller holds s.mu.
func (s *boundedEventStore) dropOldest(log *eventLog) {
	n := int64(len(log.events[0].message))
	log.events[0] = storedEvent{}
	log.events = log.events[1:]
	log.bytes -= n
	s.total -= n
	s.live--
}

// compact keeps in order only the refs of events still stored.
func (s *boundedEventStore) compact() {
	kept := make([]eventRef, 0, s.live)
	for _, ref := range s.order {
		l := s.sessions[ref.session]
		if l != nil && len(l.events) > 0 && l.events[0].seq <= ref.seq {
			kept = append(kept, ref)
		}
	}
	s.order = kept
}

func (s *boundedEventStore) ReplayEventsAfter(ctx context.Context, sessionID, lastEventID string, send func(eventID string, message json.RawMessage) error) (string, error) {
	s.mu.Lock()
	log := s.sessions[sessionID]
	var stream string
	var todo []storedEvent
	if log != nil {
		for i, e := range log.events {
			if e.id == lastEventID {
				stream = e.stream
				for _, later := range log.events[i+1:] {
					if later.stream == stream {
						todo = append(todo, later)
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
		if err := send(e.id, e.message); err != nil {
			return stream, err
		}
	}
	return stream, nil
}

func (s *boundedEventStore) PurgeSession(_ context.Context, sessionID string) error {
	s.mu.Lock()
	if log := s.sessions[sessionID]; log != nil {
		s.total -= log.bytes
		s.live -= len(log.events)
		delete(s.sessions, sessionID)
	}
	s.mu.Unlock()
	return nil
}
