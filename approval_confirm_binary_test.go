package main

import (
	"context"
	"regexp"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// Issue 19, item 9 and the unknown-risk rule of issue 10: the form says
// what to type; a bulk change wants namespace/all, several targets want
// all their names, and an empty or unknown risk wants the name like high.
func TestBinaryTypedConfirmation(t *testing.T) {
	cases := []struct {
		command, risk, want string
	}{
		{"kubectl delete pods -l app=web -n prod", "high", "prod/all"},
		{"kubectl delete pod --all -n shop", "high", "shop/all"},
		{"kubectl apply -n prod -f -", "high", "prod/all"},
		{"kubectl delete pod web-1 web-2 -n shop", "high", "web-1 web-2"},
		{"kubectl delete pod web-3 -n shop", "", "web-3"},
		{"kubectl delete pod web-4 -n shop", "critical", "web-4"},
	}
	typed := regexp.MustCompile(`type "([^"]+)" in the confirmation field`)
	for _, tr := range []string{"stdio", "http"} {
		for _, version := range []string{"2025-11-25", ""} {
			t.Run(tr+"/"+version, func(t *testing.T) {
				backend := kubeqtest.NewServer(kubeqtest.WithHeartbeat(20 * time.Millisecond))
				t.Cleanup(backend.Close)
				bin := startBinaryFor(t, tr, backend)
				var mu sync.Mutex
				var try string // what the human types next
				cs := bin.connect(version, &sdk.ClientOptions{ElicitationHandler: func(_ context.Context, req *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
					m := typed.FindStringSubmatch(req.Params.Message)
					if m == nil {
						return &sdk.ElicitResult{Action: "decline"}, nil
					}
					mu.Lock()
					defer mu.Unlock()
					if try == "" {
						try = m[1] // what the form says
					}
					return &sdk.ElicitResult{Action: "accept", Content: map[string]any{"decision": "approve", "confirm": try}}, nil
				}})
				setTry := func(v string) { mu.Lock(); try = v; mu.Unlock() }
				getTry := func() string { mu.Lock(); defer mu.Unlock(); return try }
				for i, c := range cases {
					for _, wrong := range []bool{true, false} {
						q := c.command + map[bool]string{true: " (wrong)", false: ""}[wrong]
						backend.Handle(q, kubeqtest.Script{kubeqtest.Gate{Command: c.command, Risk: c.risk,
							ActionID: q, OnApprove: kubeqtest.Script{kubeqtest.Tokens("done")},
							OnDeny: kubeqtest.Script{kubeqtest.Tokens("left")}}})
						setTry("")
						if wrong {
							setTry("web") // a name, not what the form asks for
						}
						res, err := binQuery(cs, map[string]any{"question": q})
						require.NoError(t, err, "case %d", i)
						require.False(t, res.IsError, demoText(res))
						a := binApprovals(t, res)
						require.Len(t, a, 1, "case %d", i)
						if wrong {
							assert.Equal(t, "confirmation_mismatch", a[0]["reason"], q)
						} else {
							assert.Equal(t, "approved", a[0]["decision"], "%s: the form asked for %q", q, c.want)
							assert.Equal(t, c.want, getTry(), "%s: what the form asks to type", q)
						}
					}
				}
				for _, d := range backend.Decisions() {
					assert.Equal(t, d.Approved, d.ActionID == d.Command, "%s: only the right confirmation approves", d.ActionID)
				}
			})
		}
	}
}
