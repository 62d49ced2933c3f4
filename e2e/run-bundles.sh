#!/usr/bin/env bash
# Packs the Claude Desktop bundle of every release target with the real MCPB bundler
# (@anthropic-ai/mcpb, pinned in package-lock.json; scripts/pack-mcpb.sh validates each manifest
# with `mcpb validate` before `mcpb pack`), then unpacks them and checks each one
# (internal/packaging TestPackedBundles with KUBEQ_MCPB_DIR): it claims only its own platform, its
# entry point exists and is a binary for its platform and CPU, and the host's bundle starts as
# Claude Desktop would start it and lists the tools. Exit 1 on any failure.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

npm_install
dist="$E2E_TMP/dist"
for target in linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64; do
	echo "== pack ${target}"
	"$REPO_DIR/scripts/pack-mcpb.sh" "${target%/*}" "${target#*/}" "$dist" >"$E2E_TMP/pack.log" 2>&1 || {
		cat "$E2E_TMP/pack.log"
		exit 1
	}
	grep -E 'validation passes|^packed ' "$E2E_TMP/pack.log"
done
echo "== unpack and start"
(cd "$REPO_DIR" && KUBEQ_MCPB_DIR="$dist" go test -count=1 -v -run '^TestPackedBundles$' ./internal/packaging/) |
	grep -E '^(=== RUN|--- |\s+--- |ok|FAIL|\s+\S+_test.go)'
