package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// LatencyResult is scenario 1: backend send → event seen, per path.
type LatencyResult struct {
	Events   int // status events the backend sent per path
	Every    time.Duration
	Baseline Dist // plain SSE reader on the backend
	HTTP     Dist // kubeq-mcp over streamable HTTP, at the go-sdk progress handler
	Stdio    Dist // kubeq-mcp over stdio, at the go-sdk progress handler
}

// Latency runs scenario 1: the backend sends events stamped status events,
// one every interval; each path measures stamp → arrival.
func Latency(ctx context.Context, env *Env, events int, every time.Duration) (LatencyResult, error) {
	res := LatencyResult{Events: events, Every: every}
	be, err := StartBackend()
	if err != nil {
		return res, err
	}
	defer be.Close()
	question := StampedQuestion(events, every)
	limit := time.Duration(events)*every + 30*time.Second
	ctx, cancel := context.WithTimeout(ctx, limit*3)
	defer cancel()

	env.logf("latency: baseline reader, %d events every %s", events, every)
	var base []time.Duration
	_, err = ReadDirect(ctx, LoopbackHTTPClient(4), be.URL, "bench-latency", question, func(msg string, at time.Time) {
		if d, ok := StampAge(msg, at); ok {
			base = append(base, d)
		}
	})
	if err != nil {
		return res, err
	}
	res.Baseline = Summarize(base)

	env.logf("latency: kubeq-mcp over HTTP")
	p, err := StartHTTPServer(ctx, env.binArgs(be.URL), env.Stderr)
	if err != nil {
		return res, err
	}
	rec := &stampRecorder{}
	cs, err := ConnectHTTP(ctx, NewClient(rec.observe), p.MCPURL(), LoopbackHTTPClient(4))
	if err == nil {
		err = rec.call(ctx, cs, question, events)
		_ = cs.Close()
	}
	p.Stop()
	if err != nil {
		return res, fmt.Errorf("latency over HTTP: %w", err)
	}
	res.HTTP = Summarize(rec.ages)

	env.logf("latency: kubeq-mcp over stdio")
	rec = &stampRecorder{}
	cs, err = ConnectStdio(ctx, NewClient(rec.observe), env.stdioCmd(be.URL))
	if err != nil {
		return res, err
	}
	err = rec.call(ctx, cs, question, events)
	_ = cs.Close()
	if err != nil {
		return res, fmt.Errorf("latency over stdio: %w", err)
	}
	res.Stdio = Summarize(rec.ages)
	return res, nil
}

// stampRecorder collects the age of every stamped progress message.
type stampRecorder struct {
	mu   sync.Mutex
	ages []time.Duration
}

func (r *stampRecorder) observe(_ any, msg string, at time.Time) {
	if d, ok := StampAge(msg, at); ok {
		r.mu.Lock()
		r.ages = append(r.ages, d)
		r.mu.Unlock()
	}
}

// call runs the stamped turn and checks every event arrived. Handlers run
// on the client's goroutine, so the last ones may land just after the
// result: wait for them, bounded.
func (r *stampRecorder) call(ctx context.Context, cs *sdk.ClientSession, question string, events int) error {
	if _, err := Query(ctx, cs, question, "latency"); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		r.mu.Lock()
		n := len(r.ages)
		r.mu.Unlock()
		if n >= events {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d stamped progress notifications arrived", n, events)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
