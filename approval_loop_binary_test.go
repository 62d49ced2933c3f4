package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// proposeForever is a backend turn that raises a gate, and another after
// every denial, depth times.
func proposeForever(prefix string, depth int) kubeqtest.Script {
	next := kubeqtest.Script{kubeqtest.Tokens("I give up.")}
	for i := depth; i >= 1; i-- {
		id := fmt.Sprintf("%s-%d", prefix, i)
		next = kubeqtest.Script{kubeqtest.Tokens("Then let me try this. "), kubeqtest.Gate{
			Command: "kubectl delete pod " + id + " -n shop", ActionID: id, Risk: "high",
			OnApprove: kubeqtest.Script{kubeqtest.Tokens("Deleted " + id + ".")},
			OnDeny:    next,
		}}
	}
	return next
}

// Issue 19, item 1: a backend that proposes another change after every
// denial gets one form shown; the re-proposals are denied without asking,
// within the cap of 5, and the call ends saying what was denied.
func TestBinaryDenialIsNotAskedAgain(t *testing.T) {
	for _, tr := range []string{"stdio", "http"} {
		for _, version := range []string{"2025-11-25", ""} {
			t.Run(tr+"/"+version, func(t *testing.T) {
				backend := kubeqtest.NewServer(kubeqtest.WithHeartbeat(20 * time.Millisecond))
				t.Cleanup(backend.Close)
				backend.Handle("clean up shop", proposeForever("web", 40))
				bin := startBinaryFor(t, tr, backend)
				var forms atomic.Int32
				cs := bin.connect(version, &sdk.ClientOptions{ElicitationHandler: func(context.Context, *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
					forms.Add(1)
					return &sdk.ElicitResult{Action: "accept", Content: map[string]any{"decision": "deny", "confirm": "no"}}, nil
				}})
				res, err := binQuery(cs, map[string]any{"question": "clean up shop"})
				require.NoError(t, err, "the call ends")
				txt := demoText(res)
				t.Logf("result (isError=%v): %s", res.IsError, txt)
				assert.Equal(t, int32(1), forms.Load(), "one form shown")
				conv := sessionOf(backend, "clean up shop")
				msgs := backend.MessagesFor(conv)
				assert.Equal(t, []string{"clean up shop", "deny", "deny", "deny", "deny", "deny", "deny"}, msgs,
					"the human's deny, then 5 automatic ones")
				for _, d := range backend.Decisions() {
					assert.Falsef(t, d.Approved, "%s approved", d.ActionID)
				}
				assert.Contains(t, txt, "kubectl delete pod web-2 -n shop", "the result says what was proposed")
				assert.Contains(t, txt, "DENIED")
			})
		}
	}
}
