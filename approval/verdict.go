package approval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kubeq-mcp/kubeq-mcp/schema"
)

// Verdict is a decision on one gate and why. Its approving value can only
// be built by Judge, from a human's answer to that gate's form: Approves
// holds only for the gate it was judged for.
type Verdict struct {
	approve bool
	gate    Gate // the gate judged; zero for a denial
	Reason  schema.Reason
	Comment string // what the human typed in the form's reason field, for the audit log
	Via     string // how the human was asked: form, page or url; "" when nobody was
}

// Deny is a verdict that denies, for reason.
func Deny(reason schema.Reason) Verdict { return Verdict{Reason: reason} }

// Approves reports whether v approves g: a human approved exactly g.
func (v Verdict) Approves(g Gate) bool {
	return v.approve && v.gate.Same(g) && v.gate.Action == g.Action
}

// Answer is a human's reply to a form: the elicitation action and the
// form's content as it arrived, undecoded, so it can be read strictly.
type Answer struct {
	Action  string          // accept, decline or cancel
	Content json.RawMessage // the form's fields; may be empty
}

// Form field names, exactly as the form's schema spells them.
const (
	fieldDecision = "decision"
	fieldReason   = "reason"
	fieldConfirm  = "confirm"
)

// maxComment bounds the human's reason as it goes to the audit log.
const maxComment = 500

// Judge reads the human's answer to g's form. Only an accepted form whose
// content is exactly the form's fields (no duplicates, no other names, no
// case-folded names, strings only), whose decision is approve and whose
// confirm matches g's confirmation (when one is asked) approves g.
func Judge(g Gate, a Answer) Verdict {
	switch a.Action {
	case "decline":
		return Deny(schema.ReasonUserDeclined)
	case "cancel":
		return Deny(schema.ReasonUserCancelled)
	case "accept":
	default:
		return Deny(schema.ReasonError)
	}
	fields, err := strictFields(a.Content)
	if err != nil {
		return Deny(schema.ReasonError)
	}
	comment := oneLine(fields[fieldReason], maxComment)
	switch fields[fieldDecision] {
	case schema.FormDeny:
		return Verdict{Reason: schema.ReasonUserDenied, Comment: comment}
	case schema.FormApprove:
		if g.Confirm != "" && strings.Join(strings.Fields(fields[fieldConfirm]), " ") != g.Confirm {
			return Verdict{Reason: schema.ReasonConfirmationMismatch, Comment: comment}
		}
		return Verdict{approve: true, gate: g, Reason: schema.ReasonUserApproved, Comment: comment}
	default:
		return Verdict{Reason: schema.ReasonError, Comment: comment}
	}
}

var errAmbiguous = errors.New("ambiguous form answer")

// strictFields decodes a form's content: one JSON object whose members are
// strings named exactly decision, reason or confirm, each at most once.
func strictFields(raw json.RawMessage) (map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errAmbiguous
	}
	out := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errAmbiguous
		}
		name, _ := tok.(string)
		if name != fieldDecision && name != fieldReason && name != fieldConfirm {
			return nil, fmt.Errorf("%w: member %q", errAmbiguous, name)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%w: %q twice", errAmbiguous, name)
		}
		tok, err = dec.Token()
		if err != nil {
			return nil, errAmbiguous
		}
		v, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("%w: %q is not a string", errAmbiguous, name)
		}
		out[name] = v
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, errAmbiguous
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errAmbiguous
	}
	return out, nil
}

// FoldName is a member name as encoding/json matches it to a struct
// field: without case, so "content", "Content" and "CONTENT" (and "ſ" and
// "s", "K" and "k") are one name to it, and only the last of them counts.
func FoldName(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	for _, r := range name {
		switch {
		case 'a' <= r && r <= 'z':
			r -= 'a' - 'A'
		case r >= utf8.RuneSelf:
			r = unicode.ToUpper(unicode.ToLower(r))
		}
		b.WriteRune(r)
	}
	return b.String()
}

// HasDuplicateMembers reports whether raw, a JSON document, has an object
// with the same member name twice anywhere in it, the same as
// encoding/json sees names (FoldName): a decoder keeps only one of them,
// so such a message is ambiguous. Invalid JSON reports false.
func HasDuplicateMembers(raw []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var walk func() (bool, error)
	walk = func() (bool, error) {
		tok, err := dec.Token()
		if err != nil {
			return false, err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return false, err
				}
				name, _ := k.(string)
				name = FoldName(name)
				if seen[name] {
					return true, nil
				}
				seen[name] = true
				if dup, err := walk(); dup || err != nil {
					return dup, err
				}
			}
			_, err = dec.Token()
			return false, err
		case json.Delim('['):
			for dec.More() {
				if dup, err := walk(); dup || err != nil {
					return dup, err
				}
			}
			_, err = dec.Token()
			return false, err
		}
		return false, nil
	}
	dup, _ := walk()
	return dup
}

// oneLine folds s onto one line (control characters count as spaces) and
// caps it at n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
	if r := []rune(s); len(r) > n {
		s = string(r[:n]) + "…"
	}
	return s
}
