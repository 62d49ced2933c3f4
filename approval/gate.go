package approval

import (
	"strings"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
)

// Gate is one approval gate the backend raised, with the confirmation a
// human must type to approve it, computed once when the gate is made.
type Gate struct {
	ApprovalID string `json:"id"`
	Action     string `json:"a"`
	Risk       string `json:"r"`
	YAML       string `json:"y,omitempty"`
	// Confirm is what the human types to approve; "" when nothing is typed.
	Confirm string `json:"cf,omitempty"`
}

// NewGate makes the gate for h. With confirm set (--confirm-high-risk
// name), every risk but a known lower one needs the typed confirmation: an
// empty or unknown risk counts as high.
func NewGate(h kubeq.HitlRequest, confirm bool) Gate {
	g := Gate{ApprovalID: h.ApprovalID, Action: h.Action, Risk: h.Risk, YAML: h.YAML}
	if confirm && NeedsConfirm(h.Risk) {
		g.Confirm = ConfirmText(h.Action)
	}
	return g
}

// Hitl is the gate as the kubeq client names it.
func (g Gate) Hitl() kubeq.HitlRequest {
	return kubeq.HitlRequest{ApprovalID: g.ApprovalID, Action: g.Action, Risk: g.Risk, YAML: g.YAML}
}

// Same reports whether other is the same gate: the same action id, or,
// when the backend gave none, the same command.
func (g Gate) Same(other Gate) bool {
	if g.ApprovalID != "" || other.ApprovalID != "" {
		return g.ApprovalID == other.ApprovalID
	}
	return g.Action == other.Action
}

// lowerRisks are the risk levels that need no typed confirmation.
var lowerRisks = map[string]bool{"low": true, "medium": true, "none": true, "info": true}

// NeedsConfirm reports whether risk needs the typed confirmation: high, and
// anything not known to be lower (empty, unknown, misspelled).
func NeedsConfirm(risk string) bool {
	return !lowerRisks[strings.ToLower(strings.TrimSpace(risk))]
}

// kubectl flags that take a value as the next word, so the value is not
// mistaken for a positional argument.
var kubectlValueFlags = map[string]bool{
	"-n": true, "--namespace": true, "-l": true, "--selector": true, "-o": true, "--output": true,
	"-f": true, "--filename": true, "-c": true, "--container": true, "--context": true,
	"--cluster": true, "--user": true, "--kubeconfig": true, "--replicas": true, "-p": true,
	"--patch": true, "--type": true, "--grace-period": true, "--timeout": true, "-k": true,
	"--kustomize": true, "--field-selector": true, "--image": true, "--current-replicas": true, "--as": true,
}

// bulkFlags select targets by something other than their names.
var bulkFlags = map[string]bool{
	"--all": true, "-l": true, "--selector": true, "-f": true, "--filename": true, "-k": true,
	"--kustomize": true, "--field-selector": true, "-A": true, "--all-namespaces": true,
}

// verbs whose positional arguments are all targets (nodes, mostly).
var firstArgVerbs = map[string]bool{"drain": true, "cordon": true, "uncordon": true}

// verbs with a sub-verb before the resource ("set image", "rollout restart").
var subVerbs = map[string]bool{"set": true, "rollout": true}

// verbs whose arguments after the name are not targets (taint's key=value,
// label's pairs, patch's body, set image's container=image).
var oneNameVerbs = map[string]bool{"taint": true, "label": true, "annotate": true, "patch": true,
	"set": true, "scale": true, "autoscale": true, "expose": true, "create": true}

// ConfirmText is what a human types to confirm command:
//   - the target's name ("kubectl delete pod web-1 -n shop" → "web-1",
//     "deployment/web" → "web");
//   - every target, space-separated, when several are named
//     ("kubectl delete pod a b" → "a b");
//   - the namespace and the word all for a bulk change (--all, -l, -f, -k,
//     --field-selector: "kubectl delete pods -l app=web -n prod" →
//     "prod/all"; no namespace → "default/all"; -A → "all-namespaces/all");
//   - "approve" when no target can be found.
func ConfirmText(command string) string {
	words := strings.Fields(command)
	var pos []string
	ns, bulk, allNS := "", false, false
	for i := 0; i < len(words); i++ {
		w := unquote(words[i])
		if !strings.HasPrefix(w, "-") || w == "-" {
			pos = append(pos, w)
			continue
		}
		name, value, hasValue := strings.Cut(w, "=")
		if bulkFlags[name] {
			bulk = true
			if name == "-A" || name == "--all-namespaces" {
				allNS = true
			}
		}
		if !hasValue && kubectlValueFlags[name] && i+1 < len(words) {
			i++
			value = unquote(words[i])
		}
		if name == "-n" || name == "--namespace" {
			ns = value
		}
	}
	if bulk {
		switch {
		case allNS:
			return "all-namespaces/all"
		case ns == "":
			return "default/all"
		default:
			return ns + "/all"
		}
	}
	if len(pos) > 0 && (pos[0] == "kubectl" || strings.HasSuffix(pos[0], "/kubectl")) {
		pos = pos[1:]
	}
	if len(pos) < 2 {
		return "approve"
	}
	verb, args := pos[0], pos[1:]
	if subVerbs[verb] && len(args) > 1 {
		args = args[1:]
	}
	var names []string
	switch {
	case strings.Contains(args[0], "/"):
		for _, a := range args { // type/name forms: each one is a target
			if i := strings.LastIndex(a, "/"); i >= 0 {
				names = append(names, a[i+1:])
			}
		}
	case firstArgVerbs[verb]:
		names = args
	case len(args) >= 2:
		names = args[1:]
	}
	if oneNameVerbs[verb] && len(names) > 1 {
		names = names[:1]
	}
	for _, n := range names {
		if n == "" || strings.ContainsAny(n, "=:{}") {
			return "approve" // not a name: nothing safe to ask for but the word
		}
	}
	if len(names) == 0 {
		return "approve"
	}
	return strings.Join(names, " ")
}

// unquote drops one pair of matching shell quotes around w.
func unquote(w string) string {
	if len(w) >= 2 && (w[0] == '"' || w[0] == '\'') && w[len(w)-1] == w[0] {
		return w[1 : len(w)-1]
	}
	return w
}
