#!/usr/bin/env bash
# The MCP conformance suite (@modelcontextprotocol/conformance) against
# kubeq-mcp, two ways (see e2e/README.md):
#   1. the real binary over HTTP, with the fake KubeIntellect behind it: the
#      protocol-level scenarios of 0.1.16 and the applicable ones of
#      0.2.0-alpha.12;
#   2. the conformance build (our HTTP stack + the suite's fixtures): the
#      whole active 0.1.16 suite, then tools-call-with-progress and
#      tools-call-with-logging REPEAT times each (default 10).
# Results go to e2e/out/conformance/; a summary per run is printed.
# Exit 1 on any unexpected failure.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

REPEAT="${KUBEQ_E2E_REPEAT:-10}"
OUT="$E2E_DIR/out/conformance"
C116="$E2E_DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js"
CNEXT="$E2E_DIR/node_modules/conformance-next/dist/index.js"

# Scenarios that apply to the product as it is (two tools, no prompts or
# resources): protocol-level ones, session lifecycle, 2026-07-28 header
# validation and method routing.
PRODUCT_116=(server-initialize ping tools-list server-sse-multiple-streams dns-rebinding-protection logging-set-level)
PRODUCT_NEXT=("${PRODUCT_116[@]}" server-session-lifecycle http-header-validation
	input-required-result-unsupported-methods sep-2164-resource-not-found)
# Applicable in part only (needs fixture tools, see README): run, printed,
# not gating.
PRODUCT_NEXT_INFO=(server-stateless)

# None since mcp-go v1.6.0: tools-call-sampling needs the standalone GET
# stream, which the handler serves again now that a call's progress stays on
# its own POST stream.
EXPECTED_FAIL_116=

# Scenarios of 0.1.16 that its "active" suite leaves out (pending upstream).
PENDING_116=(json-schema-2020-12 server-sse-polling)

# active_116 prints the 0.1.16 active suite, one scenario a line: every
# server scenario `conformance list --server` names, minus the pending ones.
# An empty list is an error, not an empty run.
active_116() {
	local names
	names="$("${NODE22[@]}" "$C116" list --server | sed -n 's/^  - \([^ ]*\).*/\1/p' | grep -vxF -f <(printf '%s\n' "${PENDING_116[@]}"))"
	if [ -z "$names" ]; then
		echo "conformance: 'list --server' named no scenarios" >&2
		return 1
	fi
	echo "$names"
}

# conformance JS URL OUTDIR SCENARIO...: runs each scenario on its own and
# appends "SCENARIO EXIT-STATUS" to OUTDIR.requested, so that summarize.mjs
# compares what was asked with what has results: a scenario that crashed,
# hung (timeout: 124) or failed shows up even when it wrote no checks.json.
conformance() {
	local js="$1" url="$2" out="$3"
	shift 3
	mkdir -p "$out"
	local s rc
	for s in "$@"; do
		rc=0
		timeout 120 "${NODE22[@]}" "$js" server --url "$url" --scenario "$s" -o "$out" >>"$out.log" 2>&1 || rc=$?
		echo "$s $rc" >>"$out.requested"
	done
}

npm_install
build_binaries
rm -rf "$OUT"
start_fake
start_product
start_bg conformance-build "$E2E_TMP/bin/conformance-server" --addr 127.0.0.1:0
CONF_URL="$(wait_line conformance-build '^listening on ')"

echo "== conformance 0.1.16 against kubeq-mcp (product binary, $PRODUCT_URL)"
conformance "$C116" "$PRODUCT_URL" "$OUT/product-0.1.16" "${PRODUCT_116[@]}"
status=0
node "$E2E_DIR/summarize.mjs" "$OUT/product-0.1.16" "product 0.1.16" --requested "$OUT/product-0.1.16.requested" || status=1

echo "== conformance 0.2.0-alpha.12 against kubeq-mcp (product binary)"
conformance "$CNEXT" "$PRODUCT_URL" "$OUT/product-0.2.0" "${PRODUCT_NEXT[@]}"
node "$E2E_DIR/summarize.mjs" "$OUT/product-0.2.0" "product 0.2.0-alpha.12" --requested "$OUT/product-0.2.0.requested" || status=1
conformance "$CNEXT" "$PRODUCT_URL" "$OUT/product-0.2.0-info" "${PRODUCT_NEXT_INFO[@]}"
node "$E2E_DIR/summarize.mjs" "$OUT/product-0.2.0-info" "product 0.2.0-alpha.12 (informational, not gating)" --informational \
	--requested "$OUT/product-0.2.0-info.requested"

echo "== conformance 0.1.16 active suite against the conformance build ($CONF_URL)"
ACTIVE_LIST="$(active_116)"
mapfile -t ACTIVE_116 <<<"$ACTIVE_LIST"
conformance "$C116" "$CONF_URL" "$OUT/build-0.1.16" "${ACTIVE_116[@]}"
node "$E2E_DIR/summarize.mjs" "$OUT/build-0.1.16" "build 0.1.16 active suite" \
	--expected-fail "$EXPECTED_FAIL_116" --requested "$OUT/build-0.1.16.requested" || status=1

echo "== tools-call-with-progress and tools-call-with-logging, $REPEAT runs each, against the conformance build"
for i in $(seq 1 "$REPEAT"); do
	conformance "$C116" "$CONF_URL" "$OUT/build-repeat" tools-call-with-progress tools-call-with-logging
done
node "$E2E_DIR/summarize.mjs" "$OUT/build-repeat" "build repeats" --quiet \
	--requested "$OUT/build-repeat.requested" || status=1

if [ "$status" -ne 0 ]; then
	echo "conformance: FAILED (details above; logs in $OUT)"
else
	echo "conformance: all gating runs passed"
fi
exit "$status"
