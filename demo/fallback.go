package demo

import (
	"strings"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// maxEcho bounds how much of an unknown question the answer repeats.
const maxEcho = 200

// fallbackScript answers any other question: what demo mode is, and the
// questions it knows.
func fallbackScript(p pacer, a ask) kubeqtest.Script {
	q := strings.Join(strings.Fields(a.text), " ")
	if r := []rune(q); len(r) > maxEcho {
		q = string(r[:maxEcho]) + "…"
	}
	var b strings.Builder
	b.WriteString("## kubeq-mcp demo mode (simulated)\n\n")
	b.WriteString("This is a simulated KubeIntellect with a few scripted investigations of a made-up `" +
		DefaultNamespace + "` namespace; it has no cluster to look at, so I have no scripted answer for \u201c" +
		q + "\u201d.\n\n")
	b.WriteString("Try one of these (rephrasing is fine):\n")
	for _, ex := range Questions() {
		b.WriteString("- " + ex + "\n")
	}
	b.WriteString("\nThe first two show an investigation streaming its progress; the last three propose a " +
		"change and ask you to approve or deny it in a form (a delete is high risk: you type the pod's " +
		"name to confirm).\n\n")
	b.WriteString("To ask about a real cluster, run kubeq-mcp without `--demo` and point it at your " +
		"KubeIntellect with `--url` (or `KUBE_Q_URL`) and `KUBE_Q_API_KEY`.")
	s := p.script().preamble()
	s.pause(thinkPause)
	s.answer(b.String() + simulatedNote)
	return s.usage(2140, 190, 1).done()
}
