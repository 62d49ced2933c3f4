package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kubeq-mcp/kubeq-mcp/internal/fakebackend"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// ServeBackend runs the scenario-3 fake backend (kubeqtest with the
// concurrent turns) in this process, prints its URL on stdout and serves
// until ctx ends. The driver runs it as a separate process so that the
// CPU time of the backend, kubeq-mcp and the clients can be told apart.
//
// With --diagnostic it serves the e2e diagnostic turn instead (the
// CPU-per-call scenario), with the request log at GET /_log.
func ServeBackend(ctx context.Context, out io.Writer, args []string) error {
	if slices.Contains(args, "--diagnostic") {
		fake := kubeqtest.NewServer()
		defer fake.Close()
		fakebackend.Install(fake)
		hs := httptest.NewServer(fakebackend.Handler(fake))
		defer hs.Close()
		if _, err := fmt.Fprintln(out, hs.URL); err != nil {
			return fmt.Errorf("backend: %w", err)
		}
		<-ctx.Done()
		return nil
	}
	be := concurrentBackend()
	defer be.Close()
	if _, err := fmt.Fprintln(out, be.URL); err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	<-ctx.Done()
	return nil
}

// startBackendProc starts "kubeq-bench backend" and reads its URL.
func startBackendProc(ctx context.Context, env *Env, args ...string) (*Proc, string, error) {
	cmd := exec.Command(env.Self, append([]string{"backend"}, args...)...)
	cmd.Stderr = env.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", fmt.Errorf("backend process: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("backend process: %w", err)
	}
	p := &Proc{Cmd: cmd, done: make(chan error, 1)}
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(l)
		_, _ = io.Copy(io.Discard, stdout)
		p.done <- cmd.Wait()
	}()
	select {
	case u := <-line:
		if !strings.HasPrefix(u, "http://127.0.0.1:") {
			p.Stop()
			return nil, "", fmt.Errorf("backend process printed %q, not its URL", u)
		}
		return p, u, nil
	case <-time.After(10 * time.Second):
		p.Stop()
		return nil, "", fmt.Errorf("backend process: no URL after 10s")
	case <-ctx.Done():
		p.Stop()
		return nil, "", ctx.Err()
	}
}

// CPUTime is the CPU time a process has used so far: the sum over its
// threads of the nanoseconds they ran (/proc/<pid>/task/*/schedstat),
// or, where the kernel keeps no schedstat, user+system time from
// /proc/<pid>/stat, counted in 10 ms ticks (too coarse for a few hundred
// calls of a few tenths of a millisecond). Threads that have exited are
// not in the sum; Go's threads live as long as the process.
func CPUTime(pid int) (time.Duration, error) {
	if d, err := schedCPU(pid); err == nil {
		return d, nil
	}
	return statCPU(pid)
}

// schedCPU sums the run time of pid's threads from schedstat.
func schedCPU(pid int) (time.Duration, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // the thread ended while being listed
		}
		if err != nil {
			return 0, err
		}
		f := strings.Fields(string(b))
		if len(f) < 1 {
			return 0, fmt.Errorf("cpu time of %d: short schedstat line", pid)
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cpu time of %d: %w", pid, err)
		}
		sum += ns
	}
	return time.Duration(sum), nil
}

// statCPU is user+system time from /proc/<pid>/stat, in clock ticks.
func statCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu time of %d: %w", pid, err)
	}
	// Fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime 14, stime 15.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("cpu time of %d: short stat line", pid)
	}
	var utime, stime int64
	if _, err := fmt.Sscan(f[11], &utime); err != nil {
		return 0, fmt.Errorf("cpu time of %d: %w", pid, err)
	}
	if _, err := fmt.Sscan(f[12], &stime); err != nil {
		return 0, fmt.Errorf("cpu time of %d: %w", pid, err)
	}
	const clockTick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(utime+stime) * clockTick, nil
}

// selfCPU is the CPU time this process has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter reads the CPU time of a set of processes (pid 0: this one).
type cpuMeter struct {
	pids  []int
	start []time.Duration
}

func meterCPU(pids ...int) *cpuMeter {
	m := &cpuMeter{pids: pids}
	m.start = m.read()
	return m
}

func (m *cpuMeter) read() []time.Duration {
	out := make([]time.Duration, len(m.pids))
	for i, pid := range m.pids {
		if pid == 0 {
			out[i] = selfCPU()
		} else {
			out[i], _ = CPUTime(pid)
		}
	}
	return out
}

// used returns the CPU time each process used since meterCPU.
func (m *cpuMeter) used() []time.Duration {
	now := m.read()
	for i := range now {
		now[i] -= m.start[i]
	}
	return now
}
