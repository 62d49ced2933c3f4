package demo

import (
	"fmt"
	"strings"
	"time"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// The change scripts end their first turn at an approval gate, like
// run_kubectl does for a mutating command. What follows depends on the
// human: OnApprove runs the command and checks the result, OnDeny leaves
// the cluster alone. checkout stays broken whatever is done to its pods,
// because its Secret is what is wrong.

// deleteScript deletes a pod: high risk, so the form asks for its name.
func deleteScript(p pacer, a ask) kubeqtest.Script {
	w, ns := a.workload("checkout"), a.ns
	cmd := fmt.Sprintf("kubectl delete pod %s -n %s", w.pod, ns)
	b := p.script().preamble()
	b.status("investigating", fmt.Sprintf("Targeting %s in %s…", w.pod, ns))
	b.kubectl(fmt.Sprintf("kubectl get pod %s -n %s", w.pod, ns), podLine(w), 300*time.Millisecond)
	b.pause(thinkPause)
	b.answer(fmt.Sprintf("I will delete `%s` (simulated); its Deployment `%s` creates a replacement at once.", w.pod, w.name))
	b.usage(6120, 240, 2)

	after := p.script()
	after.kubectl(cmd, fmt.Sprintf("pod %q deleted", w.pod), 300*time.Millisecond)
	after.status("investigating", "Watching the replacement pod…")
	outcome := verify(after, w, ns, 1)
	after.pause(thinkPause)
	after.answer(fmt.Sprintf("Deleted `%s` (simulated). %s", w.pod, outcome) + simulatedNote)
	after.usage(3050, 180, 1)

	return b.add(kubeqtest.Gate{
		Command:   cmd,
		Risk:      "high",
		OnApprove: after.done(),
		OnDeny:    denied(p, fmt.Sprintf("delete `%s`", w.pod)),
	}).done()
}

// restartScript restarts a Deployment: medium risk.
func restartScript(p pacer, a ask) kubeqtest.Script {
	w, ns := a.workload("cart"), a.ns
	cmd := fmt.Sprintf("kubectl rollout restart deployment/%s -n %s", w.name, ns)
	b := p.script().preamble()
	b.status("investigating", fmt.Sprintf("Checking deployment %s in %s…", w.name, ns))
	b.kubectl(fmt.Sprintf("kubectl get deployment %s -n %s", w.name, ns), deploymentLine(w, 1), 300*time.Millisecond)
	b.pause(thinkPause)
	b.answer(fmt.Sprintf("A rolling restart replaces the pods of `%s` one at a time (simulated).", w.name))
	b.usage(5480, 210, 2)

	after := p.script()
	after.kubectl(cmd, fmt.Sprintf("deployment.apps/%s restarted", w.name), 300*time.Millisecond)
	after.status("investigating", "Waiting for the rollout…")
	outcome := verify(after, w, ns, 1)
	after.pause(thinkPause)
	after.answer(fmt.Sprintf("Restarted `deployment/%s` (simulated). %s", w.name, outcome) + simulatedNote)
	after.usage(2980, 170, 1)

	return b.add(kubeqtest.Gate{
		Command:   cmd,
		Risk:      "medium",
		OnApprove: after.done(),
		OnDeny:    denied(p, fmt.Sprintf("restart `deployment/%s`", w.name)),
	}).done()
}

// scaleScript scales a Deployment: medium risk.
func scaleScript(p pacer, a ask) kubeqtest.Script {
	w, ns, n := a.workload("frontend"), a.ns, replicasIn(a.text)
	cmd := fmt.Sprintf("kubectl scale deployment/%s --replicas=%d -n %s", w.name, n, ns)
	b := p.script().preamble()
	b.status("investigating", fmt.Sprintf("Checking deployment %s in %s…", w.name, ns))
	b.kubectl(fmt.Sprintf("kubectl get deployment %s -n %s", w.name, ns), deploymentLine(w, 1), 300*time.Millisecond)
	b.pause(thinkPause)
	b.answer(fmt.Sprintf("`%s` runs 1 replica; I will scale it to %d (simulated).", w.name, n))
	b.usage(5710, 220, 2)

	after := p.script()
	after.kubectl(cmd, fmt.Sprintf("deployment.apps/%s scaled", w.name), 250*time.Millisecond)
	after.status("investigating", "Waiting for the new replicas…")
	outcome := verify(after, w, ns, n)
	after.pause(thinkPause)
	after.answer(fmt.Sprintf("Scaled `deployment/%s` to %d replicas (simulated). %s", w.name, n, outcome) + simulatedNote)
	after.usage(3120, 190, 1)

	return b.add(kubeqtest.Gate{
		Command:   cmd,
		Risk:      "medium",
		OnApprove: after.done(),
		OnDeny:    denied(p, fmt.Sprintf("scale `deployment/%s`", w.name)),
	}).done()
}

// verify checks the Deployment after a change and says how it went.
func verify(b *builder, w workload, ns string, replicas int) string {
	b.kubectl(fmt.Sprintf("kubectl get deployment %s -n %s", w.name, ns), deploymentLine(w, replicas), 400*time.Millisecond)
	if w.name == "checkout" && replicas > 0 {
		b.kubectl(fmt.Sprintf("kubectl get pods -n %s -l app=checkout", ns),
			"NAME                      READY   STATUS             RESTARTS     AGE\n"+
				newPod(w)+"   0/1     CrashLoopBackOff   1 (6s ago)   21s", 300*time.Millisecond)
		return "As expected, the new pod `" + newPod(w) + "` crashes the same way: the Secret `checkout-db` " +
			"still has no `url` key. Fix the Secret first (ask \"Why is checkout crashing?\" for the command)."
	}
	if replicas == 0 {
		return "No pods are running now."
	}
	return fmt.Sprintf("%d/%d pods are Running and Ready.", replicas, replicas)
}

// denied is what follows a denial: nothing ran.
func denied(p pacer, what string) kubeqtest.Script {
	b := p.script().pause(thinkPause)
	b.answer("Understood: I did not " + what + " (simulated). Nothing was changed." + simulatedNote)
	return b.usage(1210, 60, 1).done()
}

func podLine(w workload) string {
	status := "1/1     Running            0              3d2h"
	if w.name == "checkout" {
		status = "0/1     CrashLoopBackOff   14 (52s ago)   47m"
	}
	return "NAME                      READY   STATUS             RESTARTS       AGE\n" + w.pod + "   " + status
}

func deploymentLine(w workload, replicas int) string {
	ready := replicas
	if w.name == "checkout" {
		ready = 0
	}
	return fmt.Sprintf("NAME       READY   UP-TO-DATE   AVAILABLE   AGE\n%-10s %d/%d     %d            %d           31d",
		w.name, ready, replicas, replicas, ready)
}

// newPod is the name of the pod that replaces w's.
func newPod(w workload) string {
	return w.pod[:strings.LastIndexByte(w.pod, '-')] + "-p9r4d"
}
