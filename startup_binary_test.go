package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startStdio starts bin over stdio with stdin and waits until its stderr
// shows want (or the process exits), then ends it by closing stdin.
func startStdio(t *testing.T, bin string, stdin *os.File, env []string, want string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = stdin
	var stderr syncBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), want) },
		20*time.Second, 10*time.Millisecond, "stderr so far:\n%s", stderr.String())
	return stderr.String()
}

// --demo serves a simulated backend whatever --url and KUBE_Q_API_KEY say:
// it must say it ignores them, and never log the key.
func TestBinaryDemoSaysWhatItIgnores(t *testing.T) {
	bin := kubeqMCPBinary(t)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	t.Cleanup(func() { r.Close(); w.Close() })
	out := startStdio(t, bin, r, []string{"KUBE_Q_API_KEY=sk-demo-ignored-key-7", "KUBEQ_MCP_DEMO_PACE=0"},
		"kubeq-mcp starting", "--demo", "--url", "http://kubeintellect.example:8000")
	assert.Contains(t, out, "--demo ignores --url/KUBE_Q_URL and --api-key/KUBE_Q_API_KEY")
	assert.NotContains(t, out, "sk-demo-ignored-key-7")
	assert.NotContains(t, out, "stdin is a terminal", "a pipe is not a terminal")

	// Without either set there is nothing to say.
	r2, w2, err := os.Pipe()
	require.NoError(t, err)
	t.Cleanup(func() { r2.Close(); w2.Close() })
	out = startStdio(t, bin, r2, []string{"KUBE_Q_URL=", "KUBE_Q_API_KEY=", "KUBEQ_MCP_DEMO_PACE=0"}, "kubeq-mcp starting", "--demo")
	assert.NotContains(t, out, "--demo ignores")
}

// Started by hand in a terminal, the binary says what it is and how to try
// it; with /dev/null as stdin (a service, a test) it says nothing of it.
func TestBinaryTerminalHint(t *testing.T) {
	bin := kubeqMCPBinary(t)
	t.Run("terminal", func(t *testing.T) {
		tty := openPTY(t)
		out := startStdio(t, bin, tty, nil, "stdin is a terminal", "--demo")
		assert.Contains(t, out, "npx @modelcontextprotocol/inspector kubeq-mcp --demo")
		assert.Contains(t, out, "docs/clients.md")
	})
	t.Run("dev null", func(t *testing.T) {
		null, err := os.Open(os.DevNull)
		require.NoError(t, err)
		t.Cleanup(func() { null.Close() })
		cmd := exec.Command(bin, "--demo")
		cmd.Stdin = null // EOF at once: the server exits
		cmd.Env = append(os.Environ(), "KUBEQ_MCP_DEMO_PACE=0")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), "kubeq-mcp starting")
		assert.NotContains(t, string(out), "stdin is a terminal")
	})
}

// A bad KUBE_Q_URL from the environment is refused at start-up as the flag
// is, in one line.
func TestBinaryRefusesBadURLFromEnvironment(t *testing.T) {
	bin := kubeqMCPBinary(t)
	for env, want := range map[string]string{
		"KUBE_Q_URL=http://localhost:8000 ":    "contains white space",
		"KUBE_Q_URL=http://localhost:70000/":   "port 70000",
		"KUBE_Q_URL=http://u:s3cret@h:99999/x": "port 99999",
	} {
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), env)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, env)
		assert.Equal(t, 2, exit.ExitCode(), env)
		assert.Contains(t, string(out), want, env)
		assert.NotContains(t, string(out), "s3cret", "a password in the URL is never printed")
		assert.Equal(t, 1, strings.Count(strings.TrimSpace(string(out)), "\n")+1, "one line: %s", out)
	}
}

// '*' with a token starts, and warns that the Origin check is off.
func TestBinaryEveryOriginWithTokenWarns(t *testing.T) {
	bin := kubeqMCPBinary(t)
	stderr := &syncBuffer{}
	startHTTPBinary(t, bin, stderr, "--demo", "--allowed-origins", "*", "--http-token", "a-long-enough-token-123")
	assert.Contains(t, stderr.String(), "--allowed-origins '*': the Origin check is off")
}
