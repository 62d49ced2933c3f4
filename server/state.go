package server

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kubeq-mcp/kubeq-mcp/approval"
	"github.com/kubeq-mcp/kubeq-mcp/schema"
)

// approvalState is what a 2026-era client carries between the leg that asks
// for an approval and the leg that answers it. It is sealed: the client can
// neither read nor change it, and a state from another server key, another
// conversation or the past opens as invalid.
type approvalState struct {
	V            int               `json:"v"`
	Nonce        string            `json:"n"`   // one gate, one answer: replays are refused
	Conversation string            `json:"c"`   // X-Session-ID
	User         string            `json:"u"`   // body "user" for the continuation
	ApprovalID   string            `json:"aid"` // the backend's action_id
	Action       string            `json:"a"`
	Risk         string            `json:"r"`
	Confirm      string            `json:"cf,omitempty"`  // the name the human must type, if any
	Parts        []string          `json:"ans,omitempty"` // the answer so far, one part per turn
	Approvals    []schema.Approval `json:"ap,omitempty"`  // gates decided so far in this call
	Usage        *schema.Usage     `json:"us,omitempty"`
	Book         answerBook        `json:"ab"` // the answer's size against the answer cap
	Started      time.Time         `json:"st"`
	Expires      time.Time         `json:"exp"`
	PageID       string            `json:"pg,omitempty"` // the approval page waiting for this answer (URL mode)
}

const stateVersion = 1

// sealer seals and opens approval states with AES-256-GCM.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("state key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("state key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("state key: %w", err)
	}
	return &sealer{aead: aead}, nil
}

// additional data binds a sealed state to its purpose.
var stateAD = []byte("kubeq-mcp approval state v1")

func (s *sealer) seal(st approvalState) (string, error) {
	st.V = stateVersion
	plain, err := json.Marshal(st)
	if err != nil {
		return "", fmt.Errorf("seal state: %w", err)
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal state: %w", err)
	}
	out := s.aead.Seal(nonce, nonce, plain, stateAD)
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// open returns the state, or errBadState for anything forged, tampered,
// from another key or version, or expired at now.
func (s *sealer) open(token string, now time.Time) (approvalState, error) {
	var st approvalState
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead() {
		return st, errBadState
	}
	ns := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:ns], raw[ns:], stateAD)
	if err != nil {
		return st, errBadState
	}
	if err := json.Unmarshal(plain, &st); err != nil || st.V != stateVersion {
		return approvalState{}, errBadState
	}
	if !now.Before(st.Expires) {
		return st, errStateExpired
	}
	return st, nil
}

// gate is the gate st was issued for, with its confirmation as computed
// then.
func (st approvalState) gate() approval.Gate {
	return approval.Gate{ApprovalID: st.ApprovalID, Action: st.Action, Risk: st.Risk, Confirm: st.Confirm}
}
