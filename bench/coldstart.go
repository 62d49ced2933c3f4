package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"time"
)

// ColdStartResult is scenario 4: process start → initialize answered over
// stdio.
type ColdStartResult struct {
	Runs     int
	KubeqMCP Dist
	Node     Dist // the Node.js reference server; zero when not run
}

const initializeLine = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"` + ProtocolVersion +
	`","capabilities":{},"clientInfo":{"name":"kubeq-bench","version":"1"}}}` + "\n"

// ColdStart runs scenario 4, alternating kubeq-mcp and the Node.js server
// so both see the same machine state.
func ColdStart(ctx context.Context, env *Env, runs int) (ColdStartResult, error) {
	res := ColdStartResult{Runs: runs}
	goArgv := append(env.binArgs("http://127.0.0.1:9"), "--transport", "stdio")
	var goTimes, nodeTimes []time.Duration
	env.logf("cold start: %d runs each", runs)
	for range runs {
		d, err := timeInitialize(ctx, goArgv, nil)
		if err != nil {
			return res, err
		}
		goTimes = append(goTimes, d)
		if env.NodeServer != "" {
			d, err := timeInitialize(ctx, []string{"node", env.NodeServer, "stdio"}, nil)
			if err != nil {
				return res, err
			}
			nodeTimes = append(nodeTimes, d)
		}
	}
	res.KubeqMCP = Summarize(goTimes)
	res.Node = Summarize(nodeTimes)
	return res, nil
}

// timeInitialize starts argv, writes initialize on its stdin and times
// until the answer's line is read from its stdout. afterInit, when set,
// runs with the process still up (it is then stopped by closing stdin).
func timeInitialize(ctx context.Context, argv []string, afterInit func(pid int, stdin io.Writer) error) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, fmt.Errorf("cold start: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, fmt.Errorf("cold start: %w", err)
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("cold start: start %s: %w", argv[0], err)
	}
	defer func() {
		_ = stdin.Close()
		waited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-waited
		}
	}()
	if _, err := io.WriteString(stdin, initializeLine); err != nil {
		return 0, fmt.Errorf("cold start: write initialize: %w", err)
	}
	br := bufio.NewReader(stdout)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return 0, fmt.Errorf("cold start: %s: no initialize answer: %w", argv[0], err)
		}
		if bytes.Contains(line, []byte(`"id":1`)) && bytes.Contains(line, []byte(`"result"`)) {
			break
		}
	}
	d := time.Since(t0)
	if afterInit != nil {
		// Keep stdout drained so the server never blocks on it.
		go func() { _, _ = io.Copy(io.Discard, br) }()
		if err := afterInit(cmd.Process.Pid, stdin); err != nil {
			return d, err
		}
	}
	return d, nil
}
