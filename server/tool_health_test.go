package server

import (
	"context"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// kube_health through a real MCP client against the fake backend: it
// checks the API key, readiness and degraded features, and an older
// backend without those still gets an answer.
func TestHealthTellsWhatKubeQueryWillMeet(t *testing.T) {
	cases := []struct {
		name    string
		opts    []kubeqtest.Option
		key     string
		setup   func(*kubeqtest.Server)
		healthy bool
		want    map[string]any // fields of the structured result
		absent  []string       // optional fields an older backend cannot fill
		text    []string
	}{
		{
			name: "wrong key", opts: []kubeqtest.Option{kubeqtest.WithAPIKeys("good-key-1")}, key: "wrong-key-2",
			want: map[string]any{"api_key": "rejected", "status_code": 401.0, "era": "v4", "ready": true},
			text: []string{"is not healthy: the API key was rejected", "/v1/auth/whoami"},
		},
		{
			name: "no key", opts: []kubeqtest.Option{kubeqtest.WithAPIKeys("good-key-1")},
			want: map[string]any{"api_key": "missing", "status_code": 401.0},
			text: []string{"is not healthy: no API key set", "set KUBE_Q_API_KEY"},
		},
		{
			name: "v4 body", opts: []kubeqtest.Option{kubeqtest.WithAPIKeys("good-key-1"), kubeqtest.WithRole("operator"), kubeqtest.WithVersion("4.3.1")},
			key: "good-key-1", healthy: true,
			setup: func(b *kubeqtest.Server) { b.SetDegradedFlags("MEMORY_HIERARCHY_ENABLED") },
			want: map[string]any{
				"api_key": "accepted", "role": "operator", "version": "4.3.1", "era": "v4", "ready": true,
				"degraded_features": []any{"MEMORY_HIERARCHY_ENABLED"}, "status_code": 200.0,
			},
			absent: []string{"notes"},
			text: []string{"is healthy: version 4.3.1, era v4, ready, API key accepted (role operator).",
				"Degraded features (switched on, not running): MEMORY_HIERARCHY_ENABLED."},
		},
		{
			name: "v2 body", opts: []kubeqtest.Option{kubeqtest.WithV2()}, key: "any-key", healthy: true,
			want:   map[string]any{"version": "2.0.0", "era": "v2", "api_key": "unchecked"},
			absent: []string{"ready", "role", "degraded_features"},
			text:   []string{"is healthy: version 2.0.0, era v2, API key not checked.", "older (V2) KubeIntellect", "Note: API key not checked: HTTP 404"},
		},
		{
			name: "not ready", setup: func(b *kubeqtest.Server) { b.SetReady(false) },
			want: map[string]any{"ready": false, "status_code": 200.0},
			text: []string{"is not healthy: KubeIntellect is not ready", "draining"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			backend := kubeqtest.NewServer(c.opts...)
			t.Cleanup(backend.Close)
			if c.setup != nil {
				c.setup(backend)
			}
			var opts []kubeq.Option
			if c.key != "" {
				opts = append(opts, kubeq.WithAPIKey(c.key))
			}
			client, err := kubeq.New(backend.URL, opts...)
			require.NoError(t, err)
			srv, err := New(Config{Backend: client})
			require.NoError(t, err)
			t.Cleanup(func() { _ = srv.Close() })
			f := &fixture{t: t, backend: backend, srv: srv}
			cs, _ := f.connect("http", clientOpts{version: "2025-11-25"})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "kube_health", Arguments: map[string]any{}})
			require.NoError(t, err)
			assert.False(t, res.IsError, "an unhealthy backend is an answer, not a tool failure")
			out := structured(t, res)
			assert.Equal(t, c.healthy, out["healthy"], textOf(res))
			for k, v := range c.want {
				assert.Equal(t, v, out[k], "field %s", k)
			}
			for _, k := range c.absent {
				assert.NotContains(t, out, k)
			}
			for _, s := range c.text {
				assert.Contains(t, textOf(res), s)
			}
			if c.key != "" {
				assert.NotContains(t, textOf(res), c.key, "the key is never echoed")
			}
		})
	}
}
