package kubeqtest

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Script is what the fake writes for one turn, step by step. After the last
// step the fake ends the turn the way the real server does: the usage frame
// (when enabled), the stop chunk, then [DONE]. Steps that end the turn
// themselves (Fatal, a Gate that pauses, the fault steps) say so.
type Script []Step

// Step is one element of a Script. Build steps with the functions of this
// package; a Gate value is itself a Step.
type Step interface {
	write(t *turn) error
}

type stepFunc func(t *turn) error

func (f stepFunc) write(t *turn) error { return f(t) }

// Status writes a status ki_event: {"type": "status", "phase", "message"}.
func Status(phase, message string) Step {
	return stepFunc(func(t *turn) error {
		t.record(Obj{{"type", "status"}, {"phase", phase}, {"message", message}})
		return t.kiEvent(Obj{{"type", "status"}, {"phase", phase}, {"message", message}})
	})
}

// ToolCall writes a tool_call ki_event. The live stream does not carry the
// command itself: the message is "Running: <command>", or "Calling <tool>"
// when command is empty (a non-kubectl tool).
func ToolCall(tool, command string) Step {
	return stepFunc(func(t *turn) error { return t.toolCall(tool, command) })
}

// ToolResult writes a tool_result ki_event. Like the backend, the output is
// cut to its first 500 characters.
func ToolResult(tool, output string) Step {
	return stepFunc(func(t *turn) error { return t.toolResult(tool, output) })
}

// Tokens writes text as several content chunks of about the server's token
// chunk size (WithTokenChunkSize), never splitting a UTF-8 character.
func Tokens(text string) Step {
	return stepFunc(func(t *turn) error {
		for _, piece := range splitTokens(text, t.srv.opts.chunkSize) {
			if err := t.token(piece); err != nil {
				return err
			}
		}
		return nil
	})
}

// Token writes s as exactly one content chunk.
func Token(s string) Step {
	return stepFunc(func(t *turn) error { return t.token(s) })
}

// PlanStep is one step of a plan ki_event; Status is one of "pending",
// "in_progress", "done", "skipped".
type PlanStep struct {
	Description string
	Status      string
}

// Plan writes a plan ki_event with the given steps.
func Plan(steps ...PlanStep) Step {
	return stepFunc(func(t *turn) error {
		list := make([]Obj, len(steps))
		for i, s := range steps {
			list[i] = Obj{{"description", s.Description}, {"status", s.Status}}
		}
		t.record(Obj{{"type", "plan"}, {"steps", list}})
		return t.kiEvent(Obj{{"type", "plan"}, {"steps", list}})
	})
}

// Usage sets the numbers of this turn's usage frame, which is still written
// once, right before the stop chunk, and only when the server sends usage
// frames at all (WithUsageFrame).
func Usage(prompt, completion, total, llmCalls int) Step {
	return stepFunc(func(t *turn) error {
		t.usage = [4]int{prompt, completion, total, llmCalls}
		return nil
	})
}

// MidTurnError writes the recoverable error of the real server: a content
// chunk "\n\n**Error:** <msg>" with finish_reason "stop". The stream goes on
// (usage, a second stop chunk, [DONE]).
func MidTurnError(msg string) Step {
	return stepFunc(func(t *turn) error {
		t.record(Obj{{"type", "error"}, {"error", msg}})
		return t.chunk(Obj{{"content", "\n\n**Error:** " + msg}, {"role", "assistant"}}, "stop", nil)
	})
}

// Fatal ends the turn the way an exception in the server's generator does:
// a ki_event {"type": "error", "fatal": true, "message"} (unless
// WithFatalEvent(false), as on V2), a "\n\n[Error: <msg>]" content chunk with
// finish_reason "stop", then [DONE]. No usage frame. Later steps are skipped.
func Fatal(msg string) Step {
	return stepFunc(func(t *turn) error {
		if t.srv.opts.fatalEvent {
			if err := t.kiEvent(Obj{{"type", "error"}, {"fatal", true}, {"message", msg}}); err != nil {
				return err
			}
		}
		if err := t.chunk(Obj{{"content", "\n\n[Error: " + msg + "]"}, {"role", "assistant"}}, "stop", nil); err != nil {
			return err
		}
		t.end = endFatal
		return nil
	})
}

// Heartbeat writes the keep-alive comment frame ": heartbeat".
func Heartbeat() Step {
	return stepFunc(func(t *turn) error { return t.heartbeat() })
}

