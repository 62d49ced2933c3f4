package kubeq

import (
	"net/url"
	"slices"
	"strings"
)

// redacted replaces a secret in text the backend sent.
const redacted = "[redacted]"

// minRedactLen is the shortest secret removed from backend text: a shorter
// one would match ordinary words and commands, mangling what a human reads
// in an approval form.
const minRedactLen = 4

// redactor removes the client's own secrets (the API key, the URL's
// password or lone user name, raw and decoded) from strings the backend
// sent, before they become events, errors or log lines: a backend or a
// gateway that echoes the key must not pass it on to the model.
type redactor struct {
	secrets []string // longest first, so a secret inside another goes with it
}

func newRedactor(apiKey string, u *url.URL) *redactor {
	var secrets []string
	add := func(s string) {
		if len(s) >= minRedactLen && !slices.Contains(secrets, s) {
			secrets = append(secrets, s)
		}
	}
	add(apiKey)
	if u != nil && u.User != nil {
		raw := u.User.String() // as written, percent-encoded
		if pw, ok := u.User.Password(); ok {
			add(pw)
			if _, enc, ok := strings.Cut(raw, ":"); ok {
				add(enc)
			}
		} else {
			add(u.User.Username()) // a user name alone is often a token
			add(raw)
		}
	}
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	return &redactor{secrets: secrets}
}

// str returns s without any secret, and without the start of one where
// the backend marked a cut (a HITL prompt's YAML capped at 3000 chars).
func (r *redactor) str(s string) string {
	if r == nil {
		return s
	}
	for _, sec := range r.secrets {
		if strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, redacted)
		}
	}
	if len(r.secrets) > 0 && strings.Contains(s, cutMarker) {
		var b strings.Builder
		for {
			before, after, found := strings.Cut(s, cutMarker)
			b.WriteString(r.cutTail(before))
			if !found {
				break
			}
			b.WriteString(cutMarker)
			s = after
		}
		s = b.String()
	}
	return s
}

// cutMarker is what the backend appends where it cut text short (the
// YAML in a HITL prompt).
const cutMarker = "\n... [truncated]"

// cut returns s, text that may have been cut short (a tool output the
// backend caps at 500 chars, an answer that stopped), without any secret,
// nor the start of one at its end.
func (r *redactor) cut(s string) string {
	return r.cutTail(r.str(s))
}

// minCut is the shortest start of sec that cutTail removes. At the end of
// a cut text the start of a secret is usually ordinary text ("kq-" or
// "Bearer " quoting a key's known shape, a word that happens to begin
// like a password), so it must be too long to match by chance: 8 bytes
// runs past the public prefixes keys have and is one chance in billions
// for random characters; a short secret needs only half of itself, as
// its other half would be all that stays hidden. Never shorter than the
// shortest secret redacted at all.
func minCut(sec string) int {
	return max(minRedactLen, min(8, len(sec)/2))
}

// cutTail replaces the longest suffix of s that is a proper prefix of a
// secret, when it is at least minCut of that secret.
func (r *redactor) cutTail(s string) string {
	n := r.secretStart(s, minCut)
	if n == 0 {
		return s
	}
	return s[:len(s)-n] + redacted
}

// partial is the length of the longest suffix of s that is a proper
// prefix of a secret: text that may turn into a secret with the next chunk.
func (r *redactor) partial(s string) int {
	return r.secretStart(s, func(string) int { return 1 })
}

// secretStart is the length of the longest suffix of s that is a proper
// prefix of a secret and at least least(secret) long; 0 when none.
func (r *redactor) secretStart(s string, least func(sec string) int) int {
	if r == nil {
		return 0
	}
	best := 0
	for _, sec := range r.secrets {
		for n := min(len(sec)-1, len(s)); n > best && n >= least(sec); n-- {
			if strings.HasSuffix(s, sec[:n]) {
				best = n
				break
			}
		}
	}
	return best
}

// event returns e with every backend string redacted.
func (r *redactor) event(e Event) Event {
	if r == nil || len(r.secrets) == 0 {
		return e
	}
	switch v := e.(type) {
	case Handshake:
		v.ProtocolVersion, v.SessionID = r.str(v.ProtocolVersion), r.str(v.SessionID)
		return v
	case Status:
		v.Phase, v.Message = r.str(v.Phase), r.str(v.Message)
		return v
	case ToolCall:
		v.Tool, v.Command, v.Message = r.str(v.Tool), r.str(v.Command), r.str(v.Message)
		return v
	case ToolResult:
		v.Tool, v.Output = r.str(v.Tool), r.cut(v.Output) // cut at 500 chars by the backend
		return v
	case Token:
		v.Content = r.str(v.Content)
		return v
	case Plan:
		steps := make([]PlanStep, len(v.Steps))
		for i, s := range v.Steps {
			steps[i] = PlanStep{Description: r.str(s.Description), Status: r.str(s.Status)}
		}
		v.Steps = steps
		return v
	case HitlRequest:
		v.ApprovalID, v.Action, v.Risk = r.str(v.ApprovalID), r.str(v.Action), r.str(v.Risk)
		v.YAML, v.Prompt = r.str(v.YAML), r.str(v.Prompt)
		return v
	case Error:
		v.Message = r.str(v.Message)
		return v
	default: // Usage, Heartbeat, Final, End: numbers and our own values
		return e
	}
}

// tokenRedactor redacts answer text that arrives in chunks: a secret split
// across two tokens (an LLM echoing a key writes it piece by piece) is
// held back until it can be told from ordinary text.
type tokenRedactor struct {
	r    *redactor
	held string
}

// token returns what of content can be passed on now.
func (t *tokenRedactor) token(content string) string {
	s := t.r.str(t.held + content)
	keep := t.r.partial(s)
	t.held = s[len(s)-keep:]
	return s[:len(s)-keep]
}

// flush returns the text held back: the answer stops here for now (the
// stream ended or broke, or another event came), so a held start of a
// secret long enough not to be chance goes as the marker, and a shorter
// one as it came.
func (t *tokenRedactor) flush() string {
	h := t.held
	t.held = ""
	return t.r.cutTail(h)
}

// redactedError carries an error whose text may hold backend bytes (a
// malformed response quoted by net/http), with that text redacted.
type redactedError struct {
	err error
	r   *redactor
}

func (e redactedError) Error() string { return e.r.str(e.err.Error()) }
func (e redactedError) Unwrap() error { return e.err }

// redactErr wraps err so that its text is redacted; nil stays nil.
func (c *Client) redactErr(err error) error {
	if err == nil || c.redact == nil || len(c.redact.secrets) == 0 {
		return err
	}
	return redactedError{err, c.redact}
}
