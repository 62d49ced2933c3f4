package kubeq

// CONTRACT FILE: written first so server/ can compile while kubeq is built.
// The kubeq helper moves these declarations into their proper files
// (client.go, errors.go, health.go, query.go ...) and deletes this file.
// Exported names and signatures below must not change without telling the
// server author.

import (
	"context"
	"iter"
	"net/http"
	"time"
)

// Turn is one question on one conversation.
type Turn struct {
	Question     string // the user's text, sent verbatim after the namespace prefix
	Conversation string // X-Session-ID; a UUID is generated when empty
	Namespace    string // when set, the message is "[context: namespace=X] " + Question
	User         string // body "user"; the client's default when empty
}

// Result is a whole turn aggregated by Query.
type Result struct {
	Conversation  string
	Answer        string       // all Token contents concatenated, byte-exact
	Hitl          *HitlRequest // the gate the turn ended at, if any
	Usage         *Usage       // nil when the backend sent no usage frame
	ToolCalls     []ToolCall
	Errors        []Error // in-band errors (fatal ones too)
	DroppedFrames int
	UnknownFrames int
	Elapsed       time.Duration
}

// Option configures a Client.
type Option func(*Client) error

func WithAPIKey(key string) Option                   { panic("contract") }
func WithCACertFile(path string) Option              { panic("contract") }
func WithTimeout(d time.Duration) Option             { panic("contract") }
func WithModel(model string) Option                  { panic("contract") }
func WithUser(user string) Option                    { panic("contract") }
func WithRetryDelays(delays ...time.Duration) Option { panic("contract") }
func WithHTTPClient(hc *http.Client) Option          { panic("contract") }

// DefaultRetryDelays is the retry schedule for transport errors.
var DefaultRetryDelays = []time.Duration{1 * time.Second, 3 * time.Second, 5 * time.Second}

// Client speaks KubeIntellect's /v1/chat/completions SSE protocol.
type Client struct{}

// New validates baseURL (http or https, with a host) and applies options.
func New(baseURL string, opts ...Option) (*Client, error) { panic("contract") }

// URL is the backend base URL, without trailing slash.
func (c *Client) URL() string { panic("contract") }

// Stream runs one turn and yields its events in wire order, ending with End
// on [DONE]. Errors are yielded as (nil, err) and end the sequence.
func (c *Client) Stream(ctx context.Context, t Turn) iter.Seq2[Event, error] { panic("contract") }

// Query runs one turn and aggregates it. On an error after some events, the
// partial Result is returned together with the error.
func (c *Client) Query(ctx context.Context, t Turn) (*Result, error) { panic("contract") }

// HealthResult is the outcome of Health.
type HealthResult struct {
	OK         bool
	URL        string // the URL probed (base + /healthz)
	StatusCode int    // 0 when no HTTP answer came
	Latency    time.Duration
	Reason     string // empty when OK; otherwise what a person should do
}

// Health probes GET /healthz with a 5 s bound.
func (c *Client) Health(ctx context.Context) HealthResult { panic("contract") }

// NewConversationID returns a fresh conversation id (a UUID v4).
func NewConversationID() string { panic("contract") }

// StatusError is a non-200 answer. Never retried.
type StatusError struct {
	URL        string
	StatusCode int
	Detail     string        // the server's "detail", flattened
	RetryAfter time.Duration // from Retry-After, 0 when absent
}

func (e *StatusError) Error() string { panic("contract") }

// TransportError is a failure to get any event after all retries.
type TransportError struct {
	URL      string
	Attempts int
	Err      error
}

func (e *TransportError) Error() string { panic("contract") }
func (e *TransportError) Unwrap() error { return e.Err }

// InterruptedError: the stream ended (EOF, reset, read error) without [DONE].
type InterruptedError struct {
	URL           string
	Events        int // typed events received before the break
	DroppedFrames int
	Err           error // the underlying read error, or io.ErrUnexpectedEOF
}

func (e *InterruptedError) Error() string { panic("contract") }
func (e *InterruptedError) Unwrap() error { return e.Err }

// FatalError is a fatal in-band error (ki_event error fatal:true); Query
// returns it after reading to [DONE].
type FatalError struct{ Message string }

func (e *FatalError) Error() string { panic("contract") }
