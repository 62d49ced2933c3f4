package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Machine describes where a run happened.
func Machine() string {
	cpu := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
		_ = f.Close()
	}
	mem := "?"
	if out, err := exec.Command("free", "-h").Output(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[0] == "Mem:" {
				mem = f[1]
			}
		}
	}
	node := "not run"
	if out, err := exec.Command("node", "--version").Output(); err == nil {
		node = strings.TrimSpace(string(out))
	}
	return fmt.Sprintf("%d CPUs (%s), %s RAM, %s %s/%s, node %s", runtime.NumCPU(), cpu, mem,
		runtime.Version(), runtime.GOOS, runtime.GOARCH, node)
}

// Report prints results as Markdown table rows: figure | measured | baseline
// | ratio | target.
type Report struct {
	W io.Writer
}

func (r Report) header(title string) {
	fmt.Fprintf(r.W, "\n### %s\n\n| figure | kubeq-mcp | baseline | ratio / delta | target | met |\n|---|---|---|---|---|---|\n", title)
}

func (r Report) row(figure, measured, baseline, ratio, target string, met bool) {
	verdict := ""
	if target != "" {
		verdict = yes(met)
	}
	fmt.Fprintf(r.W, "| %s | %s | %s | %s | %s | %s |\n", figure, measured, baseline, ratio, target, verdict)
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
}

// Latency prints scenario 1.
func (r Report) Latency(res LatencyResult) {
	r.header(fmt.Sprintf("1. Forwarding latency (%d status events, one every %s; stamp → go-sdk progress handler)", res.Events, res.Every))
	for _, p := range []struct {
		name string
		d    Dist
	}{{"HTTP", res.HTTP}, {"stdio", res.Stdio}} {
		b := res.Baseline
		r.row(p.name+" p50", ms(p.d.P50), ms(b.P50), "+"+ms(p.d.P50-b.P50), "", true)
		met := p.d.P99 <= 2*time.Millisecond && p.d.P99-b.P99 <= time.Millisecond
		r.row(p.name+" p99", ms(p.d.P99), ms(b.P99), "+"+ms(p.d.P99-b.P99), "≤ 2 ms and ≤ baseline + 1 ms", met)
		r.row(p.name+" max", ms(p.d.Max), ms(b.Max), "+"+ms(p.d.Max-b.Max), "", true)
	}
}

// Throughput prints scenario 2.
func (r Report) Throughput(res ThroughputResult) {
	r.header(fmt.Sprintf("2. Throughput (one turn of %d token frames, %s of SSE, to the whole answer)", res.Frames, MiB(res.Bytes)))
	rate := func(d time.Duration) string {
		return fmt.Sprintf("%s (%.0f frames/s)", d.Round(time.Millisecond), float64(res.Frames)/d.Seconds())
	}
	for _, p := range []struct {
		name     string
		d        time.Duration
		progress int64
	}{{"HTTP", res.HTTP, res.HTTPProgress}, {"stdio", res.Stdio, res.StdioProgress}} {
		ratio := res.Baseline.Seconds() / p.d.Seconds()
		r.row(fmt.Sprintf("%s (%d progress notifications)", p.name, p.progress), rate(p.d), rate(res.Baseline),
			fmt.Sprintf("%.0f%% of direct", ratio*100), "≥ 50% of direct", ratio >= 0.5)
	}
	r.row("floor: the same stream drained without decoding", "", rate(res.Drain), "", "", true)
}

