package server

import (
	"strings"
	"unicode"
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
	q := strings.ToLower(strings.TrimFunc(question, pyIsSpace))
	q = strings.Join(strings.FieldsFunc(q, pyIsSpace), " ")
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

// pyIsSpace is Python's str.isspace, which the backend's strip() uses: Go's
// unicode.IsSpace plus the information separators U+001C to U+001F.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}
