package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// rawStdio is the built binary over stdio, driven line by line.
type rawStdio struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout io.ReadCloser
	stderr *syncBuffer
	lines  chan map[string]json.RawMessage
}

func startRawStdio(t *testing.T, args ...string) *rawStdio {
	t.Helper()
	r := &rawStdio{t: t, stderr: &syncBuffer{}, lines: make(chan map[string]json.RawMessage, 1000)}
	r.cmd = exec.Command(kubeqMCPBinary(t), args...)
	var err error
	r.stdin, err = r.cmd.StdinPipe()
	require.NoError(t, err)
	r.stdout, err = r.cmd.StdoutPipe()
	require.NoError(t, err)
	r.cmd.Stderr = r.stderr
	require.NoError(t, r.cmd.Start())
	t.Cleanup(func() { _ = r.cmd.Process.Kill(); _ = r.cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(r.stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			var m map[string]json.RawMessage
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				r.lines <- m
			}
		}
	}()
	r.send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"elicitation":{"form":{}}},"clientInfo":{"name":"raw","version":"1"}}}`)
	r.next(func(m map[string]json.RawMessage) bool { return string(m["id"]) == "1" }, 20*time.Second)
	r.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return r
}

func (r *rawStdio) send(s string) {
	_, err := r.stdin.Write([]byte(s + "\n"))
	require.NoError(r.t, err)
}

// next returns the next message that match accepts, answering pings, or
// fails after limit.
func (r *rawStdio) next(match func(map[string]json.RawMessage) bool, limit time.Duration) map[string]json.RawMessage {
	r.t.Helper()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		select {
		case m := <-r.lines:
			if string(m["method"]) == `"ping"` {
				r.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{}}`, m["id"]))
				continue
			}
			if match(m) {
				return m
			}
		case <-timer.C:
			r.t.Fatalf("nothing matching within %s; stderr:\n%s", limit, r.stderr.String())
			return nil
		}
	}
}

func isForm(m map[string]json.RawMessage) bool { return string(m["method"]) == `"elicitation/create"` }

// gatedBackend raises a gate on every question "delete web-N".
func gatedBackend(t *testing.T, n int) *kubeqtest.Server {
	backend := kubeqtest.NewServer(kubeqtest.WithHeartbeat(20 * time.Millisecond))
	t.Cleanup(backend.Close)
	for i := range n {
		backend.Handle(fmt.Sprintf("delete web-%d", i), binScript(podGate(fmt.Sprintf("web-%d", i), "")))
	}
	return backend
}

// The client goes away with both pipes while approvals wait on it: writes
// to the closed stdout fail instead of killing the process (SIGPIPE), so
// it denies what is pending and exits cleanly.
func TestBinaryStdioBothPipesClosedAtGates(t *testing.T) {
	backend := gatedBackend(t, 2)
	r := startRawStdio(t, "--url", backend.URL, "--retry-delays", "10ms")
	for i := range 2 {
		r.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"kube_query","arguments":{"question":"delete web-%d"},"_meta":{"progressToken":"p%d"}}}`, 10+i, i, i))
		r.next(isForm, 20*time.Second)
	}
	require.NoError(t, r.stdin.Close())
	require.NoError(t, r.stdout.Close())
	done := make(chan error, 1)
	go func() { done <- r.cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			status, _ := exit.Sys().(syscall.WaitStatus)
			require.Failf(t, "kubeq-mcp did not exit cleanly", "%v (signal %v); stderr:\n%s", err, status.Signal(), r.stderr.String())
		}
		require.NoError(t, err)
	case <-time.After(60 * time.Second):
		t.Fatalf("kubeq-mcp did not exit; stderr:\n%s", r.stderr.String())
	}
	assert.Equal(t, 2, backend.Received("deny"), "both pending gates denied")
	assert.Zero(t, backend.Received("approve"))
}

// Calls waiting for a human never hold up the next call over stdio: past
// the calls a session may run, a call is refused at once as busy (mcp-go's
// default of 5 workers queued it, unseen, until an approval ended).
func TestBinaryStdioBusyIsAnsweredNotQueued(t *testing.T) {
	const perSession = 8
	backend := gatedBackend(t, perSession)
	r := startRawStdio(t, "--url", backend.URL, "--retry-delays", "10ms")
	for i := range perSession {
		r.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"kube_query","arguments":{"question":"delete web-%d"}}}`, 10+i, i))
		r.next(isForm, 20*time.Second)
	}
	r.send(`{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"kube_query","arguments":{"question":"how are the pods?"}}}`)
	// Far less than an approval's wait (minutes): answered, not queued.
	res := r.next(func(m map[string]json.RawMessage) bool { return string(m["id"]) == "99" }, 20*time.Second)
	assert.Contains(t, string(res["result"]), "busy", "refused at once as busy")
	assert.True(t, strings.Contains(string(res["result"]), `"isError":true`), string(res["result"]))
}
