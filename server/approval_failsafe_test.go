package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// Failure paths of the approval flow: each must end with nothing approved
// that a human did not approve, and no gate left open at the backend.

// behind is a second kubeq-mcp on f's backend whose backend traffic passes
// through front (a proxy in front of f.backend; nil: none), with the given
// state key and retry delays.
func (f *fixture) behind(t *testing.T, front func(backend *url.URL) http.Handler, key []byte, retry ...time.Duration) *fixture {
	t.Helper()
	return f.behindWith(t, front, func(c *Config) { c.StateKey = key }, retry...)
}

// behindWith is behind with the second kubeq-mcp's Config changed by mutate.
func (f *fixture) behindWith(t *testing.T, front func(backend *url.URL) http.Handler, mutate func(*Config), retry ...time.Duration) *fixture {
	t.Helper()
	target := f.backend.URL
	if front != nil {
		u, err := url.Parse(f.backend.URL)
		require.NoError(t, err)
		px := httptest.NewServer(front(u))
		t.Cleanup(px.Close)
		target = px.URL
	}
	if retry == nil {
		retry = []time.Duration{5 * time.Millisecond}
	}
	client, err := kubeq.New(target, kubeq.WithRetryDelays(retry...), kubeq.WithTimeout(5*time.Second))
	require.NoError(t, err)
	cfg := Config{Backend: client, ConfirmHighRisk: true, ApprovalTimeout: 5 * time.Second, KeepAliveInterval: time.Hour}
	if testing.Verbose() {
		cfg.Logger = newTestLogger(t)
	}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	return &fixture{t: t, backend: f.backend, srv: srv}
}

// noHistory forwards everything but the replay history, which it answers
// the way a backend worker without history does.
func noHistory(backend *url.URL) http.Handler {
	rp := httputil.NewSingleHostReverseProxy(backend)
	rp.FlushInterval = -1
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/events/replay/") {
			http.Error(w, `{"detail":"this process holds no event history"}`, http.StatusNotFound)
			return
		}
		rp.ServeHTTP(w, r)
	})
}

// interceptDeny forwards everything to the backend but the chat requests
// that send "deny" and whose count (from 1) intercept accepts: those get
// act instead.
func interceptDeny(intercept func(n int32) bool, act http.HandlerFunc) func(*url.URL) http.Handler {
	return func(backend *url.URL) http.Handler {
		rp := httputil.NewSingleHostReverseProxy(backend)
		rp.FlushInterval = -1
		var seen atomic.Int32
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			if bytes.Contains(body, []byte(`"content":"deny"`)) && intercept(seen.Add(1)) {
				act(w, r)
				return
			}
			rp.ServeHTTP(w, r)
		})
	}
}

// hangUntilCancelled answers nothing until the request is cancelled.
func hangUntilCancelled(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

// loseOneAnswer lets the backend run a whole turn, then resets the
// connection before a byte of the answer reaches kubeq-mcp, once, for the
// first chat request whose body matches.
func loseOneAnswer(match func(body []byte) bool) func(*url.URL) http.Handler {
	return func(backend *url.URL) http.Handler {
		var lost atomic.Bool
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			req, _ := http.NewRequestWithContext(r.Context(), r.Method, backend.String()+r.URL.Path, bytes.NewReader(body))
			req.Header = r.Header.Clone()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				panic(http.ErrAbortHandler)
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			if r.Method == http.MethodPost && match(body) && lost.CompareAndSwap(false, true) {
				panic(http.ErrAbortHandler)
			}
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(resp.StatusCode)
			_, _ = w.Write(data)
		})
	}
}

// An older backend whose health cannot be read right now counts as older:
// a question on a conversation with a gate this process does not know of
// is preceded by a denial, not taken as the approval.
func TestFailsafeUnknownEraDeniesFirst(t *testing.T) {
	f := newFixture(t, nil, kubeqtest.WithV2(), kubeqtest.WithHealth(http.StatusServiceUnavailable, false))
	conv := kubeq.NewConversationID()
	f.backend.OpenGate(conv, gate(podCommand, "act-restart"))
	cs := f.connectHuman("http", "2025-11-25", newHuman(t, declineForm), true)
	res, err := query(context.Background(), cs, map[string]any{"question": "why is web slow?", "conversation_id": conv})
	require.NoError(t, err)
	assertNeverApproved(t, f.backend)
	assert.Equal(t, "deny", f.backend.MessagesFor(conv)[0], "a denial went first")
	assert.Contains(t, textOf(res), "sent a denial first")
}

