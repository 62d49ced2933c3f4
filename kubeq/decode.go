package kubeq

import (
	"bytes"
	"encoding/json"
	"strings"
)

// decode.go turns one SSE data payload into typed events. It accepts the
// three shapes KubeIntellect and its relatives put on the wire (protocol
// §2–3):
//   - live chat chunks: stream.start, {"ki_event": {...}, "choices": []},
//     content/HITL chunks in choices[0], and a top-level "usage";
//   - flat wire.py dicts of the replay stream: {"type": "tool_call", "tool": ..};
//   - nested typed-view dicts: {"type": "tool_call", "data": {"tool_name": ..}}.
// Every wire name is mapped onto the typed field (protocol §3.3).

// wireFrame is the union of top-level keys of all frame shapes.
type wireFrame struct {
	Object          string          `json:"object"`
	ProtocolVersion string          `json:"protocol_version"`
	SessionID       string          `json:"session_id"`
	KIEvent         *wirePayload    `json:"ki_event"`
	Choices         []wireChoice    `json:"choices"`
	Usage           *wireUsage      `json:"usage"`
	Data            json.RawMessage `json:"data"`
	wirePayload                     // flat and nested shapes carry the payload at the top
}

type wireChoice struct {
	Delta struct {
		Content string `json:"content"`
	} `json:"delta"`
	HitlRequired bool   `json:"hitl_required"`
	ActionID     string `json:"action_id"`
	RiskLevel    string `json:"risk_level"`
	HumanSummary string `json:"human_summary"`
}

// wirePayload holds every field name any event type uses, wire names and
// typed-view names alike; toEvent picks the right ones per type.
type wirePayload struct {
	Type     string          `json:"type"`
	Phase    string          `json:"phase"`
	Message  string          `json:"message"`
	Tool     string          `json:"tool"`
	ToolName string          `json:"tool_name"`
	Command  string          `json:"command"`
	Output   string          `json:"output"`
	Summary  string          `json:"summary"`
	Content  string          `json:"content"`
	Steps    []PlanStep      `json:"steps"`
	Fatal    bool            `json:"fatal"`
	Error    json.RawMessage `json:"error"` // wire.py: a string; OpenAI-style: {"message": ..}

	ActionID   string `json:"action_id"`
	ApprovalID string `json:"approval_id"`
	RiskLevel  string `json:"risk_level"`
	Risk       string `json:"risk"`
	Action     string `json:"action"`
	StdinYAML  string `json:"stdin_yaml"`
	Diff       string `json:"diff"`

	// Data is the payload of the typed-view shape (ki_protocol.events:
	// {"type": .., "data": {..}}), which kube-q's SDK also accepts inside
	// ki_event. At the top level wireFrame.Data shadows it.
	Data json.RawMessage `json:"data"`

	wireUsage
	Usage *wireUsage `json:"usage"` // ki_event.usage, the kube-q CLI's other place
}

type wireUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
	LLMCalls         int `json:"llm_calls"`
}

// outcome says how a frame was understood.
type outcome int

const (
	frameKnown   outcome = iota // events (possibly none, e.g. a stop chunk)
	frameDone                   // [DONE]
	frameUnknown                // well-formed but of no known kind
	frameBad                    // not a JSON object
)

var doneMarker = []byte("[DONE]")

// maxEventsPerFrame bounds what one frame can yield (a HITL chunk with a
// top-level usage: Token, HitlRequest, Usage).
const maxEventsPerFrame = 3

// decoder reuses one wireFrame across frames, so the choices array of the
// hot path (answer tokens) is allocated once per turn, not once per frame.
// It is made when a frame first needs it: a turn whose frames all take the
// fast paths never does.
type decoder struct {
	f *wireFrame
}

// decode appends the frame's events to evs.
func (d *decoder) decode(data []byte, evs []Event) ([]Event, outcome) {
	return d.decodeFrame(data, evs, true)
}

func (d *decoder) decodeFrame(data []byte, evs []Event, fast bool) ([]Event, outcome) {
	data = bytes.TrimSpace(data)
	if bytes.Equal(data, doneMarker) {
		return evs, frameDone
	}
	if len(data) == 0 || data[0] != '{' {
		return evs, frameBad
	}
	if content, ok := fastToken(data); fast && ok {
		if content != "" {
			evs = append(evs, Token{Content: content})
		}
		return evs, frameKnown
	}
	if fast {
		if out, ok := fastProgress(data, evs); ok {
			return out, frameKnown
		}
		if out, ok := fastOther(data, evs); ok {
			return out, frameKnown
		}
	}
	if d.f == nil {
		d.f = &wireFrame{}
	}
	f := d.f
	choices := f.Choices[:cap(f.Choices)]
	clear(choices) // json reuses elements without zeroing them
	*f = wireFrame{Choices: choices[:0]}
	if err := json.Unmarshal(data, f); err != nil {
		return evs, frameBad
	}
	n := len(evs)
	switch {
	case f.Object == "stream.start":
		evs = append(evs, Handshake{ProtocolVersion: f.ProtocolVersion, SessionID: f.SessionID})
	case f.KIEvent != nil:
		p, ok := typedPayload(f.KIEvent, f.KIEvent.Data)
		if !ok {
			return evs, frameUnknown
		}
		if evs, ok = payloadEvents(p, evs); !ok {
			return evs[:n], frameUnknown
		}
	case len(f.Choices) > 0:
		evs = choiceEvents(&f.Choices[0], evs)
	case f.Type != "":
		p, ok := typedPayload(&f.wirePayload, f.Data)
		if !ok {
			return evs, frameUnknown
		}
		if evs, ok = payloadEvents(p, evs); !ok {
			return evs[:n], frameUnknown
		}
	case len(f.Error) > 0 && errorText(f.Error) != "":
		// An OpenAI-style stream error ({"error": {"message": ..}}), as a
		// proxy or gateway in front of the backend sends it: the turn failed.
		evs = append(evs, Error{Message: errorText(f.Error), Fatal: true})
	case f.Usage == nil && f.Object != chunkObject:
		return evs, frameUnknown // an OpenAI chunk with nothing in it is still a chunk
	}
	if f.Usage != nil {
		evs = append(evs, f.Usage.event())
	}
	return evs, frameKnown
}

