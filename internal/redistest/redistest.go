// Package redistest starts a real redis-server for tests, on a free
// loopback port, with no persistence. Where redis-server is missing the
// test is skipped, except under CI=true, where it fails: the shared store's
// tests are never skipped in CI (scripts/test.sh installs the package).
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kubeq-mcp/kubeq-mcp/internal/testskip"
)

// Server is a running redis-server.
type Server struct {
	Addr string // host:port
	cmd  *exec.Cmd
}

// URL is the server's redis:// URL, database db.
func (s *Server) URL(db int) string { return fmt.Sprintf("redis://%s/%d", s.Addr, db) }

// Start starts redis-server for t; it is stopped when t ends. extra are
// more arguments (for example "--requirepass", "secret").
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testskip.Skip(t, "redis-server not found: install the Debian package redis-server "+
			"(apt-get install redis-server; scripts/test.sh does)")
	}
	var last error
	for range 5 { // a free port can be taken between the check and the start
		s, err := start(t, bin, extra)
		if err == nil {
			return s
		}
		last = err
	}
	t.Fatalf("start redis-server: %v", last)
	return nil
}

func start(t testing.TB, bin string, extra []string) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	args := append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", t.TempDir(), "--logfile", ""}, extra...)
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		var seen []string
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, "Ready to accept connections") {
				ready <- nil
				for sc.Scan() { // keep the pipe drained
				}
				return
			}
			seen = append(seen, line)
		}
		ready <- fmt.Errorf("redis-server exited: %s", strings.Join(seen, "\n"))
	}()
	select {
	case err := <-ready:
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, err
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("redis-server on %s not ready in 20s", addr)
	}
	s := &Server{Addr: addr, cmd: cmd}
	t.Cleanup(s.Stop)
	return s, nil
}

// Stop stops the server; Start's cleanup calls it too.
func (s *Server) Stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}
