// Package schema holds the Go types of kubeq-mcp's tool inputs and outputs
// and of the approval form, and derives their JSON Schemas from them, so the
// schema a client sees and the value a handler decodes can never disagree.
package schema

import (
	"encoding/json"
	"fmt"

	"github.com/invopop/jsonschema"
)

// MaxQuestionLength caps a question, in characters (as JSON Schema's
// maxLength counts them): a longer one is refused before anything reaches
// the backend.
const MaxQuestionLength = 32 * 1024

// ConversationIDPattern keeps a conversation id to a safe HTTP header value.
const ConversationIDPattern = `^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`

// NamespacePattern is a Kubernetes namespace name (an RFC 1123 label).
const NamespacePattern = `^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`

// UserIDPattern keeps a user id printable and short.
const UserIDPattern = `^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$`

// QueryInput is the input of kube_query. Patterns and descriptions are set
// in JSONSchemaExtend because struct tags cannot carry commas.
type QueryInput struct {
	Question       string `json:"question"`
	ConversationID string `json:"conversation_id,omitempty"`
	Namespace      string `json:"namespace,omitempty"`
	UserID         string `json:"user_id,omitempty"`
}

// JSONSchemaExtend adds the limits and the descriptions a model reads when
// it chooses arguments.
func (QueryInput) JSONSchemaExtend(s *jsonschema.Schema) {
	set := func(name, pattern, desc string, minLen, maxLen uint64) {
		p, ok := s.Properties.Get(name)
		if !ok {
			panic("schema: no property " + name)
		}
		p.Pattern, p.Description = pattern, desc
		if minLen > 0 {
			p.MinLength = &minLen
		}
		if maxLen > 0 {
			p.MaxLength = &maxLen
		}
	}
	set("question", "", "The question or instruction for the Kubernetes SRE agent, in plain language "+
		"(e.g. \"why is the checkout deployment in namespace shop crash-looping?\"). The agent investigates "+
		"the cluster (kubectl, metrics, logs) and answers. It may propose a change; a human approves or "+
		"denies every change in a form kubeq-mcp shows them. Never send approval words such as "+
		"\"approve\" or \"yes\" here: they are refused.", 1, MaxQuestionLength)
	set("conversation_id", ConversationIDPattern, "Continue an earlier conversation: pass the "+
		"conversation_id returned by a previous kube_query call, so the agent keeps its context. "+
		"Omit it to start a new conversation.", 0, 0)
	set("namespace", NamespacePattern, "The Kubernetes namespace the question is about. Omit it when "+
		"the question names the namespace or spans several.", 0, 63)
	set("user_id", UserIDPattern, "Who is asking, for the backend's audit log and per-user "+
		"preferences. Omit it to use the server's configured user.", 0, 0)
}

// Decision is what became of an approval gate.
type Decision string

const (
	Approved Decision = "approved"
	Denied   Decision = "denied"
)

// Reason says why a gate was decided the way it was.
type Reason string

const (
	ReasonUserApproved           Reason = "user_approved"
	ReasonUserDenied             Reason = "user_denied"
	ReasonUserDeclined           Reason = "user_declined"
	ReasonUserCancelled          Reason = "user_cancelled"
	ReasonConfirmationMismatch   Reason = "confirmation_mismatch"
	ReasonTimedOut               Reason = "timed_out"
	ReasonElicitationUnsupported Reason = "elicitation_unsupported"
	ReasonError                  Reason = "error"
	ReasonPendingResolved        Reason = "pending_gate_resolved"
	// ReasonRepeatedAfterDenial: the reply to a denial proposed another
	// change; it is denied without asking again (no approval fatigue).
	ReasonRepeatedAfterDenial Reason = "repeated_after_denial"
)

// Approval records one approval gate of a kube_query call.
type Approval struct {
	ApprovalID string   `json:"approval_id" jsonschema:"description=The backend's id for the gate (informational)."`
	Action     string   `json:"action" jsonschema:"description=The exact command the agent wanted to run."`
	Risk       string   `json:"risk" jsonschema:"description=The backend's risk level (high or medium)."`
	Decision   Decision `json:"decision" jsonschema:"enum=approved,enum=denied,description=approved only when a human approved in the elicitation form; otherwise denied and the action did not run."`
	Reason     Reason   `json:"reason" jsonschema:"enum=user_approved,enum=user_denied,enum=user_declined,enum=user_cancelled,enum=confirmation_mismatch,enum=timed_out,enum=elicitation_unsupported,enum=error,enum=pending_gate_resolved,enum=repeated_after_denial,description=Why the gate was decided this way."`
}

// Usage is the backend's token accounting for the call.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
	LLMCalls         int `json:"llm_calls"`
}

// QueryOutput is the structured result of kube_query.
type QueryOutput struct {
	Answer         string     `json:"answer" jsonschema:"description=The agent's whole answer (markdown)."`
	ConversationID string     `json:"conversation_id" jsonschema:"description=Pass this back as conversation_id to continue the conversation."`
	Approvals      []Approval `json:"approvals" jsonschema:"description=Every approval gate raised during the call and how a human decided it."`
	Usage          *Usage     `json:"usage" jsonschema:"nullable,description=Token usage reported by the backend; null when the backend reported none."`
	ElapsedMS      int64      `json:"elapsed_ms" jsonschema:"description=Wall time of the call in milliseconds."`
	Status         TurnStatus `json:"status" jsonschema:"enum=complete,enum=running,description=complete: the answer is whole. running: the investigation goes on after this result; answer is what came so far; call kube_answer with this conversation_id to get the rest."`
	LatestStatus   string     `json:"latest_status,omitempty" jsonschema:"description=While running: the agent's latest step (a status line, the command it runs, or the approval it waits for)."`
}

