// Package bench is kubeq-mcp's load driver: it starts fake KubeIntellect
// backends and the kubeq-mcp binary, drives them with the official go-sdk
// MCP client over streamable HTTP and stdio, and measures each figure
// against a baseline taken in the same run (a plain SSE reader reading the
// same backend directly, or the Node.js reference MCP server). The command
// is bench/cmd/kubeq-bench; BENCHMARKS.md at the repository root holds the
// results and how to reproduce them.
//
// Everything listens on 127.0.0.1 and every loop is bounded.
package bench
