package server

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// dropRecord forgets conv's record, as a replica that crashed would.
func dropRecord(t *testing.T, s *Server, conv string) {
	t.Helper()
	h, err := s.ledger.Acquire(context.Background(), conv)
	require.NoError(t, err)
	defer h.Release()
	require.NoError(t, h.Clear(context.Background()))
}
