package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// SessionsResult is the many-sessions scenario: many initialized 2025-era
// sessions open at once over streamable HTTP, with calls in flight among
// them, on the instrumented server (the binary's server package, which can
// report its goroutines).
type SessionsResult struct {
	Sessions, Calls        int
	OK                     int    // answers byte-exact with every progress before the result
	FirstError             string // the first failure, if any
	ProgressBefore, After  int64  // progress notifications before and after their call's result, on the wire
	CPUPerCall             time.Duration
	RSSIdle, RSSOpen, Peak int64
	GoroutinesIdle         int
	GoroutinesAfter        int
	FDsIdle, FDsAfter      int
	Wall                   time.Duration
}

// ManySessions opens sessions sessions, then makes calls kube_query calls at
// once, spread over them, then closes every session and waits for the
// server's goroutines and file descriptors to come back.
func ManySessions(ctx context.Context, env *Env, sessions, calls int) (SessionsResult, error) {
	res := SessionsResult{Sessions: sessions, Calls: calls}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	bp, backendURL, err := startBackendProc(ctx, env)
	if err != nil {
		return res, err
	}
	defer bp.Stop()
	argv, err := env.instrumentedArgs(backendURL)
	if err != nil {
		return res, err
	}
	p, err := StartHTTPServer(ctx, argv, env.Stderr)
	if err != nil {
		return res, err
	}
	defer p.Stop()
	pid := p.Cmd.Process.Pid
	time.Sleep(200 * time.Millisecond)
	if res.GoroutinesIdle, err = Goroutines(ctx, p); err != nil {
		return res, err
	}
	res.FDsIdle = countFDs(pid)
	if m, err := ReadMemory(pid); err == nil {
		res.RSSIdle = m.RSS
	}

	wire := &callWire{}
	tr := &http.Transport{MaxIdleConns: calls + 64, MaxIdleConnsPerHost: calls + 64, IdleConnTimeout: time.Minute}
	hc := &http.Client{Transport: wire.wrap(tr)}
	client := NewClient(nil)
	env.logf("sessions: opening %d sessions", sessions)
	css := make([]*sdk.ClientSession, sessions)
	if err := parallel(sessions, 64, func(i int) error {
		cs, err := ConnectHTTP(ctx, client, p.MCPURL(), hc)
		css[i] = cs
		return err
	}); err != nil {
		closeAll(css)
		return res, err
	}
	if m, err := ReadMemory(pid); err == nil {
		res.RSSOpen = m.RSS
	}

	env.logf("sessions: %d calls at once among them", calls)
	cpu0, err := CPUTime(pid)
	if err != nil {
		closeAll(css)
		return res, err
	}
	errs := make([]error, calls)
	start := make(chan struct{})
	var wg sync.WaitGroup
	stride := max(sessions/calls, 1)
	for i := range calls {
		wg.Go(func() {
			<-start
			got, err := Query(ctx, css[(i*stride)%sessions], ConcurrentQuestion(i), "s-"+strconv.Itoa(i))
			if err == nil && got != ConcurrentAnswer(i) {
				err = fmt.Errorf("call %d: answer of %d bytes differs from the %d sent", i, len(got), len(ConcurrentAnswer(i)))
			}
			errs[i] = err
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	res.Wall = time.Since(t0)
	if cpu1, err := CPUTime(pid); err == nil {
		res.CPUPerCall = (cpu1 - cpu0) / time.Duration(calls)
	}
	if m, err := ReadMemory(pid); err == nil {
		res.Peak = m.HWM
	}
	for _, e := range errs {
		if e == nil {
			res.OK++
		} else if res.FirstError == "" {
			res.FirstError = e.Error()
		}
	}
	res.ProgressBefore, res.After = wire.before.Load(), wire.after.Load()
	if wire.callsWithout.Load() > 0 && res.FirstError == "" {
		res.FirstError = fmt.Sprintf("%d call streams had no progress before their result", wire.callsWithout.Load())
	}
	res.OK -= int(wire.callsWithout.Load())

	env.logf("sessions: closing them")
	closeAll(css)
	tr.CloseIdleConnections()
	// Closed sessions end their goroutines asynchronously, and the backend
	// client closes its idle connections after 4 s: wait, bounded.
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := Goroutines(ctx, p)
		if err != nil {
			return res, err
		}
		res.GoroutinesAfter, res.FDsAfter = n, countFDs(pid)
		if (n <= res.GoroutinesIdle && res.FDsAfter <= res.FDsIdle) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	return res, nil
}

// countFDs counts a process's open file descriptors; -1 when unreadable.
func countFDs(pid int) int {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// callWire reads every tools/call response stream as the client receives
// it and counts the progress notifications before and after the result on
// that stream: over streamable HTTP a call's progress and its result share
// its POST stream, so the order on the wire is the order the client sees.
type callWire struct {
	before, after, callsWithout atomic.Int64
}

func (w *callWire) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTrip(func(req *http.Request) (*http.Response, error) {
		isCall := false
		if req.Method == http.MethodPost && req.Body != nil {
			body, err := io.ReadAll(req.Body)
			_ = req.Body.Close()
			if err != nil {
				return nil, err
			}
			isCall = bytes.Contains(body, []byte(`"tools/call"`))
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		resp, err := next.RoundTrip(req)
		if err != nil || !isCall || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			return resp, err
		}
		pr, pw := io.Pipe()
		orig := resp.Body
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.TeeReader(orig, pw), closerFunc(func() error { pw.Close(); return orig.Close() })}
		go w.scan(pr)
		return resp, nil
	})
}

func (w *callWire) scan(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var progress int64
	result := false
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var m struct {
			Method string          `json:"method"`
			Result json.RawMessage `json:"result"`
		}
		if json.Unmarshal([]byte(data), &m) != nil {
			continue
		}
		switch {
		case m.Method == "notifications/progress" && result:
			w.after.Add(1)
		case m.Method == "notifications/progress":
			progress++
			w.before.Add(1)
		case m.Result != nil && !result:
			result = true
			if progress == 0 {
				w.callsWithout.Add(1)
			}
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type closerFunc func() error

func (f closerFunc) Close() error { return f() }
