#!/usr/bin/env bash
# Packs the Claude Desktop bundle for one platform: dist/kubeq-mcp_<goos>_<goarch>.mcpb holding
# mcpb/manifest.json and the static binary at server/kubeq-mcp (server/kubeq-mcp.exe on Windows).
# Usage: scripts/pack-mcpb.sh GOOS GOARCH   (e.g. darwin arm64). Needs npx (npm registry).
set -euo pipefail
cd "$(dirname "$0")/.."

goos="${1:?usage: $0 GOOS GOARCH}"
goarch="${2:?usage: $0 GOOS GOARCH}"
exe=""
if [ "$goos" = "windows" ]; then exe=".exe"; fi

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/server" dist
cp mcpb/manifest.json "$stage/manifest.json"
cp LICENSE "$stage/LICENSE"
CGO_ENABLED=0 GOOS="$goos" GOARCH="$goarch" go build -trimpath -ldflags="-s -w" -o "$stage/server/kubeq-mcp$exe" .

out="dist/kubeq-mcp_${goos}_${goarch}.mcpb"
npx --yes @anthropic-ai/mcpb@2.1.2 pack "$stage" "$out"
echo "packed $out"
