package kubeqtest

import "strings"

// The backend's HITL phrase sets (app/agent/hitl.py), matched exactly after
// strip().lower(). The fake keeps its own copy; the product's guard keeps
// another in its own package on purpose, so a typo in one is caught by tests
// that run against the other.
var (
	approvalPhrases = []string{
		"yes", "approve", "approved", "do it", "yes do it", "go ahead",
		"confirm", "ok", "okay", "sure", "proceed", "run it",
	}
	denialPhrases = []string{
		"no", "deny", "denied", "cancel", "abort", "stop", "nope", "don't", "dont",
	}
	autoApprovePhrases = []string{
		"approve all", "auto approve", "auto-approve", "yes to all",
		"approve everything", "skip approval", "bypass hitl", "/auto-approve",
	}
)

// ApprovalPhrases returns a copy of the backend's approval phrases.
func ApprovalPhrases() []string { return append([]string(nil), approvalPhrases...) }

// DenialPhrases returns a copy of the backend's denial phrases.
func DenialPhrases() []string { return append([]string(nil), denialPhrases...) }

// AutoApprovePhrases returns a copy of the backend's auto-approve phrases.
// In V4 they also approve a pending gate.
func AutoApprovePhrases() []string { return append([]string(nil), autoApprovePhrases...) }

// HITLMode selects how the next message on a session with a pending gate is
// read.
type HITLMode int

const (
	// HITLStrict is V4: only an approval or auto-approve phrase approves;
	// anything else, unrelated text included, cancels the action.
	HITLStrict HITLMode = iota
	// HITLLax is V2: anything that is not a denial phrase approves,
	// including "No.", "wait" or an empty message.
	HITLLax
)

func (m HITLMode) String() string {
	if m == HITLLax {
		return "lax (V2)"
	}
	return "strict (V4)"
}

// Approves reports whether message, sent while a gate is pending, approves
// it under mode. The message is not stripped of "[context: …]" prefixes:
// the backend does not parse them either.
func Approves(mode HITLMode, message string) bool {
	m := strings.ToLower(strings.TrimSpace(message))
	if mode == HITLLax {
		return !contains(denialPhrases, m)
	}
	return contains(approvalPhrases, m) || contains(autoApprovePhrases, m)
}

func isAutoApprovePhrase(message string) bool {
	return contains(autoApprovePhrases, strings.ToLower(strings.TrimSpace(message)))
}

func contains(set []string, s string) bool {
	for _, p := range set {
		if p == s {
			return true
		}
	}
	return false
}
