package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// Shape of one concurrent turn (scenario 3).
const (
	ConcurrentTokens   = 200
	ConcurrentStatuses = 5
)

// ConcurrencyResult is scenario 3.
type ConcurrencyResult struct {
	Calls int

	Direct Dist // the same turns read straight from the backend, all at once
	MCP    Dist // kube_query over HTTP through the kubeq-mcp binary, all at once
	OK     int  // byte-exact answers through kubeq-mcp
	Failed int
	Error  string // the first failure
	Wall   time.Duration
	// Progress notifications the client saw across all calls.
	Progress int64

	RSSIdle     int64 // kubeq-mcp RSS before any session
	RSSSessions int64 // with every session open, before the calls
	PeakRSS     int64 // VmHWM after the calls

	// From the instrumented server (same server package, separate run).
	InstrumentedOK  int
	GoroutinesIdle  int // before any session
	GoroutinesPeak  int // sampled every 10 ms during the calls
	GoroutinesAfter int // after the sessions closed and the count settled
	// GoroutinesExtra names the creators of goroutines left above idle.
	GoroutinesExtra string

	// CPU time used during each burst, per process. The backend runs in
	// its own process when the driver can start one (BackendSeparate).
	BackendSeparate                            bool
	DirectCPUBackend, DirectCPUClients         time.Duration
	MCPCPUBackend, MCPCPUServer, MCPCPUClients time.Duration
}

// ConcurrentQuestion is call i's question; ConcurrentAnswer its answer.
func ConcurrentQuestion(i int) string { return "concurrent call " + strconv.Itoa(i) }

// ConcurrentAnswer is the answer the fake streams for call i.
func ConcurrentAnswer(i int) string {
	var b strings.Builder
	for j := range ConcurrentTokens {
		fmt.Fprintf(&b, "w%d.%d ", i, j)
	}
	return b.String()
}

// concurrentScript is call i's turn: 5 status events, each followed by a
// fifth of the 200 tokens.
func concurrentScript(i int) kubeqtest.Script {
	var s kubeqtest.Script
	per := ConcurrentTokens / ConcurrentStatuses
	for k := range ConcurrentStatuses {
		s = append(s, kubeqtest.Status("investigating", fmt.Sprintf("step %d of call %d", k+1, i)))
		for j := k * per; j < (k+1)*per; j++ {
			s = append(s, kubeqtest.Token(fmt.Sprintf("w%d.%d ", i, j)))
		}
	}
	return s
}

func concurrentBackend() *kubeqtest.Server {
	be := kubeqtest.NewServer()
	be.HandleFunc(func(req kubeqtest.Request) kubeqtest.Script {
		n, ok := strings.CutPrefix(req.Question, "concurrent call ")
		if !ok {
			return nil
		}
		i, err := strconv.Atoi(n)
		if err != nil {
			return nil
		}
		return concurrentScript(i)
	})
	return be
}

// Concurrency runs scenario 3: calls turns at once read directly, then
// through the kubeq-mcp binary (latency, correctness, memory), then
// through the instrumented server (goroutines).
func Concurrency(ctx context.Context, env *Env, calls int, profile string) (ConcurrencyResult, error) {
	res := ConcurrencyResult{Calls: calls}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	backendURL, backendPID := "", 0
	if env.Self != "" {
		bp, u, err := startBackendProc(ctx, env)
		if err != nil {
			return res, err
		}
		defer bp.Stop()
		backendURL, backendPID, res.BackendSeparate = u, bp.Cmd.Process.Pid, true
	} else {
		be := concurrentBackend()
		defer be.Close()
		backendURL = be.URL
	}

	env.logf("concurrency: %d direct reads at once", calls)
	meter := meterCPU(backendPID, 0)
	direct, err := directAtOnce(ctx, backendURL, calls)
	if err != nil {
		return res, err
	}
	res.Direct = Summarize(direct)
	if used := meter.used(); backendPID != 0 {
		res.DirectCPUBackend, res.DirectCPUClients = used[0], used[1]
	} else {
		res.DirectCPUClients = used[1]
	}

	env.logf("concurrency: %d kube_query calls at once through kubeq-mcp over HTTP", calls)
	p, err := StartHTTPServer(ctx, env.binArgs(backendURL), env.Stderr)
	if err != nil {
		return res, err
	}
	pid := p.Cmd.Process.Pid
	time.Sleep(200 * time.Millisecond)
	if m, err := ReadMemory(pid); err == nil {
		res.RSSIdle = m.RSS
	}
	run, err := callsAtOnce(ctx, p.MCPURL(), calls, hooks{
		connected: func() {
			if m, err := ReadMemory(pid); err == nil {
				res.RSSSessions = m.RSS
			}
			meter = meterCPU(backendPID, pid, 0)
		},
		called: func() {
			used := meter.used()
			res.MCPCPUServer, res.MCPCPUClients = used[1], used[2]
			if backendPID != 0 {
				res.MCPCPUBackend = used[0]
			}
		},
	})
	if m, merr := ReadMemory(pid); merr == nil {
		res.PeakRSS = m.HWM
	}
	p.Stop()
	if err != nil {
		return res, err
	}
	res.MCP = Summarize(run.latencies)
	res.OK, res.Failed, res.Error, res.Wall, res.Progress = run.ok, run.failed, run.firstErr, run.wall, run.progress

	if env.Self == "" {
		env.logf("concurrency: no instrumented server; goroutines not measured")
		return res, nil
	}
	env.logf("concurrency: again through the instrumented server, counting goroutines")
	argv, _ := env.instrumentedArgs(backendURL)
	p, err = StartHTTPServer(ctx, argv, env.Stderr)
	if err != nil {
		return res, err
	}
	defer p.Stop()
	time.Sleep(200 * time.Millisecond)
	if res.GoroutinesIdle, err = Goroutines(ctx, p); err != nil {
		return res, err
	}
	idleCreators, err := goroutineCreators(ctx, p)
	if err != nil {
		return res, err
	}
	var peak atomic.Int64
	heapPath := ""
	if profile != "" {
		heapPath = strings.TrimSuffix(profile, ".pprof") + "-heap-at-peak.pprof"
	}
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	run, err = callsAtOnce(ctx, p.MCPURL(), calls, hooks{
		connected: func() {
			if profile != "" {
				if err := startProfile(ctx, p, profile); err != nil {
					env.logf("concurrency: cpu profile: %v", err)
				}
			}
			go func() {
				defer close(sampled)
				tick := time.NewTicker(10 * time.Millisecond)
				defer tick.Stop()
				for {
					if n, err := Goroutines(ctx, p); err == nil && int64(n) > peak.Load() {
						// A heap profile at each new peak (10% above the
						// last), so the last one is taken near the top.
						if heapPath != "" && int64(n) > peak.Load()*11/10 {
							_ = saveHeapProfile(ctx, p, heapPath)
						}
						peak.Store(int64(n))
					}
					select {
					case <-stopSampling:
						return
					case <-tick.C:
					}
				}
			}()
		},
		called: func() {
			close(stopSampling)
			<-sampled
			if profile != "" {
				stopProfile(ctx, p)
			}
		},
	})
	if err != nil {
		return res, err
	}
	res.InstrumentedOK = run.ok
	res.GoroutinesPeak = int(peak.Load())
	// Closed sessions end their goroutines asynchronously, and the backend
	// client closes its pooled connections after 4 s idle: wait, bounded,
	// for the count to settle back.
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, err := Goroutines(ctx, p)
		if err != nil {
			return res, err
		}
		res.GoroutinesAfter = n
		if n <= res.GoroutinesIdle || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if res.GoroutinesAfter > res.GoroutinesIdle {
		after, err := goroutineCreators(ctx, p)
		if err != nil {
			return res, err
		}
		res.GoroutinesExtra = creatorDiff(idleCreators, after)
	}
	return res, nil
}

