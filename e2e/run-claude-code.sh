#!/usr/bin/env bash
# The real Claude Code CLI (@anthropic-ai/claude-code, pinned in package-lock.json) takes every
# snippet of docs/clients.md it can take, verbatim but for the binary's path and the port, in a
# throw-away HOME: the `claude mcp add` lines of docs/examples/claude-code.sh, the generic
# docs/examples/streamable-http.json as the project's .mcp.json, and the Claude Desktop entries
# through `claude mcp add-json`. `claude mcp list` must then show each one "✔ Connected".
# It also checks what a user who gets it wrong sees: the `--env` ordering error that
# docs/clients.md quotes, and kubeq-mcp's own words when the token is missing or wrong.
# Runs offline (`claude mcp list` only starts and connects to the servers). Linux x86-64 only, as
# the rest of e2e/. Exit 1 on any failed check.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

npm_install
# --ignore-scripts leaves the package's bin/claude.exe a placeholder; its postinstall would copy
# this platform package's binary there.
CLAUDE="$E2E_DIR/node_modules/@anthropic-ai/claude-code-linux-x64/claude"
if [ ! -x "$CLAUDE" ]; then
	echo "e2e: no Claude Code binary at $CLAUDE" >&2
	exit 1
fi
mkdir -p "$E2E_TMP/bin"
(cd "$REPO_DIR" && go build -o "$E2E_TMP/bin/kubeq-mcp" .)
BIN="$E2E_TMP/bin/kubeq-mcp"
EXAMPLES="$REPO_DIR/docs/examples"
PLACEHOLDER="/Users/you/go/bin/kubeq-mcp"

# A throw-away HOME and project; nothing of the developer's Claude Code setup is read or touched.
export HOME="$E2E_TMP/home"
PROJECT="$E2E_TMP/project"
mkdir -p "$HOME" "$PROJECT"
cd "$PROJECT"
export DISABLE_AUTOUPDATER=1 DISABLE_TELEMETRY=1 DISABLE_ERROR_REPORTING=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1
unset KUBE_Q_URL KUBE_Q_API_KEY ANTHROPIC_API_KEY
export KUBEQ_MCP_DEMO_PACE=0

# The server the HTTP snippets connect to, with a token from the environment as the docs say.
export KUBEQ_MCP_HTTP_TOKEN="e2e-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
port="$(free_port)"
start_bg product "$BIN" --transport http --addr "127.0.0.1:$port" --demo --log-level error
wait_http "http://127.0.0.1:$port/healthz"
URL="http://127.0.0.1:$port/mcp"

status=0
fail() {
	echo "FAIL: $*"
	status=1
}
ok() { echo "ok:   $*"; }

# snippet LINE: the docs' line with the placeholder path and port replaced.
snippet() {
	local line="$1"
	line="${line//$PLACEHOLDER/$BIN}"
	echo "${line//http:\/\/127.0.0.1:8080\/mcp/$URL}"
}

claude() { "$CLAUDE" "$@"; }

expected=()
echo "== claude mcp add: docs/examples/claude-code.sh"
while IFS= read -r line; do
	case "$line" in "" | "#"*) continue ;; esac
	name="$(echo "$line" | awk '{print $4}')"
	# eval: the line's own quoting applies, as in the user's shell (the single-quoted
	# ${KUBEQ_MCP_HTTP_TOKEN} reaches Claude Code unexpanded).
	if out="$(eval "$(snippet "$line")" 2>&1)"; then
		expected+=("$name")
	else
		fail "claude mcp add $name: $out"
	fi
done <"$EXAMPLES/claude-code.sh"

