package server

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// answerBook keeps count of a call's answer against the answer cap. A
// backend that streams without end (a model stuck in a loop, a proxy
// replaying) must not grow the process: past Config.MaxAnswerBytes the text
// is read and dropped, the turn still runs to [DONE] and its gates are
// still asked. It travels in the sealed state across a 2026-era approval.
type answerBook struct {
	Got   int64      `json:"got,omitempty"` // answer bytes received in all
	Cap   *answerCut `json:"cap,omitempty"` // cut at Config.MaxAnswerBytes: later text is dropped
	State *answerCut `json:"st,omitempty"`  // the answer before an approval, cut to fit its state
}

// answerCut is where an answer was cut.
type answerCut struct {
	At  int64 `json:"at"`  // bytes kept
	Got int64 `json:"got"` // bytes received by then
}

// notes are the plain sentences the answer ends with when it was cut.
func (b answerBook) notes() []string {
	var out []string
	if c := b.State; c != nil {
		out = append(out, fmt.Sprintf("[kubeq-mcp: the answer before the approval was cut at %d bytes so "+
			"that it could travel with the approval request (--max-request-bytes); KubeIntellect had sent %d "+
			"bytes by then.]", c.At, c.Got))
	}
	if c := b.Cap; c != nil {
		out = append(out, fmt.Sprintf("[kubeq-mcp: the answer was cut at %d bytes, the limit set by "+
			"--max-answer-bytes; KubeIntellect sent %d bytes, which were read to the end of the turn but "+
			"not kept.]", c.At, b.Got))
	}
	return out
}

// keepToken adds a token's text to the answer of the turn in progress,
// within the cap, and reports whether it may still be shown as progress.
func (s *Server) keepToken(run *queryRun, answer *strings.Builder, text string) bool {
	run.book.Got += int64(len(text))
	if run.book.Cap != nil {
		return false
	}
	room := s.cfg.MaxAnswerBytes - partsLen(run.parts) - int64(answer.Len())
	if int64(len(text)) <= room {
		if answer.Len() == 0 {
			answer.Grow(max(len(text), 512)) // not eight doublings for a short answer
		}
		answer.WriteString(text)
		return true
	}
	answer.WriteString(prefixBytes(text, max(room, 0)))
	run.book.Cap = &answerCut{At: partsLen(run.parts) + int64(answer.Len()), Got: run.book.Got}
	s.counters.cutAnswers.Add(1)
	s.log.Warn("answer over the limit: keeping its first part, reading the rest of the turn without keeping it",
		"conversation", run.conv, "limit", s.cfg.MaxAnswerBytes)
	run.fw.note(fmt.Sprintf("the answer is over %d bytes (--max-answer-bytes): the rest is read to the end "+
		"of the turn but not kept", s.cfg.MaxAnswerBytes))
	return true
}

// partsLen is the length in bytes of the answer parts kept so far.
func partsLen(parts []string) int64 {
	var n int64
	for _, p := range parts {
		n += int64(len(p))
	}
	return n
}

// prefixBytes is the longest prefix of s of at most n bytes that does not
// split a UTF-8 sequence.
func prefixBytes(s string, n int64) string {
	if int64(len(s)) <= n {
		return s
	}
	i := int(n)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// cutParts keeps the first n bytes of parts.
func cutParts(parts []string, n int64) []string {
	var out []string
	for _, p := range parts {
		if n <= 0 {
			break
		}
		p = prefixBytes(p, n)
		out = append(out, p)
		n -= int64(len(p))
	}
	return out
}

// sealFitting seals st after cutting the answer it carries, when needed,
// so that the sealed state fits in the request a 2026-era client sends
// back with the human's answer: that request is bound by
// Config.MaxRequestBytes like any other.
func (s *Server) sealFitting(st approvalState) (string, error) {
	limit := s.cfg.MaxRequestBytes
	budget := limit - min(limit/4, 64<<10) // room for the rest of the request
	token, err := s.sealer.seal(st)
	for try := 0; err == nil && int64(len(token)) > budget && len(st.Parts) > 0 && try < 8; try++ {
		kept := partsLen(st.Parts)
		// JSON escaping and base64 make the token longer than the text by a
		// factor that depends on the text: scale by the factor just seen.
		target := kept * budget / int64(len(token)) * 9 / 10
		if try == 7 {
			target = 0
		}
		st.Parts = cutParts(st.Parts, target)
		st.Book.State = &answerCut{At: partsLen(st.Parts), Got: st.Book.Got}
		token, err = s.sealer.seal(st)
	}
	return token, err
}
