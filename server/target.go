package server

import "strings"

// kubectl flags that take a value as the next word, so the value is not
// mistaken for a positional argument.
var kubectlValueFlags = map[string]bool{
	"-n": true, "--namespace": true, "-l": true, "--selector": true, "-o": true, "--output": true,
	"-f": true, "--filename": true, "-c": true, "--container": true, "--context": true,
	"--cluster": true, "--user": true, "--kubeconfig": true, "--replicas": true, "-p": true,
	"--patch": true, "--type": true, "--grace-period": true, "--timeout": true, "-k": true,
	"--field-selector": true, "--image": true, "--current-replicas": true, "--as": true,
}

// verbs whose first positional argument is the target (nodes, mostly).
var firstArgVerbs = map[string]bool{"drain": true, "cordon": true, "uncordon": true}

// verbs with a sub-verb before the resource ("set image", "rollout restart").
var subVerbs = map[string]bool{"set": true, "rollout": true, "create": false}

// confirmTarget is the name a human types to confirm a high-risk command:
// the name argument of the kubectl command ("kubectl delete pod web-1 -n
// shop" → "web-1", "kubectl drain node-3" → "node-3", "deployment/web" →
// "web"), or "approve" when no name can be found.
func confirmTarget(command string) string {
	words := strings.Fields(command)
	var pos []string
	for i := 0; i < len(words); i++ {
		w := unquote(words[i])
		if strings.HasPrefix(w, "-") {
			if !strings.Contains(w, "=") && kubectlValueFlags[w] {
				i++
			}
			continue
		}
		pos = append(pos, w)
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
	name := ""
	switch {
	case strings.Contains(args[0], "/"):
		name = args[0][strings.LastIndex(args[0], "/")+1:]
	case firstArgVerbs[verb]:
		name = args[0]
	case len(args) >= 2:
		name = args[1]
	}
	if name == "" || strings.ContainsAny(name, "=:") {
		return "approve"
	}
	return name
}

// unquote drops one pair of matching shell quotes around w.
func unquote(w string) string {
	if len(w) >= 2 && (w[0] == '"' || w[0] == '\'') && w[len(w)-1] == w[0] {
		return w[1 : len(w)-1]
	}
	return w
}
