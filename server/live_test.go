package server

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
	"github.com/kubeq-mcp/kubeq-mcp/schema"
)

// callTool calls name with args and a progress token, bounded by limit.
func callTool(t *testing.T, cs *sdk.ClientSession, name string, args map[string]any, limit time.Duration) (*sdk.CallToolResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	p := &sdk.CallToolParams{Name: name, Arguments: args}
	p.SetProgressToken(tokenFor(t) + "-" + name)
	return cs.CallTool(ctx, p)
}

// The answer of a long turn in two pieces: the call deadline returns what
// came so far with status running, and kube_answer returns the whole
// answer, of which the first piece is a prefix; the backend turn is never
// cancelled.
func TestLongInvestigations(t *testing.T) {
	for _, tr := range transports {
		for _, era := range eras {
			t.Run(tr+"/"+era.name, func(t *testing.T) {
				deadline := 300 * time.Millisecond
				f := newFixture(t, func(c *Config) { c.CallDeadline = &deadline })
				release := make(chan struct{})
				f.backend.Handle("long one", kubeqtest.Script{
					kubeqtest.Status("investigating", "Gathering evidence…"),
					kubeqtest.Tokens("First part. "),
					kubeqtest.WaitFor(release),
					kubeqtest.Status("answering", "Writing it up"),
					kubeqtest.Tokens("Second part."),
				})
				cs, _ := f.connect(tr, clientOpts{version: era.version})

				res, err := callTool(t, cs, "kube_query", map[string]any{"question": "long one"}, 20*time.Second)
				require.NoError(t, err)
				require.False(t, res.IsError, textOf(res))
				first := structured(t, res)
				assert.Equal(t, "running", first["status"])
				assert.Equal(t, "First part. ", first["answer"])
				assert.Equal(t, "[investigating] Gathering evidence…", first["latest_status"])
				assert.Contains(t, textOf(res), "kube_answer")
				conv := first["conversation_id"].(string)

				// Nothing finished yet: kube_answer without waiting says so.
				res, err = callTool(t, cs, "kube_answer", map[string]any{"conversation_id": conv}, 20*time.Second)
				require.NoError(t, err)
				assert.Equal(t, "running", structured(t, res)["status"])

				close(release)
				res, err = callTool(t, cs, "kube_answer", map[string]any{"conversation_id": conv, "wait_seconds": 10}, 20*time.Second)
				require.NoError(t, err)
				require.False(t, res.IsError, textOf(res))
				whole := structured(t, res)
				assert.Equal(t, "complete", whole["status"])
				assert.Equal(t, "First part. Second part.", whole["answer"])
				assert.True(t, strings.HasPrefix(whole["answer"].(string), first["answer"].(string)))

				require.Len(t, f.backend.ChatRequests(), 1, "one backend turn, never re-sent")
				require.Eventually(t, func() bool { return f.backend.ChatRequests()[0].Finished }, 5*time.Second, time.Millisecond,
					"the backend turn ran to [DONE]")
				assert.False(t, f.backend.ChatRequests()[0].Disconnected, "the backend turn was never cancelled")

				assert.Zero(t, f.srv.cancels.waiting(), "a stop is no longer watched for once the turn ended")

				// Idempotent: asked again, the same answer.
				res, err = callTool(t, cs, "kube_answer", map[string]any{"conversation_id": conv}, 20*time.Second)
				require.NoError(t, err)
				assert.Equal(t, "First part. Second part.", structured(t, res)["answer"])
			})
		}
	}
}

