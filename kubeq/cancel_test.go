package kubeq

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const handshake = `data: {"protocol_version": "1.0", "object": "stream.start", "session_id": "s"}` + "\n\n"

// hangingBackend sends handshake (unless empty) and then waits for the
// client to go away, reporting when the server saw the disconnect.
func hangingBackend(t *testing.T, first string) (*backend, <-chan struct{}) {
	gone := make(chan struct{}, 1)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		// Read the body as FastAPI does; net/http only watches for the
		// client going away once the body is consumed.
		_, _ = io.Copy(io.Discard, r.Body)
		if first != "" {
			w.Header().Set("Content-Type", "text/event-stream")
			writeFlush(w, first)
		}
		select {
		case <-r.Context().Done():
			select {
			case gone <- struct{}{}:
			default: // an earlier attempt already reported
			}
		case <-time.After(5 * time.Second):
		}
	})
	return b, gone
}

func requireDisconnect(t *testing.T, gone <-chan struct{}) {
	t.Helper()
	select {
	case <-gone:
	case <-time.After(3 * time.Second):
		t.Fatal("the backend never saw the client disconnect")
	}
}

func TestCancelClosesBackendRequest(t *testing.T) {
	b, gone := hangingBackend(t, handshake)
	c := newClient(t, b.URL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var err error
	for ev, e := range c.Stream(ctx, Turn{Question: "q"}) {
		if _, ok := ev.(Handshake); ok {
			cancel()
		}
		err = e
	}
	requireDisconnect(t, gone)
	require.ErrorIs(t, err, context.Canceled)
	var ie *InterruptedError
	require.ErrorAs(t, err, &ie, "events had arrived: the turn is interrupted")
	require.Equal(t, int32(1), b.hits.Load())
}

func TestCancelBeforeResponseClosesRequest(t *testing.T) {
	b, gone := hangingBackend(t, "")
	c := newClient(t, b.URL, WithRetryDelays(shortDelays...))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := collect(ctx, c, Turn{Question: "q"})
	requireDisconnect(t, gone)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var te *TransportError
	require.False(t, errors.As(err, &te), "a cancelled turn is not a transport failure")
	require.Equal(t, int32(1), b.hits.Load(), "not retried")
}

func TestBreakingOutClosesBackendRequest(t *testing.T) {
	b, gone := hangingBackend(t, handshake)
	c := newClient(t, b.URL)
	for ev := range c.Stream(testCtx(t), Turn{Question: "q"}) {
		require.IsType(t, Handshake{}, ev)
		break
	}
	requireDisconnect(t, gone)
}

func TestIdleTimeoutInterruptsSilentStream(t *testing.T) {
	const idle = 100 * time.Millisecond
	b, gone := hangingBackend(t, handshake)
	c := newClient(t, b.URL, WithTimeout(idle), WithRetryDelays(shortDelays...))
	start := time.Now()
	evs, err := collect(testCtx(t), c, Turn{Question: "q"})
	// The backend never ends the turn: the idle timeout did, within a
	// generous multiple of itself (and well before testCtx's deadline).
	require.Less(t, time.Since(start), 30*idle)
	require.Len(t, evs, 1)
	require.ErrorIs(t, err, ErrIdleTimeout)
	var ie *InterruptedError
	require.ErrorAs(t, err, &ie)
	require.Equal(t, int32(1), b.hits.Load(), "not retried after the handshake")
	requireDisconnect(t, gone)
}

// Heartbeats every sixth of the idle timeout, for four times the timeout:
// a heartbeat may come late by most of a timeout on a loaded machine and
// still keep the stream alive, but without heartbeats the stream would
// have been cut four times over.
func TestHeartbeatsKeepStreamAlive(t *testing.T) {
	const idle = 300 * time.Millisecond
	const every = idle / 6
	const count = 4 * int(idle/every)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		writeFlush(w, handshake)
		for range count {
			time.Sleep(every)
			writeFlush(w, ": heartbeat\n\n")
		}
		writeFlush(w, plainTurn[len(handshake):])
	})
	c := newClient(t, b.URL, WithTimeout(idle))
	evs, err := collect(testCtx(t), c, Turn{Question: "q"})
	require.NoError(t, err)
	heartbeats := 0
	for _, ev := range evs {
		if _, ok := ev.(Heartbeat); ok {
			heartbeats++
		}
	}
	require.Equal(t, count, heartbeats)
	require.IsType(t, End{}, evs[len(evs)-1])
}

func TestIdleTimeoutBeforeHeadersIsRetried(t *testing.T) {
	b := newBackend(t, nil)
	b.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if b.hits.Add(1) == 1 {
			<-r.Context().Done() // no answer at all until the client gives up
			return
		}
		serveSSE([]byte(plainTurn))(w, r)
	})
	c := newClient(t, b.URL, WithTimeout(100*time.Millisecond), WithRetryDelays(time.Millisecond))
	_, err := collect(testCtx(t), c, Turn{Question: "q"})
	require.NoError(t, err)
	require.Equal(t, int32(2), b.hits.Load())
}

func TestIdleTimeoutOnEveryAttempt(t *testing.T) {
	b, _ := hangingBackend(t, "")
	c := newClient(t, b.URL, WithTimeout(50*time.Millisecond), WithRetryDelays(time.Millisecond))
	_, err := collect(testCtx(t), c, Turn{Question: "q"})
	var te *TransportError
	require.ErrorAs(t, err, &te)
	require.ErrorIs(t, err, ErrIdleTimeout)
	require.Equal(t, 2, te.Attempts)
	require.Contains(t, err.Error(), "no answer in time")
}

// The idle timeout measures the backend's silence: a consumer that takes
// longer than it over one event does not cut a stream the backend keeps
// alive.
func TestIdleTimeoutIgnoresSlowConsumer(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		writeFlush(w, handshake)
		for range 30 {
			time.Sleep(20 * time.Millisecond) // never silent for long
			writeFlush(w, ": heartbeat\n\n")
		}
		writeFlush(w, plainTurn[len(handshake):])
	})
	c := newClient(t, b.URL, WithTimeout(400*time.Millisecond))
	var err error
	for ev, e := range c.Stream(testCtx(t), Turn{Question: "q"}) {
		if _, ok := ev.(Handshake); ok {
			time.Sleep(time.Second) // a slow consumer, longer than the timeout
		}
		if e != nil {
			err = e
		}
	}
	require.NoError(t, err)
}

// A backend that keeps its response open after [DONE] does not hold the
// turn: the end of the body is waited for at most drainWait, then the
// connection is closed as before (the backend sees it go).
func TestOpenAfterDoneDoesNotHoldTheTurn(t *testing.T) {
	gone := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("data: {\"type\": \"token\", \"content\": \"a\"}\n\ndata: [DONE]\n\n"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(gone)
	})
	c, err := New(b.URL)
	require.NoError(t, err)
	start := time.Now()
	evs, err := collect(testCtx(t), c, Turn{Question: "q", Conversation: "conv"})
	require.NoError(t, err)
	require.IsType(t, End{}, evs[len(evs)-1])
	require.Less(t, time.Since(start), 40*drainWait, "the turn waited for a body that does not end")
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection was not closed")
	}
}
