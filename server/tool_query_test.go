package server

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// diagnosticScript is a full investigation with non-ASCII in the answer.
var diagnosticAnswer = "**Root cause:** `checkout` exits at start-up because `DB_URL` is not set — fix the Secret… 🔴 ünïcödé"

func diagnosticScript() kubeqtest.Script {
	return kubeqtest.Script{
		kubeqtest.Status("loading", "Loading conversation context…"),
		kubeqtest.Status("analyzing", "Analyzing your request…"),
		kubeqtest.ToolCall("run_kubectl", "kubectl get pods -n shop"),
		kubeqtest.ToolResult("run_kubectl", "NAME   READY   STATUS\ncheckout-7d4b9cf6-xk2lp   0/1   CrashLoopBackOff"),
		kubeqtest.Plan(kubeqtest.PlanStep{Description: "Check pods", Status: "done"}, kubeqtest.PlanStep{Description: "Read logs", Status: "in_progress"}),
		kubeqtest.Tokens(diagnosticAnswer),
		kubeqtest.Usage(14210, 655, 14865, 4),
	}
}

func TestQueryDiagnosticTurn(t *testing.T) {
	for _, tr := range transports {
		for _, era := range eras {
			t.Run(tr+"/"+era.name, func(t *testing.T) {
				f := newFixture(t, nil)
				f.backend.Handle("why is checkout crashing?", diagnosticScript())
				cs, prog, wire := f.connectWire(tr, clientOpts{version: era.version})
				res := call(t, cs, map[string]any{"question": "why is checkout crashing?", "namespace": "shop"})
				require.False(t, res.IsError, textOf(res))
				out := structured(t, res)
				assert.Equal(t, diagnosticAnswer, out["answer"])
				assert.Contains(t, textOf(res), diagnosticAnswer)
				assert.Equal(t, map[string]any{"prompt_tokens": 14210.0, "completion_tokens": 655.0, "total_tokens": 14865.0, "llm_calls": 4.0}, out["usage"])
				assert.Equal(t, []any{}, out["approvals"])
				conv, _ := out["conversation_id"].(string)
				require.NotEmpty(t, conv)

				// Progress arrived before the result, in order, strictly increasing.
				assertProgressBeforeResult(t, wire, tokenFor(t), 6)
				msgs := waitMessages(t, prog, 6)
				assert.Contains(t, msgs, "[loading] Loading conversation context…")
				assert.Contains(t, msgs, "[analyzing] Analyzing your request…")
				assert.Contains(t, msgs, "running: kubectl get pods -n shop")
				assert.Contains(t, msgs, "plan: 1/2 steps done; now: Read logs")
				require.NotEmpty(t, msgs)
				assert.Contains(t, msgs[len(msgs)-1], "ünïcödé", "the coalesced answer tokens come last, before the result")
				vals := prog.values()
				for i := 1; i < len(vals); i++ {
					assert.Greater(t, vals[i], vals[i-1], "progress must increase")
				}

				reqs := f.backend.ChatRequests()
				require.Len(t, reqs, 1)
				assert.Equal(t, "shop", reqs[0].Namespace)
				assert.Equal(t, conv, reqs[0].SessionHeader)
				assert.False(t, reqs[0].HasAutoApprove, "auto_approve is never sent")
			})
		}
	}
}

func TestQueryMultiTurnKeepsConversation(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			f := newFixture(t, nil)
			cs, _ := f.connect(tr, clientOpts{version: "2025-11-25"})
			first := structured(t, call(t, cs, map[string]any{"question": "first question"}))
			conv := first["conversation_id"].(string)
			second := structured(t, call(t, cs, map[string]any{"question": "second question", "conversation_id": conv}))
			assert.Equal(t, conv, second["conversation_id"])
			assert.Equal(t, []string{"first question", "second question"}, f.backend.MessagesFor(conv))
		})
	}
}

func TestQueryPhraseGuardSendsNothing(t *testing.T) {
	f := newFixture(t, nil)
	cs, _ := f.connect("http", clientOpts{version: "2025-11-25"})
	var phrases []string
	phrases = append(phrases, kubeqtest.ApprovalPhrases()...)
	phrases = append(phrases, kubeqtest.DenialPhrases()...)
	phrases = append(phrases, kubeqtest.AutoApprovePhrases()...)
	for _, p := range phrases {
		for _, variant := range []string{p, "  " + p + " ", upper(p)} {
			res := call(t, cs, map[string]any{"question": variant})
			assert.True(t, res.IsError, "question %q must be refused", variant)
			assert.Contains(t, textOf(res), "refused")
		}
	}
	assert.Empty(t, f.backend.ChatRequests(), "the backend must receive nothing")
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

func TestQueryBackendFaultsAreToolErrors(t *testing.T) {
	cases := []struct {
		name  string
		fault kubeqtest.Fault
		n     int
		want  []string
	}{
		{"401", kubeqtest.RespondInvalidKey(), 1, []string{"401", "Invalid API key", "KUBE_Q_API_KEY"}},
		{"429", kubeqtest.RateLimited(7), 1, []string{"429", "Rate limit"}},
		{"500", kubeqtest.Respond(500), 1, []string{"500"}},
		{"422", kubeqtest.RespondValidationList(), 1, []string{"422"}},
		{"refused-every-attempt", kubeqtest.DropConnection(), 10, []string{"attempts"}},
		{"truncated", kubeqtest.TruncateStream(), 1, []string{"cut off"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, func(cfg *Config) {})
			f.backend.FailNext(c.n, c.fault)
			cs, _ := f.connect("http", clientOpts{version: "2025-11-25"})
			res := call(t, cs, map[string]any{"question": "status of shop"})
			require.True(t, res.IsError, textOf(res))
			for _, w := range c.want {
				assert.Contains(t, textOf(res), w)
			}
			assert.Contains(t, textOf(res), f.backend.URL, "the message names the backend")
		})
	}
}

func TestQueryDroppedOnceIsRetried(t *testing.T) {
	f := newFixture(t, nil)
	f.backend.FailNext(2, kubeqtest.DropConnection())
	cs, _ := f.connect("http", clientOpts{version: "2025-11-25"})
	res := call(t, cs, map[string]any{"question": "hello"})
	require.False(t, res.IsError, textOf(res))
	assert.Len(t, f.backend.ChatRequests(), 3)
}

var _ = time.Second