// A client that gives up (its own request timeout) leaves the turn running;
// kube_answer then returns the whole answer, byte-exact.
func TestClientThatGivesUpLeavesTheTurnRunning(t *testing.T) {
	for _, tr := range transports {
		for _, era := range eras {
			t.Run(tr+"/"+era.name, func(t *testing.T) {
				noDeadline := time.Duration(0)
				f := newFixture(t, func(c *Config) { c.CallDeadline = &noDeadline })
				release := make(chan struct{})
				answer := "Done: the pods are healthy ✅ — `kubectl get pods` shows 3/3."
				f.backend.Handle("slow", kubeqtest.Script{
					kubeqtest.Status("investigating", "Looking"),
					kubeqtest.WaitFor(release),
					kubeqtest.Tokens(answer),
				})
				cs, prog := f.connect(tr, clientOpts{version: era.version})
				_, err := callTool(t, cs, "kube_query", map[string]any{"question": "slow", "conversation_id": "conv-gives-up"}, 500*time.Millisecond)
				require.Error(t, err, "the client's own timeout")
				require.NotEmpty(t, prog.messages(), "the turn had started")
				// The server sees the client go a moment later; once it
				// has, the investigation reads as running.
				require.Eventually(t, func() bool {
					r, err := callTool(t, cs, "kube_answer", map[string]any{"conversation_id": "conv-gives-up"}, 20*time.Second)
					return err == nil && !r.IsError && structured(t, r)["status"] == "running"
				}, 10*time.Second, 10*time.Millisecond)
				close(release)
				res, err := callTool(t, cs, "kube_answer", map[string]any{"conversation_id": "conv-gives-up", "wait_seconds": 10}, 20*time.Second)
				require.NoError(t, err)
				require.False(t, res.IsError, textOf(res))
				assert.Equal(t, answer, structured(t, res)["answer"])
				reqs := f.backend.ChatRequests()
				require.Len(t, reqs, 1)
				assert.False(t, reqs[0].Disconnected)
			})
		}
	}
}

// A gate raised while nobody watched is asked on the next call, and both
// answers work: approve sends approve, deny sends deny.
func TestGateRaisedWhileDetachedIsAskedNext(t *testing.T) {
	for _, decision := range []string{"approve", "deny"} {
		t.Run(decision, func(t *testing.T) {
			deadline := 300 * time.Millisecond
			f := newFixture(t, func(c *Config) { c.CallDeadline = &deadline })
			release := make(chan struct{})
			f.backend.Handle("clean up", kubeqtest.Script{
				kubeqtest.Status("investigating", "Looking"),
				kubeqtest.WaitFor(release),
				kubeqtest.Gate{
					Command:   "kubectl delete pod web-1 -n shop",
					OnApprove: kubeqtest.Script{kubeqtest.Tokens("Deleted web-1.")},
					OnDeny:    kubeqtest.Script{kubeqtest.Tokens("Left web-1 alone.")},
				},
			})
			var asked atomic.Int32
			cs, _ := f.connect("stdio", clientOpts{version: "2025-11-25", elicit: func(_ context.Context, r *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
				asked.Add(1)
				assert.Contains(t, r.Params.Message, "kubectl delete pod web-1 -n shop")
				content := map[string]any{"decision": decision}
				if decision == "approve" {
					content["confirm"] = "web-1"
				}
				return &sdk.ElicitResult{Action: "accept", Content: content}, nil
			}})
			res, err := callTool(t, cs, "kube_query", map[string]any{"question": "clean up"}, 20*time.Second)
			require.NoError(t, err)
			first := structured(t, res)
			require.Equal(t, "running", first["status"])
			conv := first["conversation_id"].(string)
			close(release)
			// kube_answer waits for the detached turn; once it stands at the
			// gate, the human is asked in that call.
			var final *sdk.CallToolResult
			require.Eventually(t, func() bool {
				r, err := callTool(t, cs, "kube_answer", map[string]any{"conversation_id": conv, "wait_seconds": 5}, 20*time.Second)
				if err != nil || r.IsError || structured(t, r)["status"] != "complete" {
					return false
				}
				final = r
				return true
			}, 15*time.Second, 10*time.Millisecond)
			out := structured(t, final)
			want := map[string]string{"approve": "Deleted web-1.", "deny": "Left web-1 alone."}[decision]
			assert.Contains(t, out["answer"], want)
			approvals := out["approvals"].([]any)
			require.Len(t, approvals, 1)
			assert.Equal(t, map[string]string{"approve": "approved", "deny": "denied"}[decision], approvals[0].(map[string]any)["decision"])
			assert.Equal(t, int32(1), asked.Load(), "one form")
			got := f.backend.MessagesFor(conv)
			require.GreaterOrEqual(t, len(got), 2)
			assert.Equal(t, decision, got[len(got)-1])
			for _, m := range got {
				if decision == "deny" {
					assert.NotEqual(t, "approve", m)
				}
			}
		})
	}
}