const chunkObject = "chat.completion.chunk"

// choiceEvents maps a content or HITL chunk. finish_reason is ignored on
// purpose: "stop" is not the end of a turn, and a HITL chunk says null.
func choiceEvents(c *wireChoice, evs []Event) []Event {
	if c.Delta.Content != "" {
		evs = append(evs, Token{Content: c.Delta.Content})
	}
	if c.HitlRequired {
		evs = append(evs, HitlRequest{
			ApprovalID: c.ActionID,
			Action:     c.HumanSummary,
			Risk:       c.RiskLevel,
			YAML:       promptYAML(c.Delta.Content),
			Prompt:     c.Delta.Content,
		})
	}
	return evs
}

// typedPayload returns the payload of a typed dict: flat (the wire.py
// shape, data empty) or nested under "data". Like the SDK's parse_event it
// refuses a "data" that is not an object (a string, null, broken JSON):
// such a frame is of no known kind.
func typedPayload(flat *wirePayload, data json.RawMessage) (*wirePayload, bool) {
	if len(data) == 0 {
		return flat, true
	}
	if data[0] != '{' {
		return nil, false
	}
	var nested wirePayload
	if json.Unmarshal(data, &nested) != nil {
		return nil, false
	}
	nested.Type = flat.Type
	return &nested, true
}

// payloadEvents maps a typed payload (ki_event, flat or nested). It reports
// false for an unknown type. Where a payload names a field twice, the
// client's name (ki_protocol.events) wins over the wire.py one, as in the
// SDK, whose aliases only fill an empty field.
func payloadEvents(p *wirePayload, evs []Event) ([]Event, bool) {
	switch p.Type {
	case "status":
		evs = append(evs, Status{Phase: p.Phase, Message: p.Message})
	case "tool_call":
		evs = append(evs, ToolCall{
			Tool:    first(p.ToolName, p.Tool),
			Command: first(p.Command, commandOf(p.Message)),
			Message: p.Message,
		})
	case "tool_result":
		evs = append(evs, ToolResult{Tool: first(p.Tool, p.ToolName), Output: first(p.Summary, p.Output)})
	case "token":
		if p.Content != "" {
			evs = append(evs, Token{Content: p.Content})
		}
	case "plan":
		evs = append(evs, Plan{Steps: p.Steps})
	case "hitl_request":
		evs = append(evs, HitlRequest{
			ApprovalID: first(p.ApprovalID, p.ActionID),
			Action:     first(p.Action, p.Command),
			Risk:       first(p.Risk, p.RiskLevel),
			YAML:       first(p.Diff, p.StdinYAML),
		})
	case "error":
		evs = append(evs, Error{Message: first(p.Message, errorText(p.Error)), Fatal: p.Fatal})
	case "usage":
		u := &p.wireUsage
		if p.Usage != nil {
			u = p.Usage
		}
		return append(evs, u.event()), true
	case "final":
		if p.Usage != nil {
			evs = append(evs, p.Usage.event())
		}
		return append(evs, Final{}), true
	case "replay_meta":
		return evs, true // bookkeeping of the replay endpoint, nothing to report
	default:
		return evs, false
	}
	if p.Usage != nil {
		evs = append(evs, p.Usage.event())
	}
	return evs, true
}

func (u *wireUsage) event() Usage {
	return Usage{
		PromptTokens:     u.PromptTokens,
		CompletionTokens: u.CompletionTokens,
		TotalTokens:      u.TotalTokens,
		LLMCalls:         u.LLMCalls,
	}
}

// commandOf recovers the command from a live tool_call message
// ("Running: kubectl get pods"); "Calling <tool>" carries none.
func commandOf(message string) string {
	cmd, ok := strings.CutPrefix(message, "Running: ")
	if !ok {
		return ""
	}
	return cmd
}

// errorText reads the error field: a string (wire.py) or an object with a
// message (OpenAI-style backends).
func errorText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var obj struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &obj) == nil {
		return obj.Message
	}
	return ""
}

const yamlMarker = "**YAML to apply:**"

// promptYAML extracts the YAML preview from a HITL prompt: the fenced block
// after "**YAML to apply:**". The server caps the preview at 3000 chars and
// then appends "\n... [truncated]", which is kept as sent.
func promptYAML(prompt string) string {
	_, rest, ok := strings.Cut(prompt, yamlMarker)
	if !ok {
		return ""
	}
	_, rest, ok = strings.Cut(rest, "```")
	if !ok {
		return ""
	}
	_, body, ok := strings.Cut(rest, "\n") // skip the info string ("yaml")
	if !ok {
		return ""
	}
	// The closing fence is the last one in the prompt, so YAML holding a
	// fence of its own survives.
	if end := strings.LastIndex(body, "```"); end >= 0 {
		body = body[:end]
	}
	return strings.TrimSuffix(body, "\n")
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
