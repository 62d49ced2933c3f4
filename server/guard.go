package server

import (
	"strings"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
)

// The backend's HITL phrase sets (app/agent/hitl.py): exact matches after
// strip().lower(). A message that is one of them, sent on a session with a
// pending gate, decides the gate; "approve all" and friends switch gating
// off for a turn. The model must never be able to send one, so a question
// that is one is refused before anything reaches the backend.
var (
	approvalPhrases = []string{"yes", "approve", "approved", "do it", "yes do it", "go ahead",
		"confirm", "ok", "okay", "sure", "proceed", "run it"}
	denialPhrases      = []string{"no", "deny", "denied", "cancel", "abort", "stop", "nope", "don't", "dont"}
	autoApprovePhrases = []string{"approve all", "auto approve", "auto-approve", "yes to all",
		"approve everything", "skip approval", "bypass hitl", "/auto-approve"}
)

// phraseKind names the set a question belongs to, or "" for none.
// Trailing punctuation and inner runs of spaces are folded too: stricter
// than the backend, which is the safe side.
func phraseKind(question string) string {
	q := strings.ToLower(strings.TrimFunc(question, kubeq.IsPySpace))
	q = strings.Join(strings.FieldsFunc(q, kubeq.IsPySpace), " ")
	folded := strings.TrimRight(q, ".!?")
	for _, set := range []struct {
		kind    string
		phrases []string
	}{{"approval", approvalPhrases}, {"denial", denialPhrases}, {"auto-approve", autoApprovePhrases}} {
		for _, p := range set.phrases {
			if q == p || folded == p || folded == "/"+p {
				return set.kind
			}
		}
	}
	return ""
}