echo "== .mcp.json: docs/examples/streamable-http.json"
# Renamed, since a local server of the same name would hide it; approved as a user would.
node -e '
const fs = require("fs");
const [src, url] = process.argv.slice(1);
const doc = JSON.parse(fs.readFileSync(src, "utf8"));
const out = {mcpServers: {}};
for (const [id, e] of Object.entries(doc.mcpServers)) out.mcpServers[id + "-mcpjson"] = {...e, url: e.url.replace("http://127.0.0.1:8080/mcp", url)};
fs.writeFileSync(".mcp.json", JSON.stringify(out, null, 2));
console.log(Object.keys(out.mcpServers).join("\n"));
' "$EXAMPLES/streamable-http.json" "$URL" >"$E2E_TMP/mcpjson.names"
while IFS= read -r name; do expected+=("$name"); done <"$E2E_TMP/mcpjson.names"
node -e '
const fs = require("fs");
const [file, project, names] = process.argv.slice(1);
const cfg = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")) : {};
cfg.projects ??= {};
cfg.projects[project] = {...(cfg.projects[project] || {}), hasTrustDialogAccepted: true, enabledMcpjsonServers: names.split("\n").filter(Boolean)};
fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
' "$HOME/.claude.json" "$PROJECT" "$(cat "$E2E_TMP/mcpjson.names")"

echo "== claude mcp add-json: the Claude Desktop entries"
for f in claude-desktop.json claude-desktop-demo.json; do
	while IFS=$'\t' read -r id json; do
		name="desktop-$id"
		if out="$(claude mcp add-json "$name" "$json" 2>&1)"; then
			expected+=("$name")
		else
			fail "claude mcp add-json $name ($f): $out"
		fi
	done < <(node -e '
const fs = require("fs");
const [src, ph, bin] = process.argv.slice(1);
for (const [id, e] of Object.entries(JSON.parse(fs.readFileSync(src, "utf8")).mcpServers))
  console.log(id + "\t" + JSON.stringify({...e, command: e.command.replace(ph, bin)}));
' "$EXAMPLES/$f" "$PLACEHOLDER" "$BIN")
done

echo "== claude mcp list"
list="$(timeout 120 "$CLAUDE" mcp list 2>&1)" || fail "claude mcp list exited non-zero"
echo "$list"
for name in "${expected[@]}"; do
	if echo "$list" | grep -qE "^$name: .* - ✔ Connected$"; then
		ok "$name: Connected"
	else
		fail "$name is not Connected"
	fi
done
if [ "${#expected[@]}" -lt 6 ]; then
	fail "only ${#expected[@]} snippets were added; want 6 (3 commands, .mcp.json, 2 Claude Desktop entries)"
fi

echo "== what a user who gets it wrong sees"
# The docs quote this error for --env written before the name.
out="$("$CLAUDE" mcp add --env KUBE_Q_URL=http://localhost:8000 kubeq-env-first -- "$BIN" 2>&1)" && fail "--env before the name was accepted"
if [ "$out" = "error: missing required argument 'commandOrUrl'" ]; then
	ok "--env before the name: $out"
else
	fail "--env before the name said: $out (docs/clients.md quotes error: missing required argument 'commandOrUrl')"
fi
# No header at all: the client tries OAuth, and shows the 404 body of the registration endpoint.
"$CLAUDE" mcp add kubeq-no-token --transport http "$URL" >/dev/null
# The snippet's header in a shell where the variable holds a wrong token.
list="$(KUBEQ_MCP_HTTP_TOKEN=wrong-token-0123456789 timeout 120 "$CLAUDE" mcp list 2>&1)" || true
line="$(echo "$list" | grep '^kubeq-no-token: ' || true)"
if echo "$line" | grep -q 'Dynamic Client Registration rejected (HTTP 404): .*send the token configured with --http-token'; then
	ok "no token: ${line#*— }"
else
	fail "no token: $line"
fi
line="$(echo "$list" | grep '^kubeq-http: ' || true)"
if echo "$line" | grep -q 'HTTP 401.*send the token configured with --http-token (KUBEQ_MCP_HTTP_TOKEN)'; then
	ok "wrong token: ${line#*— }"
else
	fail "wrong token: $line"
fi
exit "$status"
