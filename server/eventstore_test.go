package server

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	mcpserver "github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// replayable returns the messages stored after id on session, or nil and
// false when id is no longer known.
func replayable(t *testing.T, s *boundedEventStore, session, id string) ([]string, bool) {
	t.Helper()
	var got []string
	_, err := s.ReplayEventsAfter(context.Background(), session, id, func(_ string, m json.RawMessage) error {
		got = append(got, string(m))
		return nil
	})
	if err != nil {
		require.ErrorIs(t, err, mcpserver.ErrUnknownEventID)
		return nil, false
	}
	return got, true
}

func msg(c byte, n int) json.RawMessage { return json.RawMessage(strings.Repeat(string(c), n)) }

func TestEventStoreKeepsEachSessionWithinItsBytes(t *testing.T) {
	ctx := context.Background()
	s := newBoundedEventStore(1024, 1000, 1<<20)
	var ids []string
	for _, c := range "abcd" {
		id, err := s.StoreEvent(ctx, "s1", "stream", msg(byte(c), 400))
		require.NoError(t, err)
		ids = append(ids, id)
	}
	// 4 × 400 bytes over a 1000-byte cap: the two oldest are gone.
	_, ok := replayable(t, s, "s1", ids[0])
	assert.False(t, ok)
	_, ok = replayable(t, s, "s1", ids[1])
	assert.False(t, ok)
	got, ok := replayable(t, s, "s1", ids[2])
	require.True(t, ok)
	assert.Equal(t, []string{string(msg('d', 400))}, got)

	// One event over the cap alone is still kept: the newest always is.
	id, err := s.StoreEvent(ctx, "s1", "stream", msg('e', 5000))
	require.NoError(t, err)
	_, ok = replayable(t, s, "s1", ids[3])
	assert.False(t, ok)
	got, ok = replayable(t, s, "s1", id)
	require.True(t, ok)
	assert.Empty(t, got)
}

func TestEventStoreDropsTheOldestOfAllSessionsPastItsTotal(t *testing.T) {
	ctx := context.Background()
	s := newBoundedEventStore(1024, 1<<20, 1000)
	a1, _ := s.StoreEvent(ctx, "a", "x", msg('1', 300))
	b1, _ := s.StoreEvent(ctx, "b", "y", msg('2', 300))
	a2, _ := s.StoreEvent(ctx, "a", "x", msg('3', 300))
	// 900 bytes fit; the next 300 push out the oldest of all, a's first.
	b2, _ := s.StoreEvent(ctx, "b", "y", msg('4', 300))
	_, ok := replayable(t, s, "a", a1)
	assert.False(t, ok, "the oldest event of all was dropped")
	got, ok := replayable(t, s, "b", b1)
	require.True(t, ok)
	assert.Equal(t, []string{string(msg('4', 300))}, got)
	got, ok = replayable(t, s, "a", a2)
	require.True(t, ok)
	assert.Empty(t, got)

	// A purged session gives its bytes back: b's two events fit again
	// beside a's without pushing a2 out.
	require.NoError(t, s.PurgeSession(ctx, "b"))
	_, ok = replayable(t, s, "b", b2)
	assert.False(t, ok)
	c1, _ := s.StoreEvent(ctx, "c", "z", msg('5', 300))
	_, _ = s.StoreEvent(ctx, "c", "z", msg('6', 300))
	_, ok = replayable(t, s, "a", a2)
	assert.True(t, ok, "a2 was kept: 900 bytes are stored")
	got, ok = replayable(t, s, "c", c1)
	require.True(t, ok)
	assert.Equal(t, []string{string(msg('6', 300))}, got)
}

func TestEventStoreCompactsItsOrder(t *testing.T) {
	ctx := context.Background()
	s := newBoundedEventStore(2, 1<<20, 1<<30)
	for range 10000 {
		_, err := s.StoreEvent(ctx, "s", "x", msg('a', 10))
		require.NoError(t, err)
	}
	// Two events live; the refs to the dropped ones do not pile up.
	assert.LessOrEqual(t, s.order.len(), 2*2+1024+1)
}

// The ring buffer keeps order across wrapping, growing and shrinking.
func TestDequeKeepsOrder(t *testing.T) {
	var q deque[int]
	next, front := 0, 0
	for round := range 5 {
		for range 300 + 100*round { // grows, wrapping around a moving head
			q.push(next)
			next++
		}
		for q.len() > 10*round { // shrinks as it empties
			require.Equal(t, front, q.pop())
			front++
		}
		for i := range q.len() {
			require.Equal(t, front+i, *q.at(i))
		}
	}
	assert.LessOrEqual(t, len(q.buf), 128, "a queue that emptied gave its room back")
}

// A session past its cap keeps its newest events, in order, replayable
// from any of them (the ids are handed out as before: 1, 2, 3, …).
func TestEventStoreKeepsTheNewestInOrder(t *testing.T) {
	ctx := context.Background()
	s := newBoundedEventStore(100, 1<<20, 1<<30)
	var ids []string
	for i := range 1000 {
		id, err := s.StoreEvent(ctx, "s", "stream", json.RawMessage(strconv.Itoa(i)))
		require.NoError(t, err)
		require.Equal(t, strconv.Itoa(i+1), id)
		ids = append(ids, id)
	}
	got, ok := replayable(t, s, "s", ids[989])
	require.True(t, ok)
	assert.Equal(t, []string{"990", "991", "992", "993", "994", "995", "996", "997", "998", "999"}, got)
	_, ok = replayable(t, s, "s", ids[899])
	assert.False(t, ok, "dropped past the cap of 100")
	_, ok = replayable(t, s, "s", "0950")
	assert.False(t, ok, "an id only as it was handed out")
}
