package kubeq

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"time"
)

// Stream runs one turn and yields its events in wire order, ending with End
// on [DONE]. Errors are yielded as (nil, err) and end the sequence:
//   - a refused turn (ErrInvalidTurn) before anything is sent;
//   - *StatusError for any non-200 answer (never retried);
//   - *TransportError when no response arrived on any attempt;
//   - *InterruptedError when the stream broke after the 200 response;
//   - the context's error, wrapped, when ctx ended before the response.
//
// A transport failure is retried on the delay schedule only while no
// response has arrived: once the backend has answered it is running the
// turn, and posting again would run it twice. A turn marked AtMostOnce is
// not retried either once its request was written, since the backend may
// have received it even if its answer was lost.
// Breaking out of the loop closes the HTTP request.
func (c *Client) Stream(ctx context.Context, t Turn) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		p, err := c.prepare(t)
		if err != nil {
			yield(nil, err)
			return
		}
		for attempt := 0; ; attempt++ {
			if attempt > 0 {
				if err := sleep(ctx, c.retryDelays[attempt-1]); err != nil {
					yield(nil, fmt.Errorf("kubeq: turn cancelled while waiting to retry: %w", err))
					return
				}
			}
			retry, err := c.attempt(ctx, p, yield)
			if !retry {
				if err != nil {
					yield(nil, err)
				}
				return
			}
			var md maybeDelivered
			sent := errors.As(err, &md)
			if sent {
				err = md.error
			}
			if attempt == len(c.retryDelays) || !worthRetrying(err) || sent {
				yield(nil, &TransportError{URL: c.redactedBase(), Attempts: attempt + 1, Err: c.redactErr(err), MaybeDelivered: sent})
				return
			}
			c.logger().Warn("kubeq: backend unreachable, retrying",
				"url", c.redactedBase(), "attempt", attempt+1, "delay", c.retryDelays[attempt], "err", innerError(c.redactErr(err)))
		}
	}
}

// maybeDelivered marks a failure after an AtMostOnce turn's request was
// written: the backend may have it, so it is not sent again.
type maybeDelivered struct{ error }

func (m maybeDelivered) Unwrap() error { return m.error }

// attempt POSTs the turn once and relays its events. retry is true for a
// transport failure before any response arrived.
func (c *Client) attempt(ctx context.Context, p preparedTurn, yield func(Event, error) bool) (retry bool, err error) {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	idle := newIdleWatch(c.timeout, func() {
		cancel(fmt.Errorf("%w (%s)", ErrIdleTimeout, c.timeout))
	})
	defer idle.stop()

	// Whether the request was written matters only for a turn sent at
	// most once; net/http looks its trace up at every step, so only
	// those carry one.
	var wrote atomic.Bool
	tctx := actx
	if p.atMostOnce {
		tctx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
			WroteRequest: func(i httptrace.WroteRequestInfo) {
				if i.Err == nil {
					wrote.Store(true)
				}
			},
		})
	}
	req, reqID, err := c.newRequest(tctx, p)
	if err != nil {
		return false, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return false, fmt.Errorf("kubeq: turn cancelled: %w", context.Cause(ctx))
		}
		err = idleCause(actx, err)
		if p.atMostOnce && wrote.Load() {
			return true, maybeDelivered{err}
		}
		return true, err
	}
	defer resp.Body.Close() // closing mid-stream drops the connection: the server sees the disconnect
	if resp.StatusCode != http.StatusOK {
		return false, c.statusError(resp)
	}
	if !eventStream(resp.Header.Get("Content-Type")) {
		// Some other web server at this URL: retrying would not help, and
		// reading it as SSE would only report a confusing early EOF.
		return false, c.notAStreamError(resp)
	}

	body := &idleReader{r: resp.Body, w: idle}
	end := End{Conversation: p.conversation, RequestID: reqID}
	// Our secrets go out of every event; answer text is held back while it
	// may be the start of one.
	tokens := &tokenRedactor{r: c.redact}
	emit := func(e Event) bool {
		switch ev := e.(type) {
		case Token:
			text := tokens.token(ev.Content)
			switch text {
			case "":
				return true
			case ev.Content: // nothing held back or redacted: e as it came
				return yield(e, nil)
			}
			return yield(Token{Content: text}, nil)
		case Heartbeat:
		default:
			if held := tokens.flush(); held != "" && !yield(Token{Content: held}, nil) {
				return false
			}
		}
		return yield(c.redact.event(e), nil)
	}
	// The timer measures the backend's silence, not the consumer's time:
	// it is paused while an event is handed over.
	sse := c.readers.get(body)
	defer c.readers.put(sse)
	st, err := readTurnFrom(sse, end, func(e Event) bool {
		idle.busy.Add(1)
		defer idle.done()
		return emit(e)
	})
	if err == nil {
		if st.Done {
			drain(body, sse.buf, idle)
		}
		return false, nil // [DONE], or the consumer stopped
	}
	// The answer so far, for the partial answer the caller keeps.
	if held := tokens.flush(); held != "" && !yield(Token{Content: held}, nil) {
		return false, nil
	}
	if ctx.Err() != nil {
		err = context.Cause(ctx)
	} else {
		err = idleCause(actx, err)
	}
	if st.Frames == 0 && ctx.Err() != nil {
		return false, fmt.Errorf("kubeq: turn cancelled: %w", err)
	}
	// The backend answered 200: it has the turn, so a break is never
	// retried, even before the first frame.
	return false, &InterruptedError{URL: c.redactedBase() + chatPath, Events: st.Events, DroppedFrames: st.Dropped, Err: c.redactErr(err)}
}

