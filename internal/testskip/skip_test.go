package testskip

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestSkipFailsInCI runs a test that skips in a child process twice: with
// CI=true it must fail and say why, without it it must skip.
func TestSkipFailsInCI(t *testing.T) {
	if os.Getenv("TESTSKIP_CHILD") == "1" {
		Skip(t, "child skip reason")
		return
	}
	run := func(ci string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSkipFailsInCI$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTSKIP_CHILD=1", "CI="+ci)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("true")
	if err == nil || !strings.Contains(out, "--- FAIL") || !strings.Contains(out, "may not be skipped: child skip reason") {
		t.Errorf("CI=true: a skip must fail the test; err=%v output:\n%s", err, out)
	}
	out, err = run("")
	if err != nil || !strings.Contains(out, "--- SKIP") || !strings.Contains(out, "child skip reason") {
		t.Errorf("outside CI a skip is a skip; err=%v output:\n%s", err, out)
	}
}
