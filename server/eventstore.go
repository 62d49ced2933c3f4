package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	mcpserver "github.com/mark3labs/mcp-go/server"
)

// boundedEventStore is mcp-go's resumability store with a cap: it keeps the
// last max events of each session, so a client that holds a session open
// for hours streaming progress does not grow the server without bound.
// Resuming from an event that fell off the end fails as an unknown id.
type boundedEventStore struct {
	mu       sync.Mutex
	max      int
	seq      int64
	sessions map[string]*eventLog
}

type eventLog struct {
	events []storedEvent // oldest first, at most max
}

type storedEvent struct {
	id, stream string
	message    json.RawMessage
}

func newBoundedEventStore(max int) *boundedEventStore {
	return &boundedEventStore{max: max, sessions: make(map[string]*eventLog)}
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
	if len(log.events) >= s.max {
		log.events = append(log.events[:0], log.events[1:]...)
	}
	log.events = append(log.events, storedEvent{id: id, stream: streamID, message: message})
	return id, nil
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
	delete(s.sessions, sessionID)
	s.mu.Unlock()
	return nil
}
