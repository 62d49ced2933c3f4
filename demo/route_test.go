package demo

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// startBackend runs the demo backend without pauses and a client for it.
func startBackend(t *testing.T) (*kubeqtest.Server, *kubeq.Client) {
	t.Helper()
	srv := NewBackend(WithPace(0))
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := kubeq.New(srv.URL, kubeq.WithTimeout(5*time.Second), kubeq.WithRetryDelays())
	require.NoError(t, err)
	return srv, c
}

func query(t *testing.T, c *kubeq.Client, turn kubeq.Turn) *kubeq.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := c.Query(ctx, turn)
	require.NoError(t, err)
	return res
}

// transcript is what a turn showed: its commands, then its answer.
func transcript(res *kubeq.Result) string {
	var b strings.Builder
	for _, tc := range res.ToolCalls {
		b.WriteString(tc.Command + "\n")
	}
	return b.String() + res.Answer
}

func TestRouteByKeywords(t *testing.T) {
	_, c := startBackend(t)
	cases := []struct {
		question string
		want     string // text only that scenario writes
	}{
		{QuestionCrash, "crash-looping: `DB_URL` is empty"},
		{"checkout is in CrashLoopBackOff, why?", "crash-looping: `DB_URL` is empty"},
		{"why does checkout keep restarting?", "crash-looping: `DB_URL` is empty"},
		{QuestionMemory, "cart uses the most memory"},
		{"which pods are the heaviest on RAM?", "cart uses the most memory"},
		{QuestionDelete, "kubectl delete pod checkout-7d4b9cf6-xk2lp -n shop"},
		{"kill the cart pod", "kubectl delete pod cart-5f8d7c9b4-2mxkq -n shop"},
		{QuestionRestart, "kubectl rollout restart deployment/cart -n shop"},
		{"restart checkout", "kubectl rollout restart deployment/checkout -n shop"},
		{QuestionScale, "kubectl scale deployment/frontend --replicas=3 -n shop"},
		{"scale payments to 5 replicas", "kubectl scale deployment/payments --replicas=5 -n shop"},
		{"how many nodes do I have?", "no scripted answer for \u201chow many nodes do I have?\u201d"},
	}
	for _, tc := range cases {
		t.Run(tc.question, func(t *testing.T) {
			res := query(t, c, kubeq.Turn{Question: tc.question})
			got := transcript(res)
			assert.Contains(t, got, tc.want)
			assert.Contains(t, got, "(simulated", "every scripted answer says it is simulated")
			assert.NotNil(t, res.Usage)
		})
	}
}

func TestFallbackListsTheQuestions(t *testing.T) {
	_, c := startBackend(t)
	res := query(t, c, kubeq.Turn{Question: "hello"})
	for _, q := range Questions() {
		assert.Contains(t, res.Answer, q)
	}
	assert.Nil(t, res.Hitl)
}

func TestNamespaceComesFromContextOrQuestion(t *testing.T) {
	_, c := startBackend(t)
	res := query(t, c, kubeq.Turn{Question: "what's using the most memory?", Namespace: "prod"})
	assert.Contains(t, res.Answer, "Memory in namespace `prod`")
	res = query(t, c, kubeq.Turn{Question: "why is checkout crashing in the staging namespace?"})
	assert.Contains(t, transcript(res), "kubectl get pods -n staging")
}

func TestGates(t *testing.T) {
	cases := []struct {
		question, risk, action, approved, denied string
	}{
		{QuestionDelete, "high", "kubectl delete pod checkout-7d4b9cf6-xk2lp -n shop",
			"the new pod `checkout-7d4b9cf6-p9r4d` crashes the same way", "I did not delete `checkout-7d4b9cf6-xk2lp`"},
		{QuestionRestart, "medium", "kubectl rollout restart deployment/cart -n shop",
			"Restarted `deployment/cart` (simulated). 1/1 pods are Running", "I did not restart `deployment/cart`"},
		{QuestionScale, "medium", "kubectl scale deployment/frontend --replicas=3 -n shop",
			"Scaled `deployment/frontend` to 3 replicas (simulated). 3/3 pods", "I did not scale `deployment/frontend`"},
	}
	for _, tc := range cases {
		for _, decision := range []string{"approve", "deny"} {
			t.Run(tc.risk+"/"+decision+"/"+tc.question, func(t *testing.T) {
				srv, c := startBackend(t)
				conv := kubeq.NewConversationID()
				first := query(t, c, kubeq.Turn{Question: tc.question, Conversation: conv})
				require.NotNil(t, first.Hitl, "the change must stop at a gate")
				assert.Equal(t, tc.risk, first.Hitl.Risk)
				assert.Equal(t, tc.action, first.Hitl.Action)

				second := query(t, c, kubeq.Turn{Question: decision, Conversation: conv})
				assert.Nil(t, second.Hitl)
				decisions := srv.Decisions()
				require.Len(t, decisions, 1)
				assert.Equal(t, decision == "approve", decisions[0].Approved)
				if decision == "approve" {
					assert.Contains(t, second.Answer, tc.approved)
					assert.Contains(t, transcript(second), tc.action, "the approved command runs")
				} else {
					assert.Contains(t, second.Answer, tc.denied)
					assert.Empty(t, second.ToolCalls, "a denied change runs nothing")
				}
				assert.Contains(t, second.Answer, "(simulated")
			})
		}
	}
}

func TestQuestionsAreDistinctScenarios(t *testing.T) {
	_, c := startBackend(t)
	seen := map[string]string{}
	for _, q := range Questions() {
		res := query(t, c, kubeq.Turn{Question: q})
		head, _, _ := strings.Cut(transcript(res), "\n")
		if prev, ok := seen[head]; ok {
			t.Errorf("%q and %q start the same way: %q", prev, q, head)
		}
		seen[head] = q
	}
}

func TestNamespaceIn(t *testing.T) {
	cases := map[string]string{
		"what's using memory in namespace payments-prod?": "payments-prod",
		"what's using memory in the staging namespace":    "staging",
		"memory of namespace=dev":                         "dev",
		"kubectl top pods -n qa":                          "qa",
		"what's using memory?":                            DefaultNamespace,
	}
	for q, want := range cases {
		assert.Equal(t, want, namespaceIn(q), q)
	}
}

func TestReplicasIn(t *testing.T) {
	assert.Equal(t, 3, replicasIn("scale frontend up"))
	assert.Equal(t, 5, replicasIn("scale frontend to 5 replicas"))
	assert.Equal(t, 0, replicasIn("scale frontend to 0"))
	assert.Equal(t, 20, replicasIn("scale frontend to 500"))
}

// The pauses make an investigation last a few seconds at pace 1, so a
// person sees it progress, and vanish at pace 0.
func TestPaceScalesPauses(t *testing.T) {
	for _, q := range []string{QuestionCrash, QuestionMemory} {
		var total time.Duration
		route(q, "", pacer{pace: 1, total: &total})
		assert.Greater(t, total, 2*time.Second, q)
		assert.Less(t, total, 6*time.Second, q)

		var none time.Duration
		route(q, "", pacer{pace: 0, total: &none})
		assert.Zero(t, none, q)
	}
}