// TurnStatus says whether a result holds the whole answer.
type TurnStatus string

const (
	StatusComplete TurnStatus = "complete"
	StatusRunning  TurnStatus = "running"
)

// MaxWaitSeconds caps kube_answer's wait_seconds in the schema; the server
// also caps it at its call deadline.
const MaxWaitSeconds = 600

// AnswerInput is the input of kube_answer.
type AnswerInput struct {
	ConversationID string `json:"conversation_id"`
	WaitSeconds    *int   `json:"wait_seconds,omitempty"`
}

// JSONSchemaExtend adds the pattern, the bounds and the descriptions.
func (AnswerInput) JSONSchemaExtend(s *jsonschema.Schema) {
	c, ok := s.Properties.Get("conversation_id")
	if !ok {
		panic("schema: no property conversation_id")
	}
	c.Pattern = ConversationIDPattern
	c.Description = "The conversation_id of a kube_query result whose status was running."
	w, ok := s.Properties.Get("wait_seconds")
	if !ok {
		panic("schema: no property wait_seconds")
	}
	zero, most := json.Number("0"), json.Number(fmt.Sprint(MaxWaitSeconds))
	w.Minimum, w.Maximum = zero, most
	w.Description = "How long to wait for the investigation to finish before returning what has come so far " +
		"(at most the server's call deadline). 0 or omitted: answer at once."
}

// HealthInput is the (empty) input of kube_health.
type HealthInput struct{}

// HealthOutput is the structured result of kube_health. The fields after
// reason are optional: older backends do not report them.
type HealthOutput struct {
	Healthy    bool   `json:"healthy" jsonschema:"description=True when kube_query can work: the backend answered its health check with HTTP 200; is not draining; and did not refuse the API key."`
	URL        string `json:"url" jsonschema:"description=The health URL probed."`
	StatusCode int    `json:"status_code" jsonschema:"description=The HTTP status received (401 when the API key was refused); 0 when no answer came."`
	LatencyMS  int64  `json:"latency_ms" jsonschema:"description=How long the probe took in milliseconds."`
	Reason     string `json:"reason" jsonschema:"description=Empty when healthy; otherwise what is wrong and what to do about it."`

	Version          string   `json:"version,omitempty" jsonschema:"description=The backend's version as its health check reports it."`
	Era              string   `json:"era,omitempty" jsonschema:"description=The backend's generation: its arm (v4 on current KubeIntellect) or v2 for an older server that takes any reply but a denial as approval of a pending action."`
	Ready            *bool    `json:"ready,omitempty" jsonschema:"description=From the backend's /readyz: false while it drains for shutdown. Absent when the backend has no readiness check."`
	DegradedFeatures []string `json:"degraded_features,omitempty" jsonschema:"description=Experimental features switched on in the backend that are not running because the subsystem behind them is down."`
	APIKey           string   `json:"api_key,omitempty" jsonschema:"enum=accepted,enum=rejected,enum=missing,enum=unchecked,description=What the backend said of the API key: accepted; rejected (a key was sent and refused); missing (none is set and the backend needs one); unchecked (the backend cannot be asked)."`
	Role             string   `json:"role,omitempty" jsonschema:"description=The role the API key holds in KubeIntellect: readonly; operator; admin or superadmin."`
	Notes            []string `json:"notes,omitempty" jsonschema:"description=What could not be checked and why."`

	// The approval store: without it, kube_query sends nothing.
	Store       string `json:"store" jsonschema:"description=The approval store: memory (one process) or the shared Redis (without its password)."`
	StoreOK     bool   `json:"store_ok" jsonschema:"description=True when the approval store answered; kube_query refuses to send anything while it does not."`
	StoreReason string `json:"store_reason,omitempty" jsonschema:"description=What is wrong with the approval store and what to check; empty when it is fine."`
}

// For returns the JSON Schema of v's type, inlined (no $ref, no $defs) so
// every client can read it, and without a $schema or $id of its own.
func For(v any) (json.RawMessage, error) {
	return marshal(reflect(v), v)
}

// QueryInputFor is kube_query's input schema. Without allowUser it has no
// user_id: the server then sends its configured user, and a model cannot
// attribute a turn to someone else in the backend's audit log.
func QueryInputFor(allowUser bool) (json.RawMessage, error) {
	s := reflect(&QueryInput{})
	if !allowUser {
		s.Properties.Delete("user_id")
	}
	return marshal(s, &QueryInput{})
}

func reflect(v any) *jsonschema.Schema {
	r := &jsonschema.Reflector{DoNotReference: true, ExpandedStruct: true}
	s := r.Reflect(v)
	s.Version = ""
	s.ID = ""
	return s
}

func marshal(s *jsonschema.Schema, v any) (json.RawMessage, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("marshal schema of %T: %w", v, err)
	}
	return b, nil
}

// MustFor is For for package-level tool definitions, where a failure is a
// programming error.
func MustFor(v any) json.RawMessage {
	b, err := For(v)
	if err != nil {
		panic(err)
	}
	return b
}
