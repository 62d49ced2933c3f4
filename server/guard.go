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
	if longerThanAnyPhrase(question) {
		return ""
	}
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

// maxPhraseRunes is the most non-space characters a phrase has, with the
// "/" a command form adds.
const maxPhraseRunes = len("approve everything") - 1 + 1

// longerThanAnyPhrase reports whether question has more characters than
// any phrase could fold from, not counting spaces and the punctuation
// phraseKind trims (lower-casing maps one character to one): such a
// question is no phrase, and most questions are spared the folding.
func longerThanAnyPhrase(question string) bool {
	n := 0
	for _, r := range question {
		if !kubeq.IsPySpace(r) && r != '.' && r != '!' && r != '?' {
			if n++; n > maxPhraseRunes {
				return true
			}
		}
	}
	return false
}
