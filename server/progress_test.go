package server

import (
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

func TestTokensAreCoalescedAndFlushedBeforeOtherEvents(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.CoalesceBytes = 64
		c.CoalesceInterval = time.Hour // only size and other events flush here
	}, kubeqtest.WithTokenChunkSize(3))
	first := strings.Repeat("abcdefghij", 20) // 200 bytes in 3-byte tokens
	f.backend.Handle("coalesce", kubeqtest.Script{
		kubeqtest.Tokens(first),
		kubeqtest.Status("synthesizing", "Composing answer…"),
		kubeqtest.Tokens("tail"),
	})
	cs, prog, wire := f.connectWire("http", clientOpts{version: "2025-11-25"})
	res := call(t, cs, map[string]any{"question": "coalesce"})
	require.False(t, res.IsError, textOf(res))
	assert.Equal(t, first+"tail", structured(t, res)["answer"])
	assertProgressBeforeResult(t, wire, tokenFor(t), 3)

	msgs := waitMessages(t, prog, 3)
	statusAt := -1
	var before strings.Builder
	for i, m := range msgs {
		if m == "[synthesizing] Composing answer…" {
			statusAt = i
			break
		}
		assert.GreaterOrEqual(t, len(m), 1)
		before.WriteString(m)
	}
	require.GreaterOrEqual(t, statusAt, 1, "status message missing or first: %q", msgs)
	assert.Equal(t, first, before.String(), "every token before the status is flushed ahead of it, in order")
	assert.Less(t, statusAt, 67/3, "3-byte tokens must have been coalesced")
	assert.Equal(t, "tail", msgs[len(msgs)-1], "the last tokens are flushed at the end")
}

func TestTokensFlushAfterTheInterval(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.CoalesceBytes = 1 << 20
		c.CoalesceInterval = 20 * time.Millisecond
	})
	// The backend holds the turn open after the first tokens until the
	// client has seen them: only the interval can have flushed them.
	release := make(chan struct{})
	f.backend.Handle("pause", kubeqtest.Script{
		kubeqtest.Token("before the pause"),
		kubeqtest.WaitFor(release),
		kubeqtest.Token(" after"),
	})
	cs, prog := f.connect("http", clientOpts{version: "2025-11-25"})
	go func() {
		defer close(release)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			for _, m := range prog.messages() {
				if m == "before the pause" {
					return
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	res := call(t, cs, map[string]any{"question": "pause"})
	require.False(t, res.IsError)
	msgs := waitMessages(t, prog, 2)
	assert.Equal(t, []string{"before the pause", " after"}, msgs,
		"the first tokens must arrive on their own while the backend waits")
}

// While the backend only heartbeats, the client gets a keep-alive every
// KeepAliveInterval, and none once the result is out. The bounds come from
// the configured values: the backend is silent for 20 intervals, so at
// least a quarter of those keep-alives must arrive even on a saturated
// machine, and since they are spaced by the interval there can be no more
// than the call's whole duration divided by it, plus one.
func TestKeepAliveWhileTheBackendOnlyHeartbeats(t *testing.T) {
	const interval = 50 * time.Millisecond
	const silent = 20 * interval
	f := newFixture(t, func(c *Config) { c.KeepAliveInterval = interval })
	f.backend.Handle("long tool run", kubeqtest.Script{
		kubeqtest.Status("investigating", "Running diagnostics…"),
		kubeqtest.Sleep(silent), // heartbeats only
		kubeqtest.Tokens("done"),
	})
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			cs, prog, wire := f.connectWire(tr, clientOpts{version: "2025-11-25"})
			start := time.Now()
			res := call(t, cs, map[string]any{"question": "long tool run"})
			elapsed := time.Since(start)
			require.False(t, res.IsError)

			// Drain: give a keep-alive that outlived its call four intervals
			// to be sent, then a ping round trip puts everything the server
			// wrote before its answer on the wire ahead of it (one writer on
			// stdio; on HTTP the call's own stream ended with its result).
			time.Sleep(4 * interval)
			require.NoError(t, cs.Ping(t.Context(), nil))
			before, after, saw := wire.progressBeforeResult(tokenFor(t))
			require.True(t, saw, "the result was never read off the wire")
			assert.Zero(t, after, "progress after the result")

			msgs := waitMessages(t, prog, before)
			keepAlives := 0
			for _, m := range msgs {
				if strings.HasPrefix(m, "still working") {
					keepAlives++
				}
			}
			assert.GreaterOrEqual(t, keepAlives, int(silent/interval)/4, "messages: %q", msgs)
			assert.LessOrEqual(t, keepAlives, int(elapsed/interval)+1,
				"keep-alives must be spaced by the interval (call took %s): %q", elapsed, msgs)
		})
	}
}

func TestNoProgressWithoutToken(t *testing.T) {
	f := newFixture(t, nil)
	f.backend.Handle("q", diagnosticScript())
	cs, prog, wire := f.connectWire("stdio", clientOpts{version: "2025-11-25"})
	ctx := t.Context()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "kube_query", Arguments: map[string]any{"question": "q"}})
	require.NoError(t, err)
	require.False(t, res.IsError)
	assert.Empty(t, prog.messages())
	assert.NotContains(t, wire.methods(), "notifications/progress")
}
