package page

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Opener shows a page's URL to the human, usually in their browser.
type Opener func(ctx context.Context, url string) error

// openerGrace is how long an opener is watched for a quick failure (a
// missing browser); one still running after it is left to run.
const openerGrace = 3 * time.Second

// ErrNoOpener is returned by ParseOpener for "none": no page is offered.
var ErrNoOpener = errors.New("the approval page is turned off")

// ParseOpener reads --approval-browser: "" is the OS opener, "none" turns
// the page off (ErrNoOpener), anything else is a command split on spaces,
// with no shell, that gets the URL as its last argument.
func ParseOpener(spec string) (Opener, error) {
	spec = strings.TrimSpace(spec)
	switch {
	case spec == "":
		return CommandOpener(osOpener(runtime.GOOS)), nil
	case strings.EqualFold(spec, "none"):
		return nil, ErrNoOpener
	}
	return CommandOpener(strings.Fields(spec)), nil
}

// osOpener is the command that opens a URL in the user's browser.
func osOpener(goos string) []string {
	switch goos {
	case "darwin":
		return []string{"open"}
	case "windows":
		return []string{"rundll32", "url.dll,FileProtocolHandler"}
	default:
		return []string{"xdg-open"}
	}
}

// CommandOpener runs argv with the URL appended. Its standard streams are
// closed (stdout is the MCP transport in stdio mode, and the URL must not
// reach any log), and its errors never name the URL.
func CommandOpener(argv []string) Opener {
	return func(ctx context.Context, url string) error {
		if len(argv) == 0 {
			return errors.New("no approval browser command")
		}
		cmd := exec.Command(argv[0], append(argv[1:len(argv):len(argv)], url)...)
		cmd.Env = withoutSecrets(os.Environ())
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting %s: %w", argv[0], errors.Unwrap(err))
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }() // reaps it, however long it runs
		timer := time.NewTimer(openerGrace)
		defer timer.Stop()
		select {
		case err := <-exited:
			if err != nil {
				return fmt.Errorf("%s failed: %s", argv[0], exitText(err))
			}
			return nil
		case <-timer.C:
			return nil // still running: a browser that stays in the foreground
		case <-ctx.Done():
			return nil // it was started; whether it worked is the human's to see
		}
	}
}

// SecretEnv names kubeq-mcp's secret variables, which the opener's command
// does not get: a browser has no use for them, and hands its environment on
// to everything it starts. A test of package main keeps it in step with
// config.go's secret flags.
func SecretEnv() []string {
	return []string{"KUBE_Q_API_KEY", "KUBEQ_MCP_HTTP_TOKEN", "KUBEQ_MCP_STATE_KEY", "KUBEQ_MCP_STORE"}
}

// withoutSecrets is env less the secret variables.
func withoutSecrets(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(SecretEnv(), name) {
			out = append(out, kv)
		}
	}
	return out
}

// exitText describes how a command ended without quoting its arguments.
func exitText(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ProcessState.String()
	}
	return "could not be waited for"
}
