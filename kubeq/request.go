package kubeq

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
)

// Turn is one question on one conversation.
type Turn struct {
	Question     string // the user's text, sent verbatim after the namespace prefix
	Conversation string // X-Session-ID; a UUID is generated when empty
	Namespace    string // when set, the message is "[context: namespace=X] " + Question
	User         string // body "user"; the client's default when empty

	// AtMostOnce forbids sending the turn again once its request may have
	// reached the backend: only a failure to connect or to write the
	// request is retried. Set it for a turn whose second delivery could
	// mean something else than the first, like "approve" (which would
	// answer whatever gate the first one led to).
	AtMostOnce bool
}

// MaxConversationLen caps a conversation id: it travels as a header.
const MaxConversationLen = 200

// NewConversationID returns a fresh conversation id (a UUID v4).
func NewConversationID() string { return newUUID() }

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])  // never fails (crypto/rand panics rather than return an error)
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// chatBody is the request body, fields in the order kube-q sends them. It
// never has auto_approve: only a human approves (DESIGN.md invariant 1).
type chatBody struct {
	Model         string        `json:"model"`
	Messages      []chatMessage `json:"messages"`
	Stream        bool          `json:"stream"`
	User          string        `json:"user"`
	StreamOptions streamOptions `json:"stream_options"`
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// preparedTurn is a validated turn, ready to be POSTed (once per attempt).
type preparedTurn struct {
	conversation string
	body         []byte
	atMostOnce   bool
}

func (c *Client) prepare(t Turn) (preparedTurn, error) {
	if Blank(t.Question) {
		return preparedTurn{}, fmt.Errorf("kubeq: %w: the question is empty", ErrInvalidTurn)
	}
	conv := t.Conversation
	if conv == "" {
		conv = NewConversationID()
	}
	if !safeHeaderValue(conv, MaxConversationLen) {
		return preparedTurn{}, fmt.Errorf("kubeq: %w: conversation id must be 1-%d printable ASCII characters without leading or trailing space",
			ErrInvalidTurn, MaxConversationLen)
	}
	user := t.User
	if user == "" {
		user = c.user
	}
	content := t.Question
	if t.Namespace != "" {
		content = "[context: namespace=" + t.Namespace + "] " + t.Question
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(chatBody{
		Model:         c.model,
		Messages:      []chatMessage{{Role: "user", Content: content}},
		Stream:        true,
		User:          user,
		StreamOptions: streamOptions{IncludeUsage: true},
	})
	if err != nil {
		return preparedTurn{}, fmt.Errorf("kubeq: encoding the request: %w", err)
	}
	return preparedTurn{conversation: conv, body: bytes.TrimSuffix(buf.Bytes(), []byte("\n")), atMostOnce: t.AtMostOnce}, nil
}

// newRequest builds one attempt's POST with a fresh X-Request-ID.
func (c *Client) newRequest(ctx context.Context, p preparedTurn) (*http.Request, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+chatPath, bytes.NewReader(p.body))
	if err != nil {
		return nil, "", fmt.Errorf("kubeq: building the request: %w", err)
	}
	if p.atMostOnce {
		// Without GetBody net/http cannot send the request again by itself
		// (HTTP/2 does after some stream resets, even once the body was
		// written); a failure before anything was written is retried by
		// Stream, which builds a new request.
		req.GetBody = nil
	}
	reqID := "req-" + newUUID()
	// Set by their canonical names (what Header.Set would make of them,
	// once per request).
	req.Header["Content-Type"] = []string{"application/json"}
	req.Header["Accept"] = []string{"text/event-stream"}
	req.Header["X-Session-Id"] = []string{p.conversation}
	req.Header["X-Request-Id"] = []string{reqID}
	c.authorize(req)
	return req, reqID, nil
}

func (c *Client) authorize(req *http.Request) {
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
}

// safeHeaderValue: 1..max printable ASCII bytes, no leading/trailing space.
func safeHeaderValue(s string, max int) bool {
	if s == "" || len(s) > max || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
