// Command mcpb-manifest writes one per-platform bundle manifest: the
// template on stdin, the manifest on stdout. Used by scripts/pack-mcpb.sh.
//
//	go run ./internal/bundle/cmd/mcpb-manifest GOOS GOARCH < mcpb/manifest.json
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/kubeq-mcp/kubeq-mcp/internal/bundle"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: mcpb-manifest GOOS GOARCH < template > manifest")
		os.Exit(2)
	}
	template, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mcpb-manifest:", err)
		os.Exit(1)
	}
	out, err := bundle.Manifest(template, os.Args[1], os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "mcpb-manifest:", err)
		os.Exit(1)
	}
	_, _ = os.Stdout.Write(out)
}
