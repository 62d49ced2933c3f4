#!/usr/bin/env bash
# The official TypeScript SDK (1.32.2, on the machine's Node) drives the
# built kubeq-mcp over stdio and streamable HTTP against the fake
# KubeIntellect: a diagnostic turn with progress, an approval accepted, an
# approval declined (ts/turns.mjs; the diagnostic turn 20 times per
# transport); then the SDK's task client (client.experimental.tasks) drives
# the 2025-11-25 tasks: kube_query as a task polled to its result, a task
# cancelled mid-turn, an approval inside a task approved and declined
# (ts/tasks.mjs). Exit 1 on any failed check.
#
# KUBEQ_E2E_SKIP_APPROVALS=1 skips the approval turns and tasks.
# KUBEQ_E2E_XFAIL (transport:check-id, comma-separated) lists known
# failures; see the default below and e2e/README.md.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# Known failures, if any, as transport:check-id (none today: the stdio
# ordering problem of the TS SDK is met by a ping before each result).
export KUBEQ_E2E_XFAIL="${KUBEQ_E2E_XFAIL-}"

npm_install
build_binaries
start_fake
# The product's --task-ttl, which ts/tasks.mjs checks a task's ttl against
# (over stdio it passes the same flag to the binary it starts).
TASK_TTL_MS=600000
KUBEQ_MCP_TASK_TTL="${TASK_TTL_MS}ms" start_product

status=0
echo "== TS SDK over stdio"
(cd "$E2E_DIR" && timeout 120 node ts/turns.mjs --transport stdio --bin "$E2E_TMP/bin/kubeq-mcp" --backend "$FAKE_URL" --repeat 20) || status=1
echo "== TS SDK over streamable HTTP ($PRODUCT_URL)"
(cd "$E2E_DIR" && timeout 120 node ts/turns.mjs --transport http --url "$PRODUCT_URL" --backend "$FAKE_URL" --repeat 20) || status=1
echo "== TS SDK task client over stdio"
(cd "$E2E_DIR" && timeout 120 node ts/tasks.mjs --transport stdio --bin "$E2E_TMP/bin/kubeq-mcp" --backend "$FAKE_URL" --task-ttl-ms "$TASK_TTL_MS") || status=1
echo "== TS SDK task client over streamable HTTP ($PRODUCT_URL)"
(cd "$E2E_DIR" && timeout 120 node ts/tasks.mjs --transport http --url "$PRODUCT_URL" --backend "$FAKE_URL" --task-ttl-ms "$TASK_TTL_MS") || status=1
exit "$status"
