package demo

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// workload is one Deployment of the scripted cluster and its current pod.
type workload struct {
	name string
	pod  string
}

// workloads is the scripted cluster. checkout is the one that crashes.
func workloads() []workload {
	return []workload{
		{"checkout", "checkout-7d4b9cf6-xk2lp"},
		{"cart", "cart-5f8d7c9b4-2mxkq"},
		{"frontend", "frontend-6c9f8b7d5-q8wzn"},
		{"payments", "payments-84b6d9f7c-tl5vr"},
	}
}

// ask is a question as the router sees it.
type ask struct {
	text  string          // as asked
	words map[string]bool // lowercased words
	ns    string
}

func newAsk(question, namespace string) ask {
	a := ask{text: question, words: map[string]bool{}, ns: namespace}
	for _, w := range strings.FieldsFunc(strings.ToLower(question), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		a.words[w] = true
	}
	if a.ns == "" {
		a.ns = namespaceIn(question)
	}
	return a
}

func (a ask) has(words ...string) bool {
	for _, w := range words {
		if a.words[w] {
			return true
		}
	}
	return false
}

// workload is the first Deployment the question names, or def.
func (a ask) workload(def string) workload {
	for _, w := range workloads() {
		if a.has(w.name) {
			return w
		}
	}
	for _, w := range workloads() {
		if w.name == def {
			return w
		}
	}
	return workloads()[0]
}

var (
	nsAfter  = regexp.MustCompile(`(?i)\bnamespace[\s=:]+"?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)\b`)
	nsBefore = regexp.MustCompile(`(?i)\b(?:in|of)\s+(?:the\s+)?"?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)"?\s+namespace\b`)
	nsFlag   = regexp.MustCompile(`(?:^|\s)(?:-n|--namespace)[\s=]+([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)\b`)
	number   = regexp.MustCompile(`\b(\d{1,3})\b`)
)

// namespaceIn finds the namespace a question names ("in namespace X",
// "in the X namespace", "-n X"), or DefaultNamespace.
func namespaceIn(q string) string {
	for _, re := range []*regexp.Regexp{nsAfter, nsBefore, nsFlag} {
		if m := re.FindStringSubmatch(q); m != nil {
			return strings.ToLower(m[1])
		}
	}
	return DefaultNamespace
}

// replicasIn is the replica count a scale request names, 3 when none and
// at most 20 (a demo need not scale to a thousand).
func replicasIn(q string) int {
	m := number.FindStringSubmatch(q)
	if m == nil {
		return 3
	}
	n, _ := strconv.Atoi(m[1])
	return min(n, 20)
}

// route picks the investigation for a question. Changes come first: "delete
// the crashing pod" is a change, not a diagnosis.
func route(question, namespace string, p pacer) kubeqtest.Script {
	a := newAsk(question, namespace)
	switch {
	case a.has("delete", "kill", "remove"):
		return deleteScript(p, a)
	case a.has("restart", "rollout", "bounce", "redeploy"):
		return restartScript(p, a)
	case a.has("scale", "replicas", "replica"):
		return scaleScript(p, a)
	case a.has("memory", "mem", "ram", "oom", "cpu", "resources", "usage", "top", "heaviest", "metrics"):
		return memoryScript(p, a)
	case a.has("crash", "crashing", "crashes", "crashed", "crashloop", "crashloopbackoff", "looping", "failing", "broken", "down",
		"restarting", "error", "errors", "checkout", "unhealthy", "wrong", "diagnose"):
		return crashScript(p, a)
	default:
		return fallbackScript(p, a)
	}
}
