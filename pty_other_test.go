//go:build !linux

package main

import (
	"os"
	"testing"

	"github.com/kubeq-mcp/kubeq-mcp/internal/testskip"
)

func openPTY(t *testing.T) *os.File {
	testskip.Skip(t, "the pseudo-terminal helper is Linux only")
	return nil
}
