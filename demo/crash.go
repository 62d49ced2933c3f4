package demo

import (
	"fmt"
	"time"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// crashScript is the CrashLoopBackOff diagnosis: checkout exits at start-up
// because the Secret it reads its database URL from lost its key.
func crashScript(p pacer, a ask) kubeqtest.Script {
	ns := a.ns
	plan := []string{
		"Find the failing pods",
		"Read the logs of the crashing container",
		"Check events and the pod's configuration",
		"Explain the root cause and the fix",
	}
	b := p.script().preamble()
	b.plan(planSteps(0, plan...)...)
	b.status("investigating", fmt.Sprintf("Running pod diagnostics in %s…", ns))
	b.kubectl("kubectl get pods -n "+ns, podsTable(), 350*time.Millisecond)
	b.pause(thinkPause).plan(planSteps(1, plan...)...)
	b.status("investigating", fmt.Sprintf("Investigating checkout-7d4b9cf6-xk2lp in %s…", ns))
	b.kubectl("kubectl logs checkout-7d4b9cf6-xk2lp -n "+ns+" --previous --tail=20",
		`2026-07-14T09:41:07Z INFO  checkout v2.8.1 starting (commit 3f9c2ab)
2026-07-14T09:41:07Z INFO  loading configuration from environment
2026-07-14T09:41:07Z FATAL config: DB_URL is required but empty
exit status 1`, 400*time.Millisecond)
	b.pause(thinkPause).plan(planSteps(2, plan...)...)
	b.kubectl("kubectl get events -n "+ns+" --field-selector involvedObject.name=checkout-7d4b9cf6-xk2lp",
		`LAST SEEN   TYPE      REASON    OBJECT                        MESSAGE
52s         Warning   BackOff   pod/checkout-7d4b9cf6-xk2lp   Back-off restarting failed container checkout in pod checkout-7d4b9cf6-xk2lp
47m         Normal    Pulled    pod/checkout-7d4b9cf6-xk2lp   Container image "registry.example.com/shop/checkout:2.8.1" already present on machine`,
		300*time.Millisecond)
	b.kubectl("kubectl get secret checkout-db -n "+ns+" -o jsonpath={.data}",
		`{"password":"KioqKio=","username":"Y2hlY2tvdXQ="}`, 250*time.Millisecond)
	b.pause(thinkPause).plan(planSteps(3, plan...)...)
	b.status("synthesizing", "Composing answer…")
	b.pause(thinkPause)
	b.answer(fmt.Sprintf(crashAnswer, ns) + simulatedNote)
	b.plan(planSteps(4, plan...)...)
	return b.usage(14210, 655, 4).done()
}

func podsTable() string {
	return `NAME                       READY   STATUS             RESTARTS        AGE
cart-5f8d7c9b4-2mxkq       1/1     Running            0               3d2h
checkout-7d4b9cf6-xk2lp    0/1     CrashLoopBackOff   14 (52s ago)    47m
frontend-6c9f8b7d5-q8wzn   1/1     Running            0               3d2h
payments-84b6d9f7c-tl5vr   1/1     Running            0               3d2h`
}

const crashAnswer = "## checkout is crash-looping: `DB_URL` is empty (simulated)\n" +
	"\n" +
	"**Root cause.** The container `checkout` in pod `checkout-7d4b9cf6-xk2lp` (namespace `%s`) exits " +
	"one second after start with `FATAL config: DB_URL is required but empty`. The Deployment takes " +
	"`DB_URL` from the Secret `checkout-db`, key `url`, and that key is gone: the Secret now only has " +
	"`username` and `password`. It was most likely re-created without it 47 minutes ago, when the " +
	"restarts began.\n" +
	"\n" +
	"**Evidence**\n" +
	"- `kubectl get pods`: `checkout-7d4b9cf6-xk2lp` is `0/1 CrashLoopBackOff` with 14 restarts; cart, frontend and payments are healthy.\n" +
	"- Previous container logs: `FATAL config: DB_URL is required but empty`, `exit status 1`.\n" +
	"- Events: `BackOff: Back-off restarting failed container`; the image is unchanged, so this is configuration, not code.\n" +
	"- `checkout-db` has no `url` key.\n" +
	"\n" +
	"**Fix**\n" +
	"1. Put the key back (with your real connection string):\n" +
	"   ```\n" +
	"   kubectl patch secret checkout-db -n %[1]s --type merge -p '{\"stringData\":{\"url\":\"postgres://checkout@db:5432/shop\"}}'\n" +
	"   ```\n" +
	"2. Restart the Deployment so that new pods read it: `kubectl rollout restart deployment/checkout -n %[1]s`.\n" +
	"\n" +
	"Deleting the pod alone will not help: its replacement reads the same Secret and crashes the same way. " +
	"Ask me to delete it anyway to see an approval request."
