// Package conformance is a test-only build of kubeq-mcp for the official MCP
// conformance suite (@modelcontextprotocol/conformance). It registers the
// suite's fixture tools, resources, prompts and completions on our real
// server stack (server.New: same middleware, delivery tracking, HTTP
// handler with Origin check, sessions and event store), so the suite's
// scenarios exercise our transport code rather than a stand-in.
//
// Nothing here is imported by the product binary; the fixtures follow the
// scenario sources of conformance 0.1.16 (see e2e/README.md).
package conformance
