package demo

import (
	"fmt"
	"time"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// memoryScript answers "what uses the most memory" from metrics: cart is
// close to its limit and growing, which looks like a leak.
func memoryScript(p pacer, a ask) kubeqtest.Script {
	ns := a.ns
	plan := []string{
		"Read current memory per pod",
		"Compare with limits and the last 24 hours",
		"Summarise",
	}
	b := p.script().preamble()
	b.plan(planSteps(0, plan...)...)
	b.status("dispatching", "Dispatching specialist subagents (metrics · pod)…")
	b.kubectl("kubectl top pods -n "+ns+" --sort-by=memory", `NAME                       CPU(cores)   MEMORY(bytes)
cart-5f8d7c9b4-2mxkq       212m         1694Mi
payments-84b6d9f7c-tl5vr   88m          412Mi
frontend-6c9f8b7d5-q8wzn   41m          186Mi
checkout-7d4b9cf6-xk2lp    0m           0Mi`, 350*time.Millisecond)
	b.pause(thinkPause).plan(planSteps(1, plan...)...)
	b.status("investigating", "Gathering evidence…")
	b.tool("query_prometheus", "", fmt.Sprintf(`query: max_over_time(container_memory_working_set_bytes{namespace=%q,container!=""}[24h])
cart      1.65 GiB (24h ago: 0.61 GiB, steady climb, no restarts)
payments  0.41 GiB (flat)
frontend  0.19 GiB (flat)`, ns), 400*time.Millisecond)
	b.kubectl("kubectl get deployment cart -n "+ns+" -o jsonpath={.spec.template.spec.containers[0].resources}",
		`{"limits":{"cpu":"1","memory":"2Gi"},"requests":{"cpu":"250m","memory":"512Mi"}}`, 250*time.Millisecond)
	b.pause(thinkPause).plan(planSteps(2, plan...)...)
	b.status("synthesizing", "Synthesizing specialist findings…")
	b.pause(thinkPause)
	b.answer(fmt.Sprintf(memoryAnswer, ns) + simulatedNote)
	b.plan(planSteps(3, plan...)...)
	return b.usage(9830, 512, 3).done()
}

const memoryAnswer = "## Memory in namespace `%s` (simulated)\n" +
	"\n" +
	"| pod | memory now | limit | of limit | last 24 h |\n" +
	"|---|---|---|---|---|\n" +
	"| `cart-5f8d7c9b4-2mxkq` | **1694 Mi** | 2 Gi | **83 %%** | 0.61 → 1.65 GiB, steady climb |\n" +
	"| `payments-84b6d9f7c-tl5vr` | 412 Mi | 1 Gi | 40 %% | flat |\n" +
	"| `frontend-6c9f8b7d5-q8wzn` | 186 Mi | 512 Mi | 36 %% | flat |\n" +
	"| `checkout-7d4b9cf6-xk2lp` | 0 Mi | 1 Gi | — | crash-looping, see \"Why is checkout crashing?\" |\n" +
	"\n" +
	"**cart uses the most memory, and it keeps growing**: about 43 MiB an hour for a day without a restart. " +
	"That is the shape of a leak (an unbounded in-process session cache is the usual suspect). At this rate " +
	"it reaches its 2 Gi limit in about 8 hours and will be OOMKilled.\n" +
	"\n" +
	"**Options**\n" +
	"- Stopgap: restart it (`kubectl rollout restart deployment/cart -n %[1]s`): memory drops back, the leak stays. Ask me to restart the cart deployment to see an approval request.\n" +
	"- Look for the leak: a heap profile of the running pod, or the cart changes deployed 3 days ago."
