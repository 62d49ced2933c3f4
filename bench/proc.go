package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Proc is a server process the driver started.
type Proc struct {
	Cmd  *exec.Cmd
	Addr string // host:port for HTTP servers
	done chan error
}

// FreeAddr returns a loopback address with a port that was free a moment
// ago.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// StartHTTPServer runs argv (a kubeq-mcp-compatible command line to which
// --transport http --addr are appended) and waits until /healthz answers.
func StartHTTPServer(ctx context.Context, argv []string, stderr io.Writer) (*Proc, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], append(argv[1:], "--transport", "http", "--addr", addr)...)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	p := &Proc{Cmd: cmd, Addr: addr, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	if err := p.waitHealthy(ctx, 10*time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

func (p *Proc) waitHealthy(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	hc := &http.Client{Timeout: time.Second}
	for {
		resp, err := hc.Get("http://" + p.Addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-p.done:
			return fmt.Errorf("%s exited before serving: %v", p.Cmd.Path, err)
		case <-ctx.Done():
			return fmt.Errorf("%s: /healthz not answering after %s", p.Cmd.Path, limit)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// MCPURL is the streamable HTTP endpoint of an HTTP server.
func (p *Proc) MCPURL() string { return "http://" + p.Addr + "/mcp" }

// Stop sends SIGTERM, then kills after 5 s.
func (p *Proc) Stop() {
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-p.done
	}
}

// Memory is what /proc/<pid>/status says of a process's memory, in bytes.
type Memory struct {
	RSS, HWM int64 // VmRSS now, VmHWM (peak RSS)
	Threads  int
}

// ReadMemory reads /proc/<pid>/status.
func ReadMemory(pid int) (Memory, error) {
	var m Memory
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return m, fmt.Errorf("read memory of %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(val)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch key {
		case "VmRSS":
			m.RSS = n << 10
		case "VmHWM":
			m.HWM = n << 10
		case "Threads":
			m.Threads = int(n)
		}
	}
	if m.RSS == 0 {
		return m, errors.New("read memory: no VmRSS in /proc status")
	}
	return m, sc.Err()
}
