package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// ThroughputResult is scenario 2: one turn of Frames token frames, time to
// the whole answer, per path.
type ThroughputResult struct {
	Frames   int
	Bytes    int64         // size of the SSE stream
	Baseline time.Duration // the plain reader: bufio lines, json.Unmarshal per frame
	Drain    time.Duration // lines read, nothing decoded: the backend's and socket's floor
	HTTP     time.Duration
	Stdio    time.Duration
	// Progress notifications the client saw (coalescing bounds them).
	HTTPProgress, StdioProgress int64
}

// Throughput runs scenario 2. Each path must return the exact answer.
func Throughput(ctx context.Context, env *Env, frames int, profile string) (ThroughputResult, error) {
	res := ThroughputResult{Frames: frames}
	be, err := StartBackend()
	if err != nil {
		return res, err
	}
	defer be.Close()
	question := FloodQuestion(frames)
	want := FloodAnswer(frames)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()

	env.logf("throughput: baseline reader, %d frames", frames)
	start := time.Now()
	turn, err := ReadDirect(ctx, LoopbackHTTPClient(4), be.URL, "bench-flood", question, nil)
	res.Baseline = time.Since(start)
	if err != nil {
		return res, err
	}
	if turn.Answer != want {
		return res, fmt.Errorf("baseline answer: %d bytes, want %d", len(turn.Answer), len(want))
	}
	res.Bytes = turn.Bytes
	start = time.Now()
	if _, err := DrainDirect(ctx, LoopbackHTTPClient(4), be.URL, "bench-drain", question); err != nil {
		return res, err
	}
	res.Drain = time.Since(start)

	env.logf("throughput: kubeq-mcp over HTTP")
	argv := env.binArgs(be.URL)
	if profile != "" {
		if argv, err = env.instrumentedArgs(be.URL); err != nil {
			return res, err
		}
	}
	p, err := StartHTTPServer(ctx, argv, env.Stderr)
	if err != nil {
		return res, err
	}
	var seen atomic.Int64
	count := func(any, string, time.Time) { seen.Add(1) }
	cs, err := ConnectHTTP(ctx, NewClient(count), p.MCPURL(), LoopbackHTTPClient(4))
	if err == nil {
		if profile != "" {
			err = startProfile(ctx, p, profile)
		}
	}
	if err == nil {
		start = time.Now()
		var got string
		got, err = Query(ctx, cs, question, "flood")
		res.HTTP = time.Since(start)
		if err == nil && got != want {
			err = fmt.Errorf("answer: %d bytes, want %d", len(got), len(want))
		}
		if profile != "" {
			stopProfile(ctx, p)
		}
		_ = cs.Close()
	}
	p.Stop()
	if err != nil {
		return res, fmt.Errorf("throughput over HTTP: %w", err)
	}
	res.HTTPProgress = seen.Load()

	env.logf("throughput: kubeq-mcp over stdio")
	seen.Store(0)
	cs, err = ConnectStdio(ctx, NewClient(count), env.stdioCmd(be.URL))
	if err != nil {
		return res, err
	}
	start = time.Now()
	got, err := Query(ctx, cs, question, "flood")
	res.Stdio = time.Since(start)
	_ = cs.Close()
	if err == nil && got != want {
		err = fmt.Errorf("answer: %d bytes, want %d", len(got), len(want))
	}
	if err != nil {
		return res, fmt.Errorf("throughput over stdio: %w", err)
	}
	res.StdioProgress = seen.Load()
	return res, nil
}