// Concurrency prints scenario 3.
func (r Report) Concurrency(res ConcurrencyResult) {
	r.header(fmt.Sprintf("3. Concurrency (%d kube_query calls at once over HTTP, %d tokens + %d status events each)", res.Calls, ConcurrentTokens, ConcurrentStatuses))
	correct := fmt.Sprintf("%d/%d byte-exact", res.OK, res.Calls)
	if res.Error != "" {
		correct += "; first failure: " + res.Error
	}
	r.row("correct answers", correct, "", "", "100%", res.OK == res.Calls)
	r.row("latency p50", ms(res.MCP.P50), ms(res.Direct.P50), "+"+ms(res.MCP.P50-res.Direct.P50), "", true)
	r.row("latency p99", ms(res.MCP.P99), ms(res.Direct.P99), "+"+ms(res.MCP.P99-res.Direct.P99), "overhead ≤ 50 ms", res.MCP.P99-res.Direct.P99 <= 50*time.Millisecond)
	r.row("latency max", ms(res.MCP.Max), ms(res.Direct.Max), "+"+ms(res.MCP.Max-res.Direct.Max), "", true)
	r.row("wall time of the burst", res.Wall.Round(time.Millisecond).String(), "", "", "", true)
	r.row("progress notifications seen", fmt.Sprint(res.Progress), "", "", "", true)
	where := "backend in the driver process"
	if res.BackendSeparate {
		where = "backend process"
	}
	r.row("CPU time of the burst", fmt.Sprintf("kubeq-mcp %s (%s per call), go-sdk clients %s, %s %s",
		res.MCPCPUServer, res.MCPCPUServer/time.Duration(max(res.Calls, 1)), res.MCPCPUClients, where, res.MCPCPUBackend),
		fmt.Sprintf("readers %s, %s %s", res.DirectCPUClients, where, res.DirectCPUBackend), "", "", true)
	r.row("RSS idle → sessions open → peak (VmHWM)", fmt.Sprintf("%s → %s → %s", MiB(res.RSSIdle), MiB(res.RSSSessions), MiB(res.PeakRSS)), "", "", "peak ≤ 200 MB", res.PeakRSS <= 200e6)
	if res.GoroutinesIdle > 0 {
		after := fmt.Sprintf("%d → %d → %d (%d/%d correct)", res.GoroutinesIdle, res.GoroutinesPeak, res.GoroutinesAfter, res.InstrumentedOK, res.Calls)
		if res.GoroutinesExtra != "" {
			after += "; above idle: " + res.GoroutinesExtra
		}
		r.row("goroutines idle → peak → after (instrumented server)", after, "", "", "back to idle", res.GoroutinesAfter <= res.GoroutinesIdle)
	}
}

// ColdStart prints scenario 4.
func (r Report) ColdStart(res ColdStartResult) {
	r.header(fmt.Sprintf("4. Cold start (process start → initialize %s answered over stdio, %d runs each)", ProtocolVersion, res.Runs))
	base, ratio, met := "not run", "", res.KubeqMCP.P50 <= 20*time.Millisecond
	if res.Node.N > 0 {
		f := float64(res.Node.P50) / float64(res.KubeqMCP.P50)
		base, ratio = ms(res.Node.P50)+" (Node.js server-everything)", fmt.Sprintf("%.1f× faster", f)
		met = met && f >= 10
	}
	r.row("median", ms(res.KubeqMCP.P50), base, ratio, "≤ 20 ms and ≥ 10× faster", met)
	r.row("max", ms(res.KubeqMCP.Max), ms(res.Node.Max), "", "", true)
}

// Idle prints scenario 5.
func (r Report) Idle(res IdleResult) {
	r.header("5. Idle memory (RSS)")
	node := "not run"
	if res.NodeStdioRSS > 0 {
		node = MiB(res.NodeStdioRSS) + " (Node.js server-everything)"
	}
	r.row("stdio, initialized", MiB(res.StdioRSS), node, "", "", true)
	r.row("HTTP, started", MiB(res.HTTPRSS), "", "", "", true)
	r.row(fmt.Sprintf("HTTP, %d idle sessions", res.Sessions), MiB(res.HTTPRSSOpen), "", "", "", true)
	r.row("per idle HTTP session", fmt.Sprintf("%.1f KiB", float64(res.PerSession)/1024), "", "", "", true)
}

