package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// procMem is a process's resident memory from /proc/PID/status.
type procMem struct {
	RSS int64 // VmRSS: resident now
	HWM int64 // VmHWM: the peak since start or the last resetPeak
}

func (m procMem) String() string {
	return fmt.Sprintf("VmRSS %.1f MiB, VmHWM %.1f MiB", float64(m.RSS)/(1<<20), float64(m.HWM)/(1<<20))
}

func readProcMem(t *testing.T, pid int) procMem {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	defer f.Close()
	var m procMem
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		require.NoError(t, err, sc.Text())
		if name == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.HWM = kb << 10
		}
	}
	require.NoError(t, sc.Err())
	require.NotZero(t, m.RSS, "no VmRSS for pid %d", pid)
	return m
}

// resetPeak sets VmHWM back to VmRSS (Linux ≥ 4.0), so that the next
// reading's peak is the peak of what happened in between.
func resetPeak(t *testing.T, pid int) {
	t.Helper()
	require.NoError(t, os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0))
}
