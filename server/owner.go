package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// A task's owner is written to the store with its record. For an HTTP
// client it is HMAC-SHA256 of the bearer token, keyed with a key derived
// from the state key: replicas sharing a store share the state key
// (--state-key is required then), so they agree on every owner, while
// whoever reads the store cannot test guesses of a token offline, as a
// plain hash would let them.

// ownerKeyLabel separates the owner key from the state key's other uses.
const ownerKeyLabel = "kubeq-mcp task owner v1"

// deriveOwnerKey is the key of httpOwner, from the state key.
func deriveOwnerKey(stateKey []byte) []byte {
	m := hmac.New(sha256.New, stateKey)
	m.Write([]byte(ownerKeyLabel))
	return m.Sum(nil)
}

// httpOwner is the task owner of an HTTP request with this bearer token;
// everyone without a token is one "http" client.
func (s *Server) httpOwner(token string) string {
	if token == "" {
		return "http"
	}
	m := hmac.New(sha256.New, s.ownerKey)
	m.Write([]byte(token))
	return "http:" + hex.EncodeToString(m.Sum(nil))
}
