package kubeq

// Event is one typed thing a KubeIntellect turn carried. The concrete types
// below are the whole set; callers branch with a type switch.
type Event interface{ isEvent() }

// Handshake is the stream.start frame that opens every live turn.
type Handshake struct {
	ProtocolVersion string
	SessionID       string
}

// Status is a progress phase of the agent ("loading", "analyzing", ...).
type Status struct {
	Phase   string
	Message string
}

// ToolCall says the agent started a tool. Command is the command line when
// the backend gave one ("Running: kubectl get pods" on the live stream, the
// command field on replay streams); Message is the raw text as sent.
type ToolCall struct {
	Tool    string
	Command string
	Message string
}

// ToolResult is a tool's output (the backend truncates it to 500 chars).
type ToolResult struct {
	Tool   string
	Output string
}

// Token is a piece of the answer text.
type Token struct {
	Content string
}

// PlanStep is one step of the agent's plan.
type PlanStep struct {
	Description string `json:"description"`
	Status      string `json:"status"`
}

// Plan is the agent's current plan.
type Plan struct {
	Steps []PlanStep
}

// Usage is the token accounting of a turn. A turn without a usage frame has
// no Usage event at all: absence means unknown, never zero.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
	TotalTokens      int
	LLMCalls         int
}

// HitlRequest is an approval gate: the turn pauses until the next message on
// the same session approves or denies Action.
type HitlRequest struct {
	ApprovalID string // action_id; informational, the backend never reads it back
	Action     string // the exact command (human_summary / command)
	Risk       string // "high", "medium", ...
	YAML       string // the YAML to be applied, when the backend showed one
	Prompt     string // the markdown approval prompt as sent
}

// Error is an error the backend reported inside the stream. Fatal errors
// mean any partial answer must be discarded.
type Error struct {
	Message string
	Fatal   bool
}

// Heartbeat is a keep-alive comment frame (": heartbeat").
type Heartbeat struct{}

// Final is the end-of-turn marker of replay streams ({"type": "final"}).
type Final struct{}

// End is the [DONE] frame: the turn is complete. It carries the stream's
// bookkeeping because an iterator has no other place to report it.
type End struct {
	Conversation  string // the X-Session-ID the turn ran on
	RequestID     string // the X-Request-ID sent
	DroppedFrames int    // malformed frames skipped
	UnknownFrames int    // well-formed frames of unknown kind skipped
}

func (Handshake) isEvent()   {}
func (Status) isEvent()      {}
func (ToolCall) isEvent()    {}
func (ToolResult) isEvent()  {}
func (Token) isEvent()       {}
func (Plan) isEvent()        {}
func (Usage) isEvent()       {}
func (HitlRequest) isEvent() {}
func (Error) isEvent()       {}
func (Heartbeat) isEvent()   {}
func (Final) isEvent()       {}
func (End) isEvent()         {}
