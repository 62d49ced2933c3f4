#!/usr/bin/env bash
# Packs the Claude Desktop bundle for one platform: OUTDIR/kubeq-mcp_<goos>_<goarch>.mcpb (OUTDIR
# is dist/ by default) holding the static binary at server/kubeq-mcp (server/kubeq-mcp.exe on
# Windows) and a manifest written from the template mcpb/manifest.json that claims only this
# platform and names that binary as its entry point (internal/bundle).
# Usage: scripts/pack-mcpb.sh GOOS GOARCH [OUTDIR]   (e.g. darwin arm64).
# Uses @anthropic-ai/mcpb from e2e/node_modules (pinned in e2e/package-lock.json) when installed,
# else npx @anthropic-ai/mcpb@2.1.2.
set -euo pipefail
cd "$(dirname "$0")/.."

goos="${1:?usage: $0 GOOS GOARCH [OUTDIR]}"
goarch="${2:?usage: $0 GOOS GOARCH [OUTDIR]}"
outdir="${3:-dist}"
exe=""
if [ "$goos" = "windows" ]; then exe=".exe"; fi
mcpb=(npx --yes @anthropic-ai/mcpb@2.1.2)
if [ -x e2e/node_modules/.bin/mcpb ]; then mcpb=(e2e/node_modules/.bin/mcpb); fi

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/server" "$outdir"
go run ./internal/bundle/cmd/mcpb-manifest "$goos" "$goarch" <mcpb/manifest.json >"$stage/manifest.json"
cp LICENSE "$stage/LICENSE"
CGO_ENABLED=0 GOOS="$goos" GOARCH="$goarch" go build -trimpath -ldflags="-s -w" -o "$stage/server/kubeq-mcp$exe" .

out="$outdir/kubeq-mcp_${goos}_${goarch}.mcpb"
"${mcpb[@]}" validate "$stage/manifest.json"
"${mcpb[@]}" pack "$stage" "$out"
echo "packed $out"
