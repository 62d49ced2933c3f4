#!/usr/bin/env bash
# Checks everything that ships kubeq-mcp: the packaging test (client snippets, docs/clients.md,
# server.json, mcpb manifest, Dockerfile, .dockerignore, goreleaser targets, k8s manifests,
# and the snippets started against the real binary), the six release builds, and, where the
# tools can be had, `mcpb validate` and `goreleaser check`.
# Set CHECK_PACKAGING_TOOLS=0 to skip the npm and Go-proxy downloads of those two tools.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== go test ./internal/packaging"
go test -race -count=1 ./internal/packaging/

echo "== cross-build"
scripts/cross-build.sh

if [ "${CHECK_PACKAGING_TOOLS:-1}" = "0" ]; then
	echo "== mcpb validate, goreleaser check: skipped (CHECK_PACKAGING_TOOLS=0)"
	exit 0
fi

echo "== mcpb validate (template), and the six bundles packed, unpacked and started"
if command -v npx >/dev/null 2>&1; then
	npx --yes @anthropic-ai/mcpb@2.1.2 validate mcpb/manifest.json
	e2e/run-bundles.sh
else
	echo "npx not found: skipped"
fi

echo "== goreleaser check"
# v2.15.1 is the newest goreleaser that builds with Go 1.26 from the module proxy here.
go run github.com/goreleaser/goreleaser/v2@v2.15.1 check
