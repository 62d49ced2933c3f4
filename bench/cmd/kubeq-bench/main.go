// Command kubeq-bench is kubeq-mcp's load driver: it runs the scenarios of
// BENCHMARKS.md against the kubeq-mcp binary and prints their results
// next to the baselines measured in the same run. Run it from the
// repository root:
//
//	go run ./bench/cmd/kubeq-bench
//
// "kubeq-bench serve" (the instrumented server) and "kubeq-bench backend"
// (the fake backend of the concurrency scenario) are processes it starts
// for itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/kubeq-mcp/kubeq-mcp/bench"
)

const nodeEntry = "bench/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		if err := bench.ServeInstrumented(ctx, os.Args[2:]); err != nil && !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "kubeq-bench serve:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "floor" {
		if err := bench.ServeFloor(ctx, os.Args[2:]); err != nil && !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "kubeq-bench floor:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "backend" {
		if err := bench.ServeBackend(ctx, os.Stdout, os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "kubeq-bench backend:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "kubeq-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	bin := flag.String("bin", "", "kubeq-mcp binary; built from the repository into a temporary directory when empty")
	node := flag.String("node-server", nodeEntry, "entry point of @modelcontextprotocol/server-everything (npm ci --prefix bench/node); skipped when missing")
	scenarios := flag.String("scenarios", "cpu,latency,throughput,concurrency,coldstart,idle,sessions", "comma-separated scenarios to run")
	repeat := flag.Int("repeat", 1, "run each scenario this many times")
	events := flag.Int("latency-events", 200, "latency: status events per path")
	every := flag.Duration("latency-every", 50*time.Millisecond, "latency: interval between status events")
	frames := flag.Int("flood-frames", 1_000_000, "throughput: token frames in the turn")
	calls := flag.Int("calls", 1000, "concurrency: kube_query calls at once")
	coldRuns := flag.Int("cold-runs", 20, "cold start: runs per server")
	sessions := flag.Int("idle-sessions", 100, "idle: HTTP sessions to open")
	manySessions := flag.Int("sessions", 10000, "sessions: HTTP sessions to hold open")
	manyCalls := flag.Int("sessions-calls", 1000, "sessions: kube_query calls at once among them")
	cpuSessions := flag.Int("cpu-sessions", 20, "cpu: HTTP sessions, calling at once")
	cpuCalls := flag.Int("cpu-calls", 25, "cpu: kube_query calls per session, one after another")
	cpuRounds := flag.Int("cpu-rounds", 3, "cpu: interleaved rounds of kubeq-mcp and the floor")
	cpuAgainst := flag.String("cpu-against", "", "cpu: another kubeq-mcp binary measured in the same rounds (e.g. an older build)")
	profDir := flag.String("cpuprofile-dir", "", "write CPU profiles of the cpu (with an allocation profile, and the same two of the floor: cpu-N.pprof.floor*), throughput (HTTP) and concurrency runs here, taken on the instrumented server")
	flag.Parse()

	env := &bench.Env{Stderr: os.Stderr, Logf: func(f string, a ...any) {
		fmt.Fprintf(os.Stderr, "%s "+f+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("own path: %w", err)
	}
	env.Self = self
	if _, err := os.Stat(*node); err == nil {
		env.NodeServer = *node
	} else {
		env.Logf("no Node.js reference server at %s (npm ci --prefix bench/node): its baselines are skipped", *node)
	}
	env.Bin = *bin
	if env.Bin == "" {
		dir, err := os.MkdirTemp("", "kubeq-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		env.Bin = filepath.Join(dir, "kubeq-mcp")
		env.Logf("building kubeq-mcp into %s", env.Bin)
		build := exec.CommandContext(ctx, "go", "build", "-o", env.Bin, ".")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build (run kubeq-bench from the repository root): %w", err)
		}
	}
	profile := func(name string, i int) string {
		if *profDir == "" {
			return ""
		}
		return filepath.Join(*profDir, fmt.Sprintf("%s-%d.pprof", name, i+1))
	}

	want := strings.Split(*scenarios, ",")
	r := bench.Report{W: os.Stdout}
	fmt.Printf("## kubeq-bench run %s\n\nMachine: %s\n", time.Now().UTC().Format(time.RFC3339), bench.Machine())
	for i := range *repeat {
		if *repeat > 1 {
			fmt.Printf("\n## Run %d of %d\n", i+1, *repeat)
		}
		if slices.Contains(want, "cpu") {
			res, err := bench.CPUPerCall(ctx, env, *cpuSessions, *cpuCalls, *cpuRounds, *cpuAgainst, profile("cpu", i))
			if err != nil {
				return err
			}
			r.CPU(res)
		}
		if slices.Contains(want, "latency") {
			res, err := bench.Latency(ctx, env, *events, *every)
			if err != nil {
				return err
			}
			r.Latency(res)
		}
		if slices.Contains(want, "throughput") {
			res, err := bench.Throughput(ctx, env, *frames, profile("throughput", i))
			if err != nil {
				return err
			}
			r.Throughput(res)
		}
		if slices.Contains(want, "concurrency") {
			res, err := bench.Concurrency(ctx, env, *calls, profile("concurrency", i))
			if err != nil {
				return err
			}
			r.Concurrency(res)
		}
		if slices.Contains(want, "coldstart") {
			res, err := bench.ColdStart(ctx, env, *coldRuns)
			if err != nil {
				return err
			}
			r.ColdStart(res)
		}
		if slices.Contains(want, "sessions") {
			res, err := bench.ManySessions(ctx, env, *manySessions, *manyCalls)
			if err != nil {
				return err
			}
			r.Sessions(res)
		}
		if slices.Contains(want, "idle") {
			res, err := bench.Idle(ctx, env, *sessions)
			if err != nil {
				return err
			}
			r.Idle(res)
		}
	}
	return nil
}