// A result kept for kube_answer (its client gave up at the approval form)
// is not a running investigation: a question that then waits past its
// deadline for the conversation's lease says so plainly, and does not
// read a turn the kept result has none of.
func TestKeptResultIsNotTakenForARunningTurn(t *testing.T) {
	deadline := 300 * time.Millisecond
	f := newFixture(t, func(c *Config) { c.CallDeadline = &deadline })
	f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-kept")})
	f.backend.Handle("how are the pods?", kubeqtest.Answer("All running."))
	h := newHuman(t, func(ctx context.Context, h *human, _ *sdk.ElicitParams) (*sdk.ElicitResult, error) {
		select { // the human never answers; the client gives up first
		case <-ctx.Done():
		case <-h.stopped:
		}
		return nil, errFormBroke
	})
	cs := f.connectHuman("stdio", "2025-11-25", h, false)
	conv := "conv-kept"
	_, err := callTool(t, cs, "kube_query", map[string]any{"question": podQuestion, "conversation_id": conv}, time.Second)
	require.Error(t, err, "the client gave up at the form")
	require.Eventually(t, func() bool { return f.srv.live.get(conv) != nil }, 10*time.Second, 5*time.Millisecond,
		"the denial's result is kept for kube_answer")

	// Another call holds the conversation (a form open there, say).
	held, err := f.srv.ledger.Acquire(context.Background(), conv)
	require.NoError(t, err)
	defer held.Release()
	res, err := callTool(t, cs, "kube_query", map[string]any{"question": "how are the pods?", "conversation_id": conv}, 20*time.Second)
	require.NoError(t, err)
	assert.True(t, res.IsError, textOf(res))
	assert.NotContains(t, textOf(res), "panic")
	assert.Contains(t, textOf(res), "still running at the call deadline")
	assert.Zero(t, f.backend.Received("how are the pods?"), "nothing sent on top of the other call")
}

// kube_answer on a gate another call is already asking (it holds the
// conversation) waits at most its call deadline for it, not for as long as
// that call keeps the conversation.
func TestAnswerWaitsBoundedForAGateAnotherCallHolds(t *testing.T) {
	deadline := 300 * time.Millisecond
	f := newFixture(t, func(c *Config) { c.CallDeadline = &deadline })
	release := gateOnRelease(f, "clean up", "act-held")
	cs := f.connectHuman("stdio", "2025-11-25", newHuman(t, declineForm), false)
	res, err := callTool(t, cs, "kube_query", map[string]any{"question": "clean up"}, 20*time.Second)
	require.NoError(t, err)
	conv := structured(t, res)["conversation_id"].(string)
	close(release)
	waitSettled(t, f, conv)

	held, err := f.srv.ledger.Acquire(context.Background(), conv) // another call asking it
	require.NoError(t, err)
	defer held.Release()
	// The client's own limit is far past the deadline: the server must
	// answer before it.
	res, err = callTool(t, cs, "kube_answer", map[string]any{"conversation_id": conv}, 10*time.Second)
	require.NoError(t, err, "kube_answer returned within its call deadline")
	assert.True(t, res.IsError, textOf(res))
	assertNeverApproved(t, f.backend)
}

// A 2026-era client asked through kube_answer for a gate raised while
// detached calls kube_answer again with the human's answer and the sealed
// state: that second leg is the approval's, and both answers work.
func TestGateRaisedWhileDetachedAskedBySealedForm(t *testing.T) {
	for _, decision := range []string{"approve", "deny"} {
		t.Run(decision, func(t *testing.T) {
			deadline := 300 * time.Millisecond
			f := newFixture(t, func(c *Config) { c.CallDeadline = &deadline })
			release := gateOnRelease(f, "clean up", "act-sealed")
			cs := f.connectHuman("http", "", newHuman(t, declineForm), false)
			res, err := callTool(t, cs, "kube_query", map[string]any{"question": "clean up"}, 20*time.Second)
			require.NoError(t, err)
			require.Equal(t, "running", structured(t, res)["status"])
			conv := structured(t, res)["conversation_id"].(string)
			close(release)
			waitSettled(t, f, conv)

			args := map[string]any{"conversation_id": conv}
			res, err = callTool(t, cs, "kube_answer", args, 20*time.Second)
			require.NoError(t, err)
			require.Truef(t, res.NeedsInput(), "the sealed form: %s", textOf(res))
			responses := denyAnswer()
			if decision == "approve" {
				responses = approveWith(podTarget)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: "kube_answer", Arguments: args,
				InputResponses: responses, RequestState: res.RequestState})
			require.NoError(t, err)
			require.False(t, res.IsError, textOf(res))
			want := map[string]string{"approve": afterApprove, "deny": afterDeny}[decision]
			assert.Contains(t, structured(t, res)["answer"], want)
			got := f.backend.MessagesFor(conv)
			assert.Equal(t, decision, got[len(got)-1])
		})
	}
}