// CPU prints scenario 0: CPU per call against the bare mcp-go floor.
func (r Report) CPU(res CPUResult) {
	calls := res.Sessions * res.CallsPerSession
	r.header(fmt.Sprintf("0. CPU per call (HTTP, %d sessions × %d kube_query calls with progress, follow-ups on one conversation; "+
		"baseline: a bare mcp-go server sending the same 7 progress notifications and answer; %d interleaved rounds)",
		res.Sessions, res.CallsPerSession, res.Rounds))
	var ours, floor []time.Duration
	for i := range res.Server {
		s, f := res.Server[i], res.Floor[i]
		ours, floor = append(ours, s.CPUPerCall), append(floor, f.CPUPerCall)
		r.row(fmt.Sprintf("round %d: CPU per call (%d calls)", i+1, calls), ms(s.CPUPerCall), ms(f.CPUPerCall),
			ratio(s.CPUPerCall, f.CPUPerCall), "", true)
	}
	mo, mf := Median(ours), Median(floor)
	r.row("median CPU per call", ms(mo), ms(mf), ratio(mo, mf), "≤ 2× the floor", mf > 0 && mo <= 2*mf)
	var ro, rf int64
	for i := range res.Server {
		ro, rf = max(ro, res.Server[i].PeakRSS), max(rf, res.Floor[i].PeakRSS)
	}
	r.row("peak RSS (VmHWM)", MiB(ro), MiB(rf), fmt.Sprintf("+%s", MiB(ro-rf)), "", true)
	if len(res.Against) > 0 {
		var other []time.Duration
		var ra int64
		for i, a := range res.Against {
			other = append(other, a.CPUPerCall)
			ra = max(ra, a.PeakRSS)
			r.row(fmt.Sprintf("round %d: the other build (-cpu-against)", i+1), ms(a.CPUPerCall), ms(res.Floor[i].CPUPerCall),
				ratio(a.CPUPerCall, res.Floor[i].CPUPerCall), "", true)
		}
		ma := Median(other)
		r.row("the other build: median CPU per call", ms(ma), ms(mf), ratio(ma, mf), "", true)
		r.row("this build / the other build (medians)", ratio(mo, ma), "", "", "", true)
		r.row("the other build: peak RSS (VmHWM)", MiB(ra), MiB(rf), fmt.Sprintf("+%s", MiB(ra-rf)), "", true)
		r.row("the other build: backend requests per question",
			fmt.Sprintf("%.2f chat + %.2f history reads", res.AgainstChatPerQuestion, res.AgainstReplayPerQuestion), "", "", "", true)
	}
	r.row("backend requests per question", fmt.Sprintf("%.2f chat + %.2f history reads", res.ChatPerQuestion, res.ReplayPerQuestion),
		"", "", "1 where the ledger vouches", res.ChatPerQuestion+res.ReplayPerQuestion <= 1.0001)
}

func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
}

// Sessions prints scenario 6.
func (r Report) Sessions(res SessionsResult) {
	r.header(fmt.Sprintf("6. Many sessions (%d initialized 2025-era HTTP sessions open, %d kube_query calls at once among them; instrumented server)",
		res.Sessions, res.Calls))
	correct := fmt.Sprintf("%d/%d byte-exact, progress first", res.OK, res.Calls)
	if res.FirstError != "" {
		correct += "; first failure: " + res.FirstError
	}
	r.row("correct answers", correct, "", "", "100%", res.OK == res.Calls)
	r.row("progress notifications before / after their result (on the wire)", fmt.Sprintf("%d / %d", res.ProgressBefore, res.After), "", "", "0 after", res.After == 0)
	r.row("wall time of the calls", res.Wall.Round(time.Millisecond).String(), "", "", "", true)
	r.row("CPU per call", ms(res.CPUPerCall), "", "", "", true)
	perSession := int64(0)
	if res.Sessions > 0 {
		perSession = (res.RSSOpen - res.RSSIdle) / int64(res.Sessions)
	}
	r.row("RSS idle → sessions open → peak (VmHWM)", fmt.Sprintf("%s → %s → %s (%.1f KiB per open session)",
		MiB(res.RSSIdle), MiB(res.RSSOpen), MiB(res.Peak), float64(perSession)/1024), "", "", "peak ≤ 1 GB", res.Peak <= 1e9)
	r.row("goroutines idle → after closing", fmt.Sprintf("%d → %d", res.GoroutinesIdle, res.GoroutinesAfter), "", "", "back to idle", res.GoroutinesAfter <= res.GoroutinesIdle)
	r.row("file descriptors idle → after closing", fmt.Sprintf("%d → %d", res.FDsIdle, res.FDsAfter), "", "", "back to idle", res.FDsAfter <= res.FDsIdle)
}