// directAtOnce reads calls turns straight from the backend, all released
// together.
func directAtOnce(ctx context.Context, backendURL string, calls int) ([]time.Duration, error) {
	hc := LoopbackHTTPClient(calls + 8)
	defer hc.CloseIdleConnections()
	lat := make([]time.Duration, calls)
	errs := make([]error, calls)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			<-start
			t0 := time.Now()
			turn, err := ReadDirect(ctx, hc, backendURL, fmt.Sprintf("direct-%d-%d", time.Now().UnixNano(), i), ConcurrentQuestion(i), nil)
			lat[i] = time.Since(t0)
			if err == nil && turn.Answer != ConcurrentAnswer(i) {
				err = fmt.Errorf("direct read %d: wrong answer", i)
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return lat, nil
}

type hooks struct {
	connected func() // every session is open; the calls start after it returns
	called    func() // every call returned; sessions still open
}

type callsRun struct {
	latencies  []time.Duration
	ok, failed int
	firstErr   string
	wall       time.Duration
	progress   int64
}

// callsAtOnce opens one go-sdk session per call (mcp-go feeds all streams
// of a session from one queue, so a session carries one call at a time),
// then releases every kube_query at once and checks each answer byte for
// byte.
func callsAtOnce(ctx context.Context, endpoint string, calls int, h hooks) (callsRun, error) {
	var run callsRun
	var progress atomic.Int64
	client := NewClient(func(any, string, time.Time) { progress.Add(1) })
	hc := LoopbackHTTPClient(calls + 8)
	defer hc.CloseIdleConnections()
	sessions := make([]*sdk.ClientSession, calls)
	defer closeAll(sessions)
	if err := parallel(calls, 50, func(i int) error {
		cs, err := ConnectHTTP(ctx, client, endpoint, hc)
		sessions[i] = cs
		return err
	}); err != nil {
		return run, err
	}
	if h.connected != nil {
		h.connected()
	}
	run.latencies = make([]time.Duration, calls)
	errs := make([]error, calls)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			<-start
			t0 := time.Now()
			got, err := Query(ctx, sessions[i], ConcurrentQuestion(i), "call-"+strconv.Itoa(i))
			run.latencies[i] = time.Since(t0)
			if err == nil && got != ConcurrentAnswer(i) {
				err = fmt.Errorf("call %d: answer of %d bytes differs from the %d sent", i, len(got), len(ConcurrentAnswer(i)))
			}
			errs[i] = err
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	run.wall = time.Since(t0)
	if h.called != nil {
		h.called()
	}
	for _, err := range errs {
		if err != nil {
			run.failed++
			if run.firstErr == "" {
				run.firstErr = err.Error()
			}
			continue
		}
		run.ok++
	}
	run.progress = progress.Load()
	return run, nil
}

// parallel runs f(0..n-1) with at most width at a time and returns the
// first error.
func parallel(n, width int, f func(i int) error) error {
	sem := make(chan struct{}, width)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = f(i)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func closeAll(sessions []*sdk.ClientSession) {
	_ = parallel(len(sessions), 50, func(i int) error {
		if sessions[i] != nil {
			_ = sessions[i].Close()
		}
		return nil
	})
}
