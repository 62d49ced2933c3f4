package bench

import (
	"fmt"
	"io"
	"os/exec"
)

// Env is what the scenarios share.
type Env struct {
	// Bin is the kubeq-mcp binary under test.
	Bin string
	// Self is the kubeq-bench binary, run as "serve" for the instrumented
	// server (the same server package with a goroutine count and CPU
	// profiling endpoint); empty disables what needs it.
	Self string
	// NodeServer is the JavaScript entry point of the Node.js reference
	// server; empty skips the Node.js baselines.
	NodeServer string
	// Stderr receives the servers' logs.
	Stderr io.Writer
	// Logf reports progress.
	Logf func(format string, args ...any)
}

func (e *Env) logf(format string, args ...any) {
	if e.Logf != nil {
		e.Logf(format, args...)
	}
}

// binArgs is the kubeq-mcp command line in front of backend, without the
// transport flags.
func (e *Env) binArgs(backend string) []string {
	return []string{e.Bin, "--url", backend, "--log-level", "warn"}
}

// stdioCmd is kubeq-mcp over stdio in front of backend.
func (e *Env) stdioCmd(backend string) *exec.Cmd {
	args := e.binArgs(backend)
	cmd := exec.Command(args[0], append(args[1:], "--transport", "stdio")...)
	cmd.Stderr = e.Stderr
	return cmd
}

// instrumentedArgs is the instrumented server's command line.
func (e *Env) instrumentedArgs(backend string) ([]string, error) {
	if e.Self == "" {
		return nil, fmt.Errorf("the instrumented server needs the kubeq-bench binary")
	}
	return []string{e.Self, "serve", "--url", backend}, nil
}
