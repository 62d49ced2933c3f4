package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"

	"github.com/kubeq-mcp/kubeq-mcp/internal/testskip"
)

// A 2026-era gate waits for the client to come back with the human's
// answer. If the process stops first (SIGTERM on HTTP, the host closing
// stdin on stdio), nothing would ever deny it and the backend never expires
// it: the binary denies it on the way out, and audits it.
func TestBinaryShutdownDeniesWaitingGate(t *testing.T) {
	if testing.Short() {
		testskip.Skip(t, "starts the binary: skipped with -short")
	}
	for _, transport := range []string{"http", "stdio"} {
		t.Run(transport, func(t *testing.T) {
			backend := kubeqtest.NewServer()
			t.Cleanup(backend.Close)
			backend.Handle("restart web", binScript(podGate("web-1", "approve")))
			audit := filepath.Join(t.TempDir(), "audit.jsonl")
			stderr := &syncBuffer{}
			args := []string{"--url", backend.URL, "--approval-timeout", "10m", "--audit-log", audit,
				"--retry-delays", "10ms"}

			var tr sdk.Transport
			var cmd *exec.Cmd
			if transport == "http" {
				var endpoint string
				cmd, endpoint = startHTTPBinary(t, kubeqMCPBinary(t), stderr, args...)
				tr = &sdk.StreamableClientTransport{Endpoint: endpoint, MaxRetries: -1}
			} else {
				cmd = exec.Command(kubeqMCPBinary(t), args...)
				cmd.Stderr = stderr
				tr = &sdk.CommandTransport{Command: cmd, TerminateDuration: 15 * time.Second}
			}
			h := &binHuman{backend: backend, gates: map[string]binGate{}, forms: map[string]*sdk.ElicitParams{}}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cs, err := sdk.NewClient(&sdk.Implementation{Name: "shutdown-test", Version: "1"},
				&sdk.ClientOptions{ElicitationHandler: h.elicit, MultiRoundTrip: &sdk.MultiRoundTripOptions{Disabled: true}}).
				Connect(ctx, tr, nil)
			require.NoError(t, err, stderr.String())
			res, err := binQuery(cs, map[string]any{"question": "restart web"})
			require.NoError(t, err)
			require.True(t, res.NeedsInput(), "2026 era: the gate waits for the client")
			conv := sessionOf(backend, "restart web")
			_, pending := backend.PendingGate(conv)
			require.True(t, pending)

			if transport == "http" {
				require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				select {
				case err := <-done:
					require.NoError(t, err, "exit 0 on SIGTERM: %s", stderr.String())
				case <-time.After(20 * time.Second):
					t.Fatalf("did not exit after SIGTERM: %s", stderr.String())
				}
				_ = cs.Close()
			} else {
				require.NoError(t, cs.Close()) // stdin closed: the host went away
			}

			_, pending = backend.PendingGate(conv)
			assert.False(t, pending, "denied on the way out: %s", stderr.String())
			assert.Equal(t, []string{"restart web", "deny"}, backend.MessagesFor(conv))
			data, err := os.ReadFile(audit)
			require.NoError(t, err)
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			require.Len(t, lines, 1, "%s", data)
			var rec map[string]any
			require.NoError(t, json.Unmarshal([]byte(lines[0]), &rec))
			assert.Equal(t, "denied", rec["decision"])
			assert.Equal(t, "error", rec["reason"])
			assert.Equal(t, "web-1", rec["approval_id"])
		})
	}
}