// A sealed state answered once on replica A, then replayed on replica B
// (shared key, no history there), must not approve the gate the agent
// raised after the first approval.
func TestFailsafeReplayOnOtherReplicaRefused(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	f := newFixture(t, func(c *Config) { c.StateKey = key })
	f.backend.Handle(podQuestion, kubeqtest.Script{kubeqtest.Gate{
		Command: podCommand, ActionID: "act-pod",
		OnApprove: kubeqtest.Script{kubeqtest.Tokens("web-1 deleted. Now scaling."), gate(scaleCommand, "act-scale")},
	}})
	b := f.behind(t, noHistory, key)
	csA := f.connectHuman("http", "", newHuman(t, declineForm), false)
	csB := b.connectHuman("http", "", newHuman(t, declineForm), false)

	args := map[string]any{"question": podQuestion}
	leg := askGate(t, f, csA, args)
	res, err := answerGate(csA, args, leg.state, approveWith(podTarget))
	require.NoError(t, err)
	require.True(t, res.NeedsInput(), "gate 2 asked: %s", textOf(res))

	res, err = answerGate(csB, args, leg.state, approveWith(podTarget))
	require.NoError(t, err)
	assert.True(t, res.IsError, textOf(res))
	assert.Contains(t, textOf(res), "nothing was approved")
	for _, d := range f.backend.Decisions() {
		assert.Falsef(t, d.ActionID == "act-scale" && d.Approved, "gate 2 (%s) approved with no human shown it", d.Command)
	}
	assert.Equal(t, []string{podQuestion, "approve"}, f.backend.MessagesFor(leg.conv), "B sent nothing")
}

// lostApprove is a 2025-era client in front of a kubeq-mcp (g) whose first
// "approve" reaches f's backend, which runs it and raises a second gate, but
// whose answer is lost; the human approves the first gate only.
func lostApprove(t *testing.T) (f, g *fixture, cs *sdk.ClientSession) {
	t.Helper()
	return lostApproveHistory(t, true)
}

// lostApproveHistory is lostApprove where g reads the backend's event
// history (history) or gets the 404 of a backend worker without it.
func lostApproveHistory(t *testing.T, history bool) (f, g *fixture, cs *sdk.ClientSession) {
	t.Helper()
	f = newFixture(t, nil)
	f.backend.Handle(podQuestion, kubeqtest.Script{kubeqtest.Gate{
		Command: podCommand, ActionID: "act-pod",
		OnApprove: kubeqtest.Script{kubeqtest.Tokens("web-1 deleted. Now scaling."), gate(scaleCommand, "act-scale")},
	}})
	front := loseOneAnswer(func(b []byte) bool { return bytes.Contains(b, []byte(`"content":"approve"`)) })
	if !history {
		lose := front
		front = func(backend *url.URL) http.Handler {
			next := lose(backend)
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(r.URL.Path, "/v1/events/replay/") {
					http.Error(w, `{"detail":"this process holds no event history"}`, http.StatusNotFound)
					return
				}
				next.ServeHTTP(w, r)
			})
		}
	}
	g = f.behind(t, front, nil)
	h := newHuman(t, accept("approve", podTarget), declineForm)
	cs = g.connectHuman("http", "2025-11-25", h, true)
	return f, g, cs
}

// "approve" whose answer is lost after the backend ran it must not be sent
// again: the second copy would approve the next gate, never shown.
func TestFailsafeApproveNotResent(t *testing.T) {
	f, _, cs := lostApprove(t)
	res, err := query(context.Background(), cs, map[string]any{"question": podQuestion})
	require.NoError(t, err)
	assert.True(t, res.IsError, textOf(res))
	conv := f.backend.ChatRequests()[0].Session
	for _, d := range f.backend.Decisions() {
		assert.Falsef(t, d.ActionID == "act-scale" && d.Approved, "gate 2 approved without a form")
	}
	assert.Equal(t, 1, f.backend.Received("approve"), "approve sent once")

	// Whatever the lost answer left pending is denied before the next question.
	f.backend.Handle("what now?", kubeqtest.Answer("nothing."))
	_, err = query(context.Background(), cs, map[string]any{"question": "what now?", "conversation_id": conv})
	require.NoError(t, err)
	msgs := f.backend.MessagesFor(conv)
	assert.Equal(t, []string{"deny", "what now?"}, msgs[len(msgs)-2:])
	_, pending := f.backend.PendingGate(conv)
	assert.False(t, pending)
}

// On an older backend a question sent twice would land on the gate its
// first copy raised and approve it: a lost answer is not re-sent there.
func TestFailsafeQuestionNotResentOnOlderBackend(t *testing.T) {
	f := newFixture(t, nil, kubeqtest.WithV2())
	f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
	g := f.behind(t, loseOneAnswer(func([]byte) bool { return true }), nil)
	h := newHuman(t, declineForm)
	cs := g.connectHuman("http", "2025-11-25", h, true)
	res, err := query(context.Background(), cs, map[string]any{"question": podQuestion})
	require.NoError(t, err)
	assert.True(t, res.IsError, textOf(res))
	assertNeverApproved(t, f.backend)
	assert.Equal(t, 1, f.backend.Received(podQuestion), "the question was sent once")
}

