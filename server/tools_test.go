package server

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

func TestToolsListOverEveryTransportAndEra(t *testing.T) {
	for _, tr := range transports {
		for _, era := range eras {
			t.Run(tr+"/"+era.name, func(t *testing.T) {
				f := newFixture(t, nil)
				cs, _ := f.connect(tr, clientOpts{version: era.version})
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				res, err := cs.ListTools(ctx, nil)
				require.NoError(t, err)
				names := map[string]*sdk.Tool{}
				for _, tool := range res.Tools {
					names[tool.Name] = tool
				}
				require.Contains(t, names, "kube_query")
				require.Contains(t, names, "kube_health")
				q := names["kube_query"]
				assert.NotNil(t, q.OutputSchema)
				assert.True(t, *q.Annotations.DestructiveHint)
				assert.True(t, names["kube_health"].Annotations.ReadOnlyHint)
			})
		}
	}
}

func TestQueryRejectsBadInputBeforeTheBackend(t *testing.T) {
	f := newFixture(t, nil)
	cs, _ := f.connect("http", clientOpts{version: "2025-11-25"})
	cases := []struct {
		name string
		args map[string]any
		want string
	}{
		{"missing question", map[string]any{}, "question"},
		{"empty question", map[string]any{"question": "   "}, "question"},
		{"wrong type", map[string]any{"question": 42}, "question"},
		{"unknown argument", map[string]any{"question": "hi", "auto_approve": true}, "auto_approve"},
		{"oversized", map[string]any{"question": strings.Repeat("é", 40000)}, "question"},
		{"header injection in conversation", map[string]any{"question": "hi", "conversation_id": "a\r\nX-Evil: 1"}, "conversation_id"},
		{"bad namespace", map[string]any{"question": "hi", "namespace": "Not_A_Namespace"}, "namespace"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "kube_query", Arguments: c.args})
			if err != nil { // a client-side schema check is as good as ours
				assert.Contains(t, err.Error(), c.want)
				return
			}
			require.True(t, res.IsError, textOf(res))
			assert.Contains(t, textOf(res), c.want)
		})
	}
	assert.Empty(t, f.backend.ChatRequests(), "bad input must never reach the backend")
}

func TestUnknownToolIsAnError(t *testing.T) {
	f := newFixture(t, nil)
	cs, _ := f.connect("http", clientOpts{version: "2025-11-25"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "kube_delete_everything", Arguments: map[string]any{}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "kube_delete_everything")
}

func TestHealthUpAndDown(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			f := newFixture(t, nil)
			cs, _ := f.connect(tr, clientOpts{version: "2025-11-25"})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "kube_health", Arguments: map[string]any{}})
			require.NoError(t, err)
			out := structured(t, res)
			assert.Equal(t, true, out["healthy"])
			assert.Equal(t, 200.0, out["status_code"])
			assert.Equal(t, f.backend.URL+"/healthz", out["url"])

			f.backend.SetHealth(503, false)
			res, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: "kube_health", Arguments: map[string]any{}})
			require.NoError(t, err)
			out = structured(t, res)
			assert.Equal(t, false, out["healthy"])
			assert.Equal(t, 503.0, out["status_code"])
			assert.Contains(t, out["reason"], "503")
		})
	}
}

func TestHealthOfUnreachableBackend(t *testing.T) {
	// A backend that is gone: its port refuses connections.
	gone := kubeqtest.NewServer()
	url := gone.URL
	gone.Close()
	client, err := kubeq.New(url, kubeq.WithRetryDelays())
	require.NoError(t, err)
	srv, err := New(Config{Backend: client})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	f := &fixture{t: t, srv: srv}
	cs, _ := f.connect("http", clientOpts{version: "2025-11-25"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "kube_health", Arguments: map[string]any{}})
	require.NoError(t, err)
	out := structured(t, res)
	assert.Equal(t, false, out["healthy"])
	assert.Equal(t, 0.0, out["status_code"])
	assert.Contains(t, strings.ToLower(out["reason"].(string)), "refused")

	// kube_query on the same dead backend is a tool error naming the URL.
	q := call(t, cs, map[string]any{"question": "anything"})
	require.True(t, q.IsError)
	assert.Contains(t, textOf(q), url)
	// Refused on this machine: most likely no KubeIntellect at all.
	assert.Contains(t, textOf(q), "No KubeIntellect at "+url+"; to try kubeq-mcp without one, start it with --demo")
}

// A refusal elsewhere, or another failure on this machine, gets no --demo
// hint: something is there, or the URL names another machine.
func TestNoDemoHintUnlessRefusedOnLoopback(t *testing.T) {
	assert.True(t, refusedOnLoopback(&kubeq.TransportError{Err: syscall.ECONNREFUSED}, "http://localhost:8000"))
	assert.True(t, refusedOnLoopback(&kubeq.TransportError{Err: syscall.ECONNREFUSED}, "http://[::1]:8000"))
	assert.False(t, refusedOnLoopback(&kubeq.TransportError{Err: syscall.ECONNREFUSED}, "https://ki.example.com"))
	assert.False(t, refusedOnLoopback(&kubeq.TransportError{Err: syscall.ETIMEDOUT}, "http://127.0.0.1:8000"))
	assert.False(t, refusedOnLoopback(&kubeq.StatusError{StatusCode: 502}, "http://127.0.0.1:8000"))
}

func TestCancellationClosesTheBackendRequest(t *testing.T) {
	const turnLength = time.Minute
	for _, tr := range transports {
		for _, era := range eras {
			if tr == "http" && era.version == "" {
				// A 2026-era client over HTTP stops a call by closing its
				// stream, which cannot be told from giving up: the turn
				// goes on (TestLongInvestigations).
				continue
			}
			t.Run(tr+"/"+era.name, func(t *testing.T) {
				f := newFixture(t, nil)
				f.backend.Handle("slow question", kubeqtest.Script{
					kubeqtest.Status("investigating", "Gathering evidence…"),
					kubeqtest.Sleep(turnLength),
					kubeqtest.Tokens("never"),
				})
				cs, prog := f.connect(tr, clientOpts{version: era.version})
				ctx, cancel := context.WithCancel(context.Background())
				errc := make(chan error, 1)
				go func() {
					p := &sdk.CallToolParams{Name: "kube_query", Arguments: map[string]any{"question": "slow question"}}
					p.SetProgressToken("slow")
					_, err := cs.CallTool(ctx, p)
					errc <- err
				}()
				require.NotEmpty(t, waitMessages(t, prog, 1), "the turn must have started")
				cancel()
				require.Error(t, <-errc)
				// The turn would run for turnLength, kept alive by heartbeats
				// (no idle timeout ends it): a disconnect well inside that can
				// only be the cancellation's doing.
				start := time.Now()
				wctx, wcancel := context.WithTimeout(context.Background(), turnLength/6)
				defer wcancel()
				reqs := f.backend.ChatRequests()
				require.Len(t, reqs, 1)
				_, err := f.backend.WaitForDisconnect(wctx, reqs[0].Session)
				require.NoError(t, err, "the backend request must be closed after cancellation, well before the turn ends")
				t.Logf("backend saw the disconnect %v after the client cancelled", time.Since(start))
			})
		}
	}
}
