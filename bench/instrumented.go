package bench

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	rpprof "runtime/pprof"
	"strconv"
	"sync"
	"time"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
	"github.com/kubeq-mcp/kubeq-mcp/server"
)

// Paths of the instrumented server's own endpoints.
const (
	GoroutinesPath   = "/bench/goroutines"
	CPUProfileStart  = "/bench/cpuprofile/start"
	CPUProfileStop   = "/bench/cpuprofile/stop"
	instrumentedHelp = "serve: kubeq-mcp's server package over HTTP with a goroutine count and CPU profiling (load-test only)"
)

// ServeInstrumented runs server.New + HTTPHandler configured as the
// kubeq-mcp binary configures them by default, plus GoroutinesPath,
// CPUProfileStart?path=..., CPUProfileStop and net/http/pprof under
// /debug/pprof/. kubeq-mcp itself has no such endpoints; this process
// exists so goroutines and profiles can be read from a separate process.
// It serves until ctx ends.
func ServeInstrumented(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	backendURL := fs.String("url", "", "KubeIntellect base URL")
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback)")
	_ = fs.String("transport", "http", "only http")
	fs.Usage = func() { fmt.Fprintln(fs.Output(), instrumentedHelp); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// The binary's defaults: 120s timeout, retries 1s,3s,5s.
	backend, err := kubeq.New(*backendURL, kubeq.WithTimeout(120*time.Second),
		kubeq.WithRetryDelays(time.Second, 3*time.Second, 5*time.Second), kubeq.WithLogger(log))
	if err != nil {
		return fmt.Errorf("backend client: %w", err)
	}
	srv, err := server.New(server.Config{Version: "bench", Backend: backend, Logger: log, ConfirmHighRisk: true})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	defer srv.Close()
	mux := http.NewServeMux()
	mux.Handle("/", srv.HTTPHandler())
	mux.HandleFunc("GET "+GoroutinesPath, func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, runtime.NumGoroutine())
	})
	var prof cpuProfile
	mux.HandleFunc("POST "+CPUProfileStart, prof.start)
	mux.HandleFunc("POST "+CPUProfileStop, prof.stop)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	prof.stopProfile()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
	}
	return nil
}

type cpuProfile struct {
	mu sync.Mutex
	f  *os.File
}

func (p *cpuProfile) start(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.f != nil {
		http.Error(w, "already profiling", http.StatusConflict)
		return
	}
	f, err := os.Create(r.URL.Query().Get("path"))
	if err == nil {
		err = rpprof.StartCPUProfile(f)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	p.f = f
}

func (p *cpuProfile) stop(w http.ResponseWriter, _ *http.Request) {
	fmt.Fprintln(w, strconv.FormatBool(p.stopProfile()))
}

func (p *cpuProfile) stopProfile() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.f == nil {
		return false
	}
	rpprof.StopCPUProfile()
	_ = p.f.Close()
	p.f = nil
	return true
}
