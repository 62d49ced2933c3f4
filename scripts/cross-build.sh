#!/usr/bin/env bash
# Builds kubeq-mcp for every release target (the same six as .goreleaser.yaml), static,
# without keeping the binaries. Usage: scripts/cross-build.sh [package] (default: the root package).
set -euo pipefail
cd "$(dirname "$0")/.."

pkg="${1:-.}"
targets=(linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64)
failed=0
for target in "${targets[@]}"; do
	goos="${target%/*}"
	goarch="${target#*/}"
	if CGO_ENABLED=0 GOOS="$goos" GOARCH="$goarch" go build -trimpath -o /dev/null "$pkg"; then
		echo "ok   $goos/$goarch"
	else
		echo "FAIL $goos/$goarch"
		failed=$((failed + 1))
	fi
done
if [ "$failed" -ne 0 ]; then
	echo "cross-build: $failed of ${#targets[@]} targets failed" >&2
	exit 1
fi
echo "cross-build: all ${#targets[@]} targets built"