// Sleep pauses the turn for d, writing heartbeats whenever the heartbeat
// interval passes without a frame. It returns early when the client goes
// away or the server closes.
func Sleep(d time.Duration) Step {
	return stepFunc(func(t *turn) error { return t.wait(d, nil) })
}

// WaitFor pauses the turn until ch is closed (or receives), with heartbeats
// as in Sleep. Tests use it to hold a turn open while they act.
func WaitFor(ch <-chan struct{}) Step {
	return stepFunc(func(t *turn) error { return t.wait(-1, ch) })
}

// Raw writes b to the stream as it is: no framing added.
func Raw(b []byte) Step {
	return stepFunc(func(t *turn) error { return t.writeRaw(b) })
}

// Huge writes one token frame whose content is n bytes long.
func Huge(n int) Step {
	return stepFunc(func(t *turn) error { return t.token(hugeText(n)) })
}

// Flood writes n content chunks of token each, cheaply: the frame is
// built once, the stream is flushed every 64 KiB rather than per frame, and
// the chunks are not recorded one by one in the replay history (one token
// event stands for them). It stands for a backend that streams without end
// (a model stuck in a loop, a proxy replaying): Flood(1_000_000, "x ") is a
// turn of a million tokens.
func Flood(n int, token string) Step {
	return stepFunc(func(t *turn) error {
		t.record(Obj{{"type", "token"}, {"content", fmt.Sprintf("[%d × %q]", n, token)}})
		frame := append(t.chunkBytes(Obj{{"content", token}, {"role", "assistant"}}, nil, nil), t.sep...)
		pending := 0
		for i := 0; i < n; i++ {
			if _, err := t.w.Write(frame); err != nil {
				t.gone = true
				return errGone
			}
			t.frames++
			if pending += len(frame); pending >= 64<<10 || i == n-1 {
				pending = 0
				if err := t.alive(); err != nil {
					return err
				}
				if err := t.rc.Flush(); err != nil {
					t.gone = true
					return errGone
				}
				t.lastWrite = time.Now()
			}
		}
		return nil
	})
}

// Malformed writes a complete SSE frame whose JSON is broken, as a lossy
// proxy might.
func Malformed() Step {
	return stepFunc(func(t *turn) error {
		return t.writeFrame([]byte(`data: {"id": "` + t.id + `", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "lost`))
	})
}

// CutMidFrame writes the first half of a content frame and drops the
// connection: the client sees a stream that ends inside a frame.
func CutMidFrame() Step {
	return stepFunc(func(t *turn) error {
		frame := t.chunkBytes(Obj{{"content", "this frame never ends"}, {"role", "assistant"}}, nil, nil)
		if err := t.writeRaw(frame[:len(frame)/2]); err != nil {
			return err
		}
		t.end = endAbort
		return nil
	})
}

// EndWithoutDone ends the response right here, cleanly at the HTTP level but
// with no stop chunk and no [DONE]: a truncated turn.
func EndWithoutDone() Step {
	return stepFunc(func(t *turn) error {
		t.end = endNoDone
		return nil
	})
}

// Preamble returns the status steps the real server opens a turn with.
func Preamble() Script {
	return Script{
		Status("loading", "Loading conversation context…"),
		Status("snapshot", "Fetching cluster snapshot…"),
		Status("analyzing", "Analyzing your request…"),
	}
}

// Answer is a complete plain turn: the preamble, then text as tokens.
func Answer(text string) Script {
	return append(Preamble(), Tokens(text))
}

// splitTokens cuts text into pieces of about size bytes, preferring to cut
// after a space and never inside a UTF-8 sequence.
func splitTokens(text string, size int) []string {
	if size <= 0 {
		size = 1
	}
	var out []string
	for len(text) > size {
		cut := size
		if sp := strings.LastIndexByte(text[:size], ' '); sp > size/2 {
			cut = sp + 1
		}
		for cut < len(text) && !utf8.RuneStart(text[cut]) {
			cut++
		}
		out = append(out, text[:cut])
		text = text[cut:]
	}
	if text != "" {
		out = append(out, text)
	}
	return out
}

func hugeText(n int) string {
	const word = "kubeintellect "
	var b strings.Builder
	b.Grow(n)
	for b.Len()+len(word) <= n {
		b.WriteString(word)
	}
	b.WriteString(strings.Repeat("x", n-b.Len()))
	return b.String()
}
