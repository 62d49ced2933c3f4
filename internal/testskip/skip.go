// Package testskip is the one way a test of this repository skips. A skip
// is a check that did not run, so in CI (CI=true) it is a failure that
// says why: nothing a checkout, a missing tool or a forgotten variable
// turns off can leave CI green.
package testskip

import (
	"fmt"
	"os"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true, as .ci/run sets it).
func InCI() bool { return os.Getenv("CI") == "true" }

// Skip skips the test with reason, or fails it under CI=true.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true: this test may not be skipped: %s", reason)
	}
	t.Skip(reason)
}

// Skipf is Skip with a format.
func Skipf(t testing.TB, format string, args ...any) {
	t.Helper()
	Skip(t, fmt.Sprintf(format, args...))
}
