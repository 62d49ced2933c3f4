package server

import (
	"context"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// Bad arguments are refused before anything is sent, with a message a
// model can act on: which argument, what is wrong, what is allowed.
func TestQueryBadArgumentsRefusedClearly(t *testing.T) {
	cases := []struct {
		name string
		args map[string]any
		want string
	}{
		{"unknown argument", map[string]any{"question": "q", "bogus": 1},
			`unknown argument "bogus"; kube_query takes question, conversation_id, namespace`},
		{"missing question", map[string]any{"namespace": "shop"}, "question: required"},
		{"blank question", map[string]any{"question": " \t"}, "question: must not be empty"},
		{"question not a string", map[string]any{"question": 5}, "question must be a string, not number"},
		{"question too long", map[string]any{"question": strings.Repeat("é", 40000)}, "question: 40000 characters is over the limit"},
		{"other case is another name", map[string]any{"question": "q", "NAMESPACE": "shop"}, `unknown argument "NAMESPACE"`},
		{"null is not a string", map[string]any{"question": "q", "namespace": nil}, "namespace must be a string, not null"},
		{"bad conversation id", map[string]any{"question": "q", "conversation_id": "a b"},
			`conversation_id "a b": must be a conversation_id returned by kube_query`},
		{"bad namespace", map[string]any{"question": "q", "namespace": "Shop_1"},
			`namespace "Shop_1": must be a Kubernetes namespace name`},
		{"user id not offered", map[string]any{"question": "q", "user_id": "alice@corp.com"},
			"user_id: this server sends its configured user"},
	}
	f := newFixture(t, nil)
	cs, _ := f.connect("http", clientOpts{version: "2025-11-25"})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := query(context.Background(), cs, c.args)
			require.NoError(t, err)
			require.True(t, res.IsError, textOf(res))
			assert.Contains(t, textOf(res), c.want)
			assert.NotContains(t, textOf(res), "&{", "no Go struct dumps")
		})
	}
	assert.Empty(t, f.backend.ChatRequests(), "nothing was sent")

	// The limit counts characters: 20,000 two-byte characters are within it.
	f.backend.Handle(strings.Repeat("é", 20000), kubeqtest.Answer("ok"))
	res, err := query(context.Background(), cs, map[string]any{"question": strings.Repeat("é", 20000)})
	require.NoError(t, err)
	assert.False(t, res.IsError, textOf(res))
}

func TestHealthTakesNoArguments(t *testing.T) {
	f := newFixture(t, nil)
	cs, _ := f.connect("http", clientOpts{version: "2025-11-25"})
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "kube_health", Arguments: map[string]any{"url": "http://elsewhere"}})
	require.NoError(t, err)
	require.True(t, res.IsError, textOf(res))
	assert.Contains(t, textOf(res), `unknown argument "url"; kube_health takes no arguments`)
}