// A call that reads a detached run just as its driver settles it (it
// waited for the run's lock while the driver closed the turn into the
// run) gets the answer once, not the last turn's text twice.
func TestRunningResultOfARunThatJustSettled(t *testing.T) {
	deadline := 300 * time.Millisecond
	f := newFixture(t, func(c *Config) { c.CallDeadline = &deadline })
	release := make(chan struct{})
	f.backend.Handle("long one", kubeqtest.Script{
		kubeqtest.Tokens("First part. "),
		kubeqtest.WaitFor(release),
		kubeqtest.Tokens("Second part."),
	})
	cs, _ := f.connect("stdio", clientOpts{version: "2025-11-25"})
	res, err := callTool(t, cs, "kube_query", map[string]any{"question": "long one"}, 20*time.Second)
	require.NoError(t, err)
	conv := structured(t, res)["conversation_id"].(string)
	lr := f.srv.live.get(conv)
	require.NotNil(t, lr)
	close(release)
	require.Eventually(t, lr.finished, 10*time.Second, 5*time.Millisecond)

	// What running() returns once it gets the lock after the driver.
	out := f.srv.running(lr).StructuredContent.(schema.QueryOutput)
	assert.Equal(t, "First part. Second part.", out.Answer)
	assert.Equal(t, schema.StatusComplete, out.Status)
}

// An answer TTL of a few nanoseconds is a positive duration the flag
// accepts: the janitors' tickers must not be made with a zero period
// (time.NewTicker panics, in a goroutine: the process dies).
func TestTinyAnswerTTL(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.AnswerTTL = 3 * time.Nanosecond })
	f.backend.Handle("how are the pods?", kubeqtest.Answer("All running."))
	cs, _ := f.connect("stdio", clientOpts{version: "2025-11-25"})
	res := call(t, cs, map[string]any{"question": "how are the pods?"})
	require.False(t, res.IsError, textOf(res))
}

// waitSettled waits until conv's detached run has settled (at its gate,
// or done).
// gateOnRelease scripts question as a turn that says it is looking, waits
// until the returned channel is closed, then raises a gate on podCommand:
// a call with a short deadline leaves it running, and the gate comes while
// nobody watches.
func gateOnRelease(f *fixture, question, actionID string) chan struct{} {
	release := make(chan struct{})
	f.backend.Handle(question, kubeqtest.Script{
		kubeqtest.Status("investigating", "Looking"),
		kubeqtest.WaitFor(release),
		gate(podCommand, actionID),
	})
	return release
}

func waitSettled(t *testing.T, f *fixture, conv string) {
	t.Helper()
	require.Eventually(t, func() bool {
		lr := f.srv.live.get(conv)
		return lr != nil && lr.finished()
	}, 10*time.Second, 5*time.Millisecond, "the detached turn stands at its gate")
}

// A kept result is handed out as a copy: mcp-go decorates the result it
// sends (its type, its _meta), and a kept one may be sent to two calls at
// once, or while the call that made it is still answered.
func TestKeptResultIsHandedOutAsACopy(t *testing.T) {
	res := mcp.NewToolResultStructured(map[string]any{"answer": "a"}, "a")
	res.Meta = &mcp.Meta{AdditionalFields: map[string]any{"k": "v"}}
	c := cloneResult(res)
	c.SetResultType(mcp.ResultTypeComplete)
	c.EnsureResultMeta().AdditionalFields["serverInfo"] = "x"
	c.Content[0] = mcp.NewTextContent("changed")
	assert.Empty(t, res.ResultType)
	assert.NotContains(t, res.Meta.AdditionalFields, "serverInfo")
	assert.Equal(t, "a", res.Content[0].(mcp.TextContent).Text)
	assert.Nil(t, cloneResult(nil))
}