// worthRetrying: a certificate the client rejects will be rejected again.
func worthRetrying(err error) bool {
	var certErr *tls.CertificateVerificationError
	return !errors.As(err, &certErr)
}

// idleCause replaces the symptom of our own idle cancel ("context canceled")
// with its cause.
func idleCause(actx context.Context, err error) error {
	if cause := context.Cause(actx); errors.Is(cause, ErrIdleTimeout) {
		return cause
	}
	return err
}

// idleWatch runs fire once the backend has been silent for d: nothing
// read, and no event being handed over, for d in a row. It is one timer
// that, when it finds activity since it was set, sets itself for the rest
// of d: reads and hand-overs only note the time, where resetting a timer
// for each would update the runtime's timers several times per frame.
type idleWatch struct {
	d     time.Duration
	start time.Time    // monotonic base of last
	last  atomic.Int64 // time since start of the last activity
	busy  atomic.Int32 // events being handed over (the consumer's time is not silence)
	off   atomic.Bool
	fire  func()

	mu    sync.Mutex // guards timer, set once check may already run
	timer *time.Timer
}

func newIdleWatch(d time.Duration, fire func()) *idleWatch {
	w := &idleWatch{d: d, start: time.Now(), fire: fire}
	w.mu.Lock()
	w.timer = time.AfterFunc(d, w.check)
	w.mu.Unlock()
	return w
}

// touch notes activity now.
func (w *idleWatch) touch() { w.last.Store(int64(time.Since(w.start))) }

// done ends a hand-over: the silence counts from now.
func (w *idleWatch) done() {
	w.touch()
	w.busy.Add(-1)
}

func (w *idleWatch) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.off.Load() {
		return
	}
	if w.busy.Load() > 0 {
		w.timer.Reset(w.d)
		return
	}
	if silent := time.Since(w.start) - time.Duration(w.last.Load()); silent < w.d {
		w.timer.Reset(w.d - silent)
		return
	}
	w.fire()
}

// within makes the watch fire after d of silence from now on.
func (w *idleWatch) within(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d = d
	w.touch()
	w.timer.Reset(d)
}

func (w *idleWatch) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.off.Store(true)
	w.timer.Stop()
}

// After [DONE], drain reads the end of the response (the last chunk of
// its body) so that the connection goes back to the pool: a body closed
// before its end closes its connection, and the next turn dialled a new
// one. A backend that sends more, or keeps the stream open, is given at
// most drainBytes and drainWait; then the connection is closed as before.
const (
	drainBytes = 4 << 10
	drainWait  = 25 * time.Millisecond
)

// buf is scratch space (the turn's read buffer, done with).
func drain(body io.Reader, buf []byte, idle *idleWatch) {
	idle.within(drainWait)
	for n := 0; n < drainBytes; {
		k, err := body.Read(buf)
		n += k
		if err != nil {
			return
		}
	}
}

// idleReader notes activity on every byte received.
type idleReader struct {
	r io.Reader
	w *idleWatch
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.w.touch()
	}
	return n, err
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (c *Client) logger() *slog.Logger {
	if c.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.log
}
