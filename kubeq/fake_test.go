package kubeq_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// The client against the team's fake KubeIntellect (a real HTTP server on
// loopback): a whole approval round trip and every fault the fake offers.

func fake(t *testing.T, opts ...kubeqtest.Option) *kubeqtest.Server {
	t.Helper()
	srv := kubeqtest.NewServer(opts...)
	t.Cleanup(srv.Close)
	return srv
}

func client(t *testing.T, srv *kubeqtest.Server, opts ...kubeq.Option) *kubeq.Client {
	t.Helper()
	opts = append([]kubeq.Option{kubeq.WithRetryDelays(time.Millisecond, 2*time.Millisecond, 3*time.Millisecond)}, opts...)
	c, err := kubeq.New(srv.URL, opts...)
	require.NoError(t, err)
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestFakeApprovalRoundTrip(t *testing.T) {
	srv := fake(t)
	const cmd = "kubectl apply -f - -n shop"
	srv.Handle("create the config map", kubeqtest.Script{kubeqtest.Gate{
		Command:   cmd,
		YAML:      "kind: ConfigMap\nmetadata:\n  name: checkout-env",
		OnApprove: kubeqtest.Answer("Created `checkout-env`."),
	}})
	c := client(t, srv, kubeq.WithAPIKey("ki-op-1"))

	res, err := c.Query(ctx(t), kubeq.Turn{Question: "create the config map", Namespace: "shop"})
	require.NoError(t, err)
	require.NotNil(t, res.Hitl)
	require.Equal(t, cmd, res.Hitl.Action)
	require.Equal(t, "medium", res.Hitl.Risk)
	require.Equal(t, "kind: ConfigMap\nmetadata:\n  name: checkout-env", res.Hitl.YAML)
	gate, ok := srv.PendingGate(res.Conversation)
	require.True(t, ok)
	require.Equal(t, gate.ActionID, res.Hitl.ApprovalID)

	res2, err := c.Query(ctx(t), kubeq.Turn{Question: "approve", Conversation: res.Conversation})
	require.NoError(t, err)
	require.Nil(t, res2.Hitl)
	require.Contains(t, res2.Answer, "Created `checkout-env`.")
	decisions := srv.Decisions()
	require.Len(t, decisions, 1)
	require.True(t, decisions[0].Approved)

	reqs := srv.ChatRequests()
	require.Len(t, reqs, 2)
	require.Equal(t, "shop", reqs[0].Namespace)
	require.False(t, reqs[1].HasAutoApprove, "never auto_approve")
	require.Equal(t, "ki-op-1", reqs[1].Bearer())
	require.Equal(t, "approve", reqs[1].Message, "the approval goes bare")
}

func TestFakeFaults(t *testing.T) {
	cases := []struct {
		name  string
		fault kubeqtest.Fault
		n     int
		check func(t *testing.T, res *kubeq.Result, err error, srv *kubeqtest.Server)
	}{
		{"drop before response, then recover", kubeqtest.DropConnection(), 3, func(t *testing.T, res *kubeq.Result, err error, srv *kubeqtest.Server) {
			require.NoError(t, err)
			require.Len(t, srv.ChatRequests(), 4, "three drops, fourth attempt answers")
			require.NotEmpty(t, res.Answer)
		}},
		{"drop on every attempt", kubeqtest.DropConnection(), 4, func(t *testing.T, res *kubeq.Result, err error, srv *kubeqtest.Server) {
			var te *kubeq.TransportError
			require.ErrorAs(t, err, &te)
			require.Equal(t, 4, te.Attempts)
		}},
		{"401", kubeqtest.RespondInvalidKey(), 1, statusCheck(401, "Invalid API key")},
		{"422 list", kubeqtest.RespondValidationList(), 1, statusCheck(422, "")},
		{"429", kubeqtest.RateLimited(9), 1, func(t *testing.T, res *kubeq.Result, err error, srv *kubeqtest.Server) {
			var se *kubeq.StatusError
			require.ErrorAs(t, err, &se)
			require.Equal(t, 9*time.Second, se.RetryAfter)
			require.Contains(t, err.Error(), "retry after 9s")
			require.Len(t, srv.ChatRequests(), 1)
		}},
		{"500", kubeqtest.Respond(500), 1, statusCheck(500, "")},
		{"cut mid-stream", kubeqtest.CutMidStream(3), 1, interruptedCheck},
		{"truncated", kubeqtest.TruncateStream(), 1, interruptedCheck},
		{"malformed frame", kubeqtest.MalformedFrame(), 1, func(t *testing.T, res *kubeq.Result, err error, srv *kubeqtest.Server) {
			require.NoError(t, err)
			require.Equal(t, 1, res.DroppedFrames)
		}},
		{"huge frame", kubeqtest.HugeFrame(2 << 20), 1, func(t *testing.T, res *kubeq.Result, err error, srv *kubeqtest.Server) {
			require.NoError(t, err)
			require.Greater(t, len(res.Answer), 2<<20)
		}},
		{"CRLF", kubeqtest.CRLFFrames(), 1, func(t *testing.T, res *kubeq.Result, err error, srv *kubeqtest.Server) {
			require.NoError(t, err)
			require.NotEmpty(t, res.Answer)
			require.NotNil(t, res.Usage)
		}},
		{"slow stream", kubeqtest.SlowStream(20 * time.Millisecond), 1, func(t *testing.T, res *kubeq.Result, err error, srv *kubeqtest.Server) {
			require.NoError(t, err)
			require.NotEmpty(t, res.Answer)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := fake(t)
			srv.FailNext(tc.n, tc.fault)
			c := client(t, srv)
			res, err := c.Query(ctx(t), kubeq.Turn{Question: "how are the pods?"})
			require.NotNil(t, res)
			tc.check(t, res, err, srv)
		})
	}
}

func statusCheck(code int, detail string) func(*testing.T, *kubeq.Result, error, *kubeqtest.Server) {
	return func(t *testing.T, res *kubeq.Result, err error, srv *kubeqtest.Server) {
		var se *kubeq.StatusError
		require.ErrorAs(t, err, &se)
		require.Equal(t, code, se.StatusCode)
		if detail != "" {
			require.Equal(t, detail, se.Detail)
		}
		require.Len(t, srv.ChatRequests(), 1, "never retried")
	}
}

func interruptedCheck(t *testing.T, res *kubeq.Result, err error, srv *kubeqtest.Server) {
	var ie *kubeq.InterruptedError
	require.ErrorAs(t, err, &ie)
	require.Positive(t, ie.Events)
	require.Len(t, srv.ChatRequests(), 1, "a turn that started is never posted twice")
}

func TestFakeSeesCancellation(t *testing.T) {
	srv := fake(t, kubeqtest.WithHeartbeat(10*time.Millisecond))
	srv.Handle("slow", kubeqtest.Script{kubeqtest.Status("analyzing", "…"), kubeqtest.Sleep(5 * time.Second)})
	c := client(t, srv)
	cctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	var conv string
	var err error
	for ev, e := range c.Stream(cctx, kubeq.Turn{Question: "slow"}) {
		if _, ok := ev.(kubeq.Heartbeat); ok {
			cancel() // the turn is under way: the agent "thinks" between heartbeats
		}
		if hs, ok := ev.(kubeq.Handshake); ok {
			conv = hs.SessionID
		}
		err = e
	}
	require.ErrorIs(t, err, context.Canceled)
	req, werr := srv.WaitForDisconnect(ctx(t), conv)
	require.NoError(t, werr)
	require.True(t, req.Disconnected)
	require.False(t, req.Finished)
}

func TestFakeWithoutUsageFrame(t *testing.T) {
	srv := fake(t, kubeqtest.WithV2())
	res, err := client(t, srv).Query(ctx(t), kubeq.Turn{Question: "hello"})
	require.NoError(t, err)
	require.Nil(t, res.Usage, "a V2 server sends no usage: unknown, not zero")
	require.NotEmpty(t, res.Answer)
}

// An older (V2) server reports a fatal error only as the content chunk
// "\n\n[Error: …]" before [DONE]; it reads as the fatal error a current
// server sends as an event, once, whichever server it is.
func TestFakeFatalErrorBothEras(t *testing.T) {
	for name, opts := range map[string][]kubeqtest.Option{"v2": {kubeqtest.WithV2()}, "current": nil} {
		t.Run(name, func(t *testing.T) {
			srv := fake(t, opts...)
			srv.Handle("q", kubeqtest.Script{kubeqtest.Tokens("Looking at "), kubeqtest.Fatal("checkpoint store unavailable")})
			c := client(t, srv)
			var fatals []kubeq.Error
			for ev, err := range c.Stream(ctx(t), kubeq.Turn{Question: "q"}) {
				require.NoError(t, err)
				if e, ok := ev.(kubeq.Error); ok && e.Fatal {
					fatals = append(fatals, e)
				}
			}
			require.Equal(t, []kubeq.Error{{Message: "checkpoint store unavailable", Fatal: true}}, fatals)
			_, err := c.Query(ctx(t), kubeq.Turn{Question: "q"})
			var fe *kubeq.FatalError
			require.ErrorAs(t, err, &fe)
		})
	}
}

// Turns one after another share one connection: after [DONE] the client
// reads the end of the response (here sent a moment later, as a backend in
// another process does), so the connection goes back to the pool instead
// of being closed, and a new one dialled for the next turn.
func TestTurnsReuseTheConnection(t *testing.T) {
	var opened atomic.Int32
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("data: {\"type\": \"token\", \"content\": \"an answer\"}\n\ndata: [DONE]\n\n"))
		w.(http.Flusher).Flush()
		time.Sleep(5 * time.Millisecond) // the end of the body comes after [DONE]
	}))
	ts.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			opened.Add(1)
		}
	}
	ts.Start()
	t.Cleanup(ts.Close)
	c, err := kubeq.New(ts.URL)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 5 {
		var got []kubeq.Event
		for ev, err := range c.Stream(ctx, kubeq.Turn{Question: "q", Conversation: "conv-" + strconv.Itoa(i)}) {
			require.NoError(t, err)
			got = append(got, ev)
		}
		require.IsType(t, kubeq.End{}, got[len(got)-1])
	}
	assert.Equal(t, int32(1), opened.Load(), "one connection for five turns")
}
