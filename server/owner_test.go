package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An HTTP task owner is keyed with the state key: replicas that share it
// agree, another key (another deployment) disagrees, and the owner is not
// the token's plain hash, which a reader of the store could test guesses
// against offline.
func TestHTTPOwnerKeyedWithStateKey(t *testing.T) {
	server := func(key []byte) *Server {
		s, err := New(Config{StateKey: key})
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	key := bytes.Repeat([]byte{7}, 32)
	a, b, other := server(key), server(bytes.Clone(key)), server(bytes.Repeat([]byte{8}, 32))

	owner := a.httpOwner("alice")
	assert.Regexp(t, `^http:[0-9a-f]{64}$`, owner)
	assert.Equal(t, owner, b.httpOwner("alice"), "replicas sharing the state key agree")
	assert.NotEqual(t, owner, other.httpOwner("alice"))
	assert.NotEqual(t, owner, a.httpOwner("bob"))
	sum := sha256.Sum256([]byte("alice"))
	assert.NotContains(t, owner, hex.EncodeToString(sum[:]))
	assert.Equal(t, "http", a.httpOwner(""), "everyone without a token is one client")
}
