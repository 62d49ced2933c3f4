package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scripts/test.sh is what CI runs on a fresh machine. These tests run it
// with a PATH that holds only a shell, the few tools it needs before its
// first `go` command, and a fake apt-get that records its arguments. With
// no go on that PATH the script stops at `go vet`, so it never runs the
// suite from inside the suite.

// testScriptEnv is a PATH directory with bash, the tools test.sh needs
// before go, and a fake apt-get writing its arguments to the returned log.
func testScriptEnv(t *testing.T, extra ...string) (dir, aptLog string) {
	t.Helper()
	dir = t.TempDir()
	for _, tool := range append([]string{"bash", "dirname", "id", "env"}, extra...) {
		p, err := exec.LookPath(tool)
		require.NoError(t, err, tool)
		require.NoError(t, os.Symlink(p, filepath.Join(dir, tool)))
	}
	aptLog = filepath.Join(t.TempDir(), "apt-get.log")
	fake := "#!" + filepath.Join(dir, "bash") + "\necho \"$*\" >> " + aptLog + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "apt-get"), []byte(fake), 0o755))
	return dir, aptLog
}

func runTestScript(t *testing.T, path string, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(path, "bash"), "scripts/test.sh")
	cmd.Env = append([]string{"PATH=" + path, "HOME=" + t.TempDir()}, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func aptCalls(t *testing.T, log string) string {
	b, err := os.ReadFile(log)
	if os.IsNotExist(err) {
		return ""
	}
	require.NoError(t, err)
	return string(b)
}

// The browser tests drive a real Chromium and the ledger's tests a real
// redis-server, and fail under CI=true without them, so on a fresh machine
// the script installs them with apt-get.
func TestTestScriptInstallsChromium(t *testing.T) {
	for _, ci := range []string{"true", ""} {
		path, log := testScriptEnv(t)
		out, err := runTestScript(t, path, "CI="+ci)
		require.Error(t, err, "no go on PATH: the script stops at go vet\n%s", out)
		calls := aptCalls(t, log)
		assert.Contains(t, calls, "update", "CI=%q: %s", ci, out)
		assert.Regexp(t, `(?m)^install .*\bchromium\b`, calls, "CI=%q: %s", ci, out)
		assert.Regexp(t, `(?m)^install .*\bredis-server\b`, calls, "CI=%q: %s", ci, out)
	}

	// With a Chromium on PATH only redis-server is installed.
	path, log := testScriptEnv(t)
	require.NoError(t, os.Symlink(filepath.Join(path, "bash"), filepath.Join(path, "chromium")))
	out, _ := runTestScript(t, path, "CI=true")
	assert.Regexp(t, `(?m)^install -y -qq redis-server$`, aptCalls(t, log), out)

	// With both on PATH there is nothing to install.
	path, log = testScriptEnv(t)
	require.NoError(t, os.Symlink(filepath.Join(path, "bash"), filepath.Join(path, "chromium")))
	require.NoError(t, os.Symlink(filepath.Join(path, "bash"), filepath.Join(path, "redis-server")))
	out, _ = runTestScript(t, path, "CI=true")
	assert.Empty(t, aptCalls(t, log), out)
}

// Knobs that shrink a check (fewer random gates, fewer conformance
// repeats, fewer progress calls) are refused under CI=true before anything
// runs, like the ones that excuse failures.
func TestTestScriptRefusesLooseningKnobsInCI(t *testing.T) {
	for _, knob := range []string{"KUBEQ_RANDOM_GATES=5", "KUBEQ_E2E_REPEAT=1", "KUBEQ_E2E_CALLS=10",
		"KUBEQ_E2E_PROGRESS_XFAIL=stdio/2025", "UPDATE_GOLDEN=1"} {
		path, log := testScriptEnv(t)
		out, err := runTestScript(t, path, "CI=true", knob)
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "%s: %s", knob, out)
		assert.Equal(t, 1, exit.ExitCode(), "%s: %s", knob, out)
		name, _, _ := strings.Cut(knob, "=")
		assert.Contains(t, out, name+" is set; CI refuses to run with it", knob)
		assert.Empty(t, aptCalls(t, log), "%s: refused before anything runs", knob)
	}
}

// A count knob raised above its default tightens its check: CI takes it.
func TestTestScriptTakesRaisedCountsInCI(t *testing.T) {
	for _, knob := range []string{"KUBEQ_RANDOM_GATES=5000", "KUBEQ_E2E_REPEAT=20", "KUBEQ_E2E_REPEAT=10"} {
		path, _ := testScriptEnv(t)
		out, err := runTestScript(t, path, "CI=true", "KUBEQ_CHROMIUM=/usr/bin/true", knob)
		require.Error(t, err, "no go on PATH: the script stops at go vet\n%s", out)
		assert.NotContains(t, out, "CI refuses", knob)
		assert.Contains(t, out, "== go vet", "%s: the script went on: %s", knob, out)
	}
}
