package server

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/approval"
)

// recordOf reads conv's record through its lease, as the server would.
func recordOf(t *testing.T, s *Server, conv string) *approval.Record {
	t.Helper()
	h, err := s.ledger.Acquire(context.Background(), conv)
	require.NoError(t, err)
	defer h.Release()
	r, err := h.Pending(context.Background())
	require.NoError(t, err)
	return r
}

// dropRecord forgets conv's record, as a replica that crashed would.
func dropRecord(t *testing.T, s *Server, conv string) {
	t.Helper()
	h, err := s.ledger.Acquire(context.Background(), conv)
	require.NoError(t, err)
	defer h.Release()
	require.NoError(t, h.Clear(context.Background()))
}
