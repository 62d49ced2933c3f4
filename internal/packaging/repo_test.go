// Package packaging checks the files that ship kubeq-mcp and wire it into clients: the example
// client configs (and docs/clients.md, which embeds them), server.json, the mcpb manifest, the
// Dockerfile and .dockerignore, the goreleaser config and the Kubernetes manifests. It is
// test-only: the checks read the files from the repository and start the real binary.
package packaging

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// repoRoot is the module root, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatalf("repo root: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repo root %s has no go.mod: %v", root, err)
	}
	return root
}

func readFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), filepath.FromSlash(rel)))
	if err != nil {
		t.Fatalf("read %s: %v", rel, err)
	}
	return string(b)
}

// readJSON parses a repository file into v, failing the test on any syntax error.
func readJSON(t *testing.T, rel string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(readFile(t, rel)), v); err != nil {
		t.Fatalf("%s is not valid JSON: %v", rel, err)
	}
}

// modulePath is the module line of go.mod.
func modulePath(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^module\s+(\S+)`).FindStringSubmatch(readFile(t, "go.mod"))
	if m == nil {
		t.Fatal("go.mod has no module line")
	}
	return m[1]
}

// knownFlags are kubeq-mcp's flags (DESIGN.md, Configuration); true marks a boolean flag,
// which takes no separate value.
var knownFlags = map[string]bool{
	"transport": false, "addr": false, "http-token": false, "allowed-origins": false,
	"url": false, "api-key": false, "ca-cert": false, "timeout": false, "model": false,
	"user-id": false, "allow-user-override": true, "retry-delays": false, "approval-timeout": false,
	"confirm-high-risk": false, "state-key": false, "audit-log": false,
	"demo": true, "version": true,
	"max-request-bytes": false, "max-sessions": false, "max-calls-per-session": false, "max-calls": false,
	"max-answer-bytes": false, "request-read-timeout": false, "idle-timeout": false, "write-timeout": false,
}

// knownEnv are the environment variables kubeq-mcp reads (DESIGN.md, Configuration).
var knownEnv = map[string]bool{
	"KUBEQ_MCP_TRANSPORT": true, "KUBEQ_MCP_ADDR": true, "KUBEQ_MCP_HTTP_TOKEN": true,
	"KUBEQ_MCP_ALLOWED_ORIGINS": true, "KUBE_Q_URL": true, "KUBE_Q_API_KEY": true,
	"KUBE_Q_CA_CERT": true, "KUBE_Q_TIMEOUT": true, "KUBE_Q_MODEL": true,
	"KUBE_Q_USER_ID": true, "KUBEQ_MCP_ALLOW_USER_OVERRIDE": true, "KUBE_Q_RETRY_DELAYS": true, "KUBEQ_MCP_APPROVAL_TIMEOUT": true,
	"KUBEQ_MCP_CONFIRM_HIGH_RISK": true, "KUBEQ_MCP_STATE_KEY": true, "KUBEQ_MCP_AUDIT_LOG": true,
	"KUBEQ_MCP_MAX_REQUEST_BYTES": true, "KUBEQ_MCP_MAX_SESSIONS": true, "KUBEQ_MCP_MAX_CALLS_PER_SESSION": true,
	"KUBEQ_MCP_MAX_CALLS": true, "KUBEQ_MCP_MAX_ANSWER_BYTES": true, "KUBEQ_MCP_REQUEST_READ_TIMEOUT": true,
	"KUBEQ_MCP_IDLE_TIMEOUT": true, "KUBEQ_MCP_WRITE_TIMEOUT": true, "KUBEQ_MCP_STORE": true,
}

// checkArgs fails for an argument list that uses a flag kubeq-mcp does not have.
func checkArgs(t *testing.T, where string, args []string) {
	t.Helper()
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			t.Errorf("%s: stray argument %q (kubeq-mcp takes flags only)", where, a)
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		isBool, ok := knownFlags[name]
		if !ok {
			t.Errorf("%s: unknown flag %q", where, a)
			continue
		}
		if !isBool && !hasValue {
			i++ // the flag's value
			if i >= len(args) {
				t.Errorf("%s: flag %q has no value", where, a)
			}
		}
	}
}

// checkCommand fails unless the command names the kubeq-mcp binary, with or without a path.
func checkCommand(t *testing.T, where, command string) {
	t.Helper()
	base := command[strings.LastIndexAny(command, `/\`)+1:]
	if base != "kubeq-mcp" && base != "kubeq-mcp.exe" {
		t.Errorf("%s: command %q does not start kubeq-mcp", where, command)
	}
}

func checkEnvNames(t *testing.T, where string, env map[string]string) {
	t.Helper()
	for k := range env {
		if !knownEnv[k] {
			t.Errorf("%s: unknown environment variable %q", where, k)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// remarshal converts v into out through JSON, so a generic value can be read as a typed one.
func remarshal(v, out any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(out)
}
