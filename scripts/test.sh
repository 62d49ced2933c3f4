#!/usr/bin/env bash
# The project's test command: everything CI runs, from a clean checkout.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== go vet"
go vet ./...
echo "== go test -race"
go test -race -count=1 ./...
