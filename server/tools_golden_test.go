package server

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/internal/testskip"
)

// TestToolDefinitionsMatchGolden pins what clients see of each tool. A
// change to a name, description, schema or annotation must show up in
// review as a change to testdata/. Regenerate with UPDATE_GOLDEN=1.
// kube_query has two: the default, and with --allow-user-override (user_id).
func TestToolDefinitionsMatchGolden(t *testing.T) {
	for name, tool := range map[string]mcp.Tool{
		"kube_query": queryTool(false), "kube_query.user-override": queryTool(true), "kube_health": healthTool(),
		"kube_answer": answerTool(),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := json.MarshalIndent(tool, "", "  ")
			require.NoError(t, err)
			got = append(got, '\n')
			path := filepath.Join("testdata", name+".golden.json")
			if os.Getenv("UPDATE_GOLDEN") != "" {
				if testskip.InCI() {
					t.Fatal("CI=true: UPDATE_GOLDEN would rewrite the goldens it checks")
				}
				require.NoError(t, os.WriteFile(path, got, 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "golden snapshot missing: run UPDATE_GOLDEN=1 go test ./server/ -run Golden")
			assert.JSONEq(t, string(want), string(got))
			assert.Equal(t, string(want), string(got), "formatting drifted: regenerate the snapshot")
		})
	}
}

func TestToolAnnotationsAreExplicit(t *testing.T) {
	q, h := queryTool(false).Annotations, healthTool().Annotations
	require.NotNil(t, q.ReadOnlyHint)
	assert.False(t, *q.ReadOnlyHint)
	assert.True(t, *q.DestructiveHint)
	assert.False(t, *q.IdempotentHint)
	assert.True(t, *q.OpenWorldHint)
	assert.NotEmpty(t, q.Title)
	assert.True(t, *h.ReadOnlyHint)
	assert.False(t, *h.DestructiveHint)
	assert.True(t, *h.IdempotentHint)
	assert.True(t, *h.OpenWorldHint)
}