// An approval the backend refuses leaves the gate open there: it is denied
// at once, in both eras.
func TestFailsafeUndeliveredApproveDenies(t *testing.T) {
	for _, era := range []string{"", "2025-11-25"} {
		t.Run("era="+era, func(t *testing.T) {
			f := newFixture(t, nil)
			f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
			var res *sdk.CallToolResult
			var err error
			if era == "" {
				cs := f.connectHuman("http", "", newHuman(t, declineForm), false)
				leg := askGate(t, f, cs, map[string]any{"question": podQuestion})
				f.backend.FailNext(1, kubeqtest.RateLimited(1))
				res, err = answerGate(cs, map[string]any{"question": podQuestion}, leg.state, approveWith(podTarget))
			} else {
				h := newHuman(t, func(ctx context.Context, h *human, p *sdk.ElicitParams) (*sdk.ElicitResult, error) {
					f.backend.FailNext(1, kubeqtest.RateLimited(1))
					return accept("approve", podTarget)(ctx, h, p)
				})
				cs := f.connectHuman("http", era, h, true)
				res, err = query(context.Background(), cs, map[string]any{"question": podQuestion})
			}
			require.NoError(t, err)
			require.True(t, res.IsError, textOf(res))
			assert.Contains(t, textOf(res), "denied it instead")
			assert.Contains(t, textOf(res), "DENIED (error)", "the approvals record says what became of the gate")
			assert.NotContains(t, textOf(res), "it was sent to KubeIntellect to run")
			conv := f.backend.ChatRequests()[0].Session
			_, pending := f.backend.PendingGate(conv)
			assert.False(t, pending, "the gate was denied")
			assert.Equal(t, []string{podQuestion, "deny"}, f.backend.MessagesFor(conv))
			assertNeverApproved(t, f.backend)
		})
	}
}

// A deny that runs out of time before it is delivered is remembered and
// sent before the next question.
func TestFailsafeDenyTimeoutRemembered(t *testing.T) {
	f := newFixture(t, nil)
	g := f.behindWith(t, nil, func(c *Config) { c.DenyTimeout = 300 * time.Millisecond }, time.Minute)
	f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
	f.backend.Handle("what now?", kubeqtest.Answer("nothing."))
	h := newHuman(t, func(ctx context.Context, h *human, p *sdk.ElicitParams) (*sdk.ElicitResult, error) {
		f.backend.FailNext(1, kubeqtest.DropConnection()) // the deny's retry waits a minute: longer than its bound
		return declineForm(ctx, h, p)
	})
	cs := g.connectHuman("stdio", "2025-11-25", h, true)
	_, err := query(context.Background(), cs, map[string]any{"question": podQuestion})
	require.NoError(t, err)
	conv := f.backend.ChatRequests()[0].Session
	_, pending := f.backend.PendingGate(conv)
	require.True(t, pending, "the deny never arrived")

	_, err = query(context.Background(), cs, map[string]any{"question": "what now?", "conversation_id": conv})
	require.NoError(t, err)
	assert.Equal(t, []string{podQuestion, "deny", "what now?"}, f.backend.MessagesFor(conv))
	assertNeverApproved(t, f.backend)
}

// Shutting down denies the gates still waiting for a human: nothing else
// would once the process is gone.
func TestFailsafeShutdownDeniesPending(t *testing.T) {
	f := newFixture(t, nil)
	f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
	cs := f.connectHuman("http", "", newHuman(t, declineForm), false)
	leg := askGate(t, f, cs, map[string]any{"question": podQuestion})
	_, pending := f.backend.PendingGate(leg.conv)
	require.True(t, pending)

	require.NoError(t, f.srv.Close())
	_, pending = f.backend.PendingGate(leg.conv)
	assert.False(t, pending, "denied at shutdown")
	assert.Equal(t, []string{podQuestion, "deny"}, f.backend.MessagesFor(leg.conv))
}

// A gateway's 504 to "approve" proves nothing: the backend may have it. It
// is not followed by a denial claiming nothing ran; whatever is pending is
// denied before the next question instead.
func TestFailsafeGatewayTimeoutOnApprove(t *testing.T) {
	f := newFixture(t, nil)
	f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
	f.backend.Handle("what now?", kubeqtest.Answer("nothing."))
	h := newHuman(t, func(ctx context.Context, h *human, p *sdk.ElicitParams) (*sdk.ElicitResult, error) {
		f.backend.FailNext(1, kubeqtest.Respond(http.StatusGatewayTimeout))
		return accept("approve", podTarget)(ctx, h, p)
	})
	cs := f.connectHuman("http", "2025-11-25", h, true)
	res, err := query(context.Background(), cs, map[string]any{"question": podQuestion})
	require.NoError(t, err)
	require.True(t, res.IsError, textOf(res))
	assert.Contains(t, textOf(res), "may not have reached KubeIntellect")
	assert.NotContains(t, textOf(res), "denied it instead")
	conv := f.backend.ChatRequests()[0].Session

	_, err = query(context.Background(), cs, map[string]any{"question": "what now?", "conversation_id": conv})
	require.NoError(t, err)
	assert.Equal(t, []string{podQuestion, "deny", "what now?"}, f.backend.MessagesFor(conv))
	assertNeverApproved(t, f.backend)
}
