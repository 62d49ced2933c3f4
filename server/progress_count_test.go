package server

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"

	"github.com/kubeq-mcp/kubeq-mcp/internal/testskip"
)

// TestTenThousandTokenTurn measures how many progress notifications a
// 10,000-token turn produces and how many reach the client before the
// result, over each transport and era.
func TestTenThousandTokenTurn(t *testing.T) {
	if testing.Short() {
		testskip.Skip(t, "long turn: skipped with -short")
	}
	answer := strings.Repeat("tok ", 10000) // 10,000 tokens of 4 bytes
	for _, tr := range transports {
		for _, era := range eras {
			t.Run(tr+"/"+era.name, func(t *testing.T) {
				f := newFixture(t, nil, kubeqtest.WithTokenChunkSize(4))
				f.backend.Handle("long answer", kubeqtest.Script{
					kubeqtest.Status("synthesizing", "Composing answer…"),
					kubeqtest.Tokens(answer),
				})
				cs, prog, wire := f.connectWire(tr, clientOpts{version: era.version})
				res := call(t, cs, map[string]any{"question": "long answer"})
				require.False(t, res.IsError)
				require.Equal(t, answer, structured(t, res)["answer"])
				stats := f.srv.Stats()
				before, after, _ := wire.progressBeforeResult(tokenFor(t))
				got := waitMessages(t, prog, int(stats.SentNotifications))
				var text strings.Builder
				for _, m := range got[1:] {
					text.WriteString(m)
				}
				t.Logf("PROGRESS-10K transport=%s era=%s sent=%d dropped=%d read_before_result=%d read_after=%d handled=%d",
					tr, era.name, stats.SentNotifications, stats.DroppedNotifications, before, after, len(got))
				assert.Equal(t, int(stats.SentNotifications), before, "every notification sent is read before the result")
				assert.Zero(t, after)
				assert.Zero(t, stats.DroppedNotifications)
				assert.Equal(t, answer, text.String(), "the coalesced progress carries the whole answer in order")
				assert.Less(t, stats.SentNotifications, int64(1000), "tokens must be coalesced")
			})
		}
	}
}
