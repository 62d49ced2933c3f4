// Command kubeq-mcp is an MCP server in front of a KubeIntellect backend:
// kube_query asks it about a Kubernetes cluster with live progress and
// human approvals, kube_health says whether it is reachable. It serves
// stdio (the default) or streamable HTTP.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/kubeq-mcp/kubeq-mcp/approval"
	"github.com/kubeq-mcp/kubeq-mcp/approval/page"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
	"github.com/kubeq-mcp/kubeq-mcp/server"
)

// version is set at build time with -ldflags "-X main.version=...";
// without it, buildVersion asks the module build info.
var version = "dev"

// buildVersion is the version to report: the one set at link time, else
// the module version go install records (v0.1.0, or a pseudo-version with
// the commit for a build inside a checkout), else "dev".
func buildVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "kubeq-mcp:", err)
		return 2
	}
	if cfg.Version {
		fmt.Fprintln(stdout, "kubeq-mcp", buildVersion())
		return 0
	}
	log := newLogger(stderr, cfg.LogLevel)
	// A write to a closed stdout (the client is gone) must fail, not kill the
	// process: Go dies of SIGPIPE on fd 1 and 2 unless it is ignored, and
	// the shutdown that denies pending approvals would never run.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, log, stdin, stdout); err != nil {
		log.Error("kubeq-mcp stopped", "err", err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated in parseConfig
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

func serve(ctx context.Context, cfg config, log *slog.Logger, stdin io.Reader, stdout io.Writer) error {
	backendURL := cfg.URL
	if cfg.Demo {
		demo, err := startDemoBackend(ctx, log)
		if err != nil {
			return fmt.Errorf("demo backend: %w", err)
		}
		defer demo.Close()
		backendURL = demo.URL
		log.Warn("DEMO MODE: answers come from a simulated KubeIntellect, not a real cluster", "backend", backendURL)
		if ignored := demoIgnores(cfg); len(ignored) > 0 {
			log.Warn("--demo ignores "+strings.Join(ignored, " and ")+": the simulated backend is used instead", "ignored", ignored)
		}
	}
	opts := []kubeq.Option{
		kubeq.WithTimeout(cfg.Timeout),
		kubeq.WithModel(cfg.Model),
		kubeq.WithUser(cfg.UserID),
		kubeq.WithRetryDelays(cfg.RetryDelays...),
		kubeq.WithLogger(log.With("component", "kubeq")),
	}
	if cfg.APIKey != "" && !cfg.Demo {
		opts = append(opts, kubeq.WithAPIKey(cfg.APIKey))
	}
	if cfg.CACert != "" && !cfg.Demo {
		opts = append(opts, kubeq.WithCACertFile(cfg.CACert))
	}
	backend, err := kubeq.New(backendURL, opts...)
	if err != nil {
		return fmt.Errorf("backend client: %w", err)
	}
	var audit io.Writer
	if cfg.AuditLog != "" {
		f, err := os.OpenFile(cfg.AuditLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("--audit-log: %w", err)
		}
		defer f.Close()
		audit = f
	}
	ledger, err := openLedger(ctx, cfg, log)
	if err != nil {
		return err
	}
	opener, err := page.ParseOpener(cfg.ApprovalBrowser)
	if err != nil && !errors.Is(err, page.ErrNoOpener) {
		return fmt.Errorf("--approval-browser: %w", err)
	}
	srv, err := server.New(server.Config{
		Ledger:          ledger,
		Version:         buildVersion(),
		Backend:         backend,
		Logger:          log,
		ApprovalTimeout: cfg.ApprovalTimeout,
		CallDeadline:    cfg.CallDeadline,
		AnswerTTL:       cfg.AnswerTTL,
		TaskTTL:         cfg.TaskTTL,
		MaxDetached:     cfg.MaxDetached,
		ConfirmHighRisk: cfg.ConfirmHighRisk == "name",
		StateKey:        cfg.StateKey,
		AuditLog:        audit,
		Demo:            cfg.Demo,
		ApprovalBrowser: opener,
		HTTPToken:       cfg.HTTPToken,
		AllowedOrigins:  cfg.AllowedOrigins,
		AllowedHosts:    cfg.AllowedHosts,

		AllowUserOverride:  cfg.AllowUserOverride,
		MaxRequestBytes:    cfg.MaxRequestBytes,
		MaxSessions:        cfg.MaxSessions,
		MaxCallsPerSession: cfg.MaxCallsPerSession,
		MaxCalls:           cfg.MaxCalls,
		MaxAnswerBytes:     cfg.MaxAnswerBytes,
		RequestReadTimeout: cfg.RequestReadTimeout,
		WriteTimeout:       cfg.WriteTimeout,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	log.Info("kubeq-mcp starting", "version", buildVersion(), "transport", cfg.Transport,
		"backend", backend.URL(), "api_key_set", cfg.APIKey != "", "demo", cfg.Demo,
		"user", cfg.UserID, "allow_user_override", cfg.AllowUserOverride,
		"store", ledger.Describe())
	if cfg.Transport == "stdio" {
		if isTerminal(stdin) {
			log.Warn(terminalHint)
		}
		return srv.ServeStdio(ctx, stdin, stdout)
	}
	if slices.Contains(cfg.AllowedOrigins, "*") { // refused without a token in validate
		log.Warn("--allowed-origins '*': the Origin check is off, so any web page that can reach this server may call it; only the bearer token keeps it out")
	}
	return serveHTTP(ctx, cfg, srv, log)
}

// demoIgnores names the backend settings that --demo overrides, so that a
// user who set them learns they have no effect.
func demoIgnores(cfg config) []string {
	var ignored []string
	if cfg.URLSet {
		ignored = append(ignored, "--url/KUBE_Q_URL")
	}
	if cfg.APIKey != "" {
		ignored = append(ignored, "--api-key/KUBE_Q_API_KEY")
	}
	if cfg.CACert != "" {
		ignored = append(ignored, "--ca-cert/KUBE_Q_CA_CERT")
	}
	return ignored
}

// terminalHint is logged when a person starts the binary in a terminal:
// it waits for JSON-RPC from a client, and typed text only earns a parse
// error.
const terminalHint = "stdin is a terminal: kubeq-mcp is an MCP server that an MCP client starts and talks to " +
	"in JSON-RPC over stdin/stdout, so typed text gets a parse error. To try it, add it to a client with --demo " +
	"(see docs/clients.md), or run: npx @modelcontextprotocol/inspector kubeq-mcp --demo. Ctrl-D or Ctrl-C exits."

// isTerminal reports whether r is a character device other than the null
// device: a terminal. (A test or a service may give /dev/null as stdin,
// which is a character device too.)
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}

// serveHTTP serves until ctx ends, then cancels in-flight calls (which
// closes their backend requests) and shuts down.
func serveHTTP(ctx context.Context, cfg config, srv *server.Server, log *slog.Logger) error {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	hs := &http.Server{
		Handler: srv.HTTPHandler(),
		// Headers within the request read timeout (at most 10s); the body
		// gets its own deadline in the handler, so that the long-lived
		// response streams are bound by neither.
		ReadHeaderTimeout: min(10*time.Second, cfg.RequestReadTimeout),
		// Idle keep-alive connections cost memory: close them.
		IdleTimeout: cfg.IdleTimeout,
		BaseContext: func(net.Listener) context.Context { return ctx },
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("serving streamable HTTP", "mcp", "http://"+ln.Addr().String()+server.MCPPath,
		"healthz", "http://"+ln.Addr().String()+server.HealthPath, "token_required", cfg.HTTPToken != "")
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		// Open SSE streams do not end by themselves: close them.
		_ = hs.Close()
	}
	return nil
}

// openLedger opens the approval ledger --store names. A Redis that cannot
// be reached now is not fatal: every call on it fails safe (nothing is
// sent) until it is back, and kube_health says so.
func openLedger(ctx context.Context, cfg config, log *slog.Logger) (*approval.Ledger, error) {
	if cfg.Store == "memory" || cfg.Store == "" {
		return approval.NewLedger(approval.NewMemoryStore(), approval.Options{}), nil
	}
	// Keys are kept apart per state key: deployments sharing one Redis
	// with different keys cannot read each other's records.
	sum := sha256.Sum256(cfg.StateKey)
	store, err := approval.NewRedisStore(cfg.Store, "kubeq-mcp:"+hex.EncodeToString(sum[:6])+":")
	if err != nil {
		return nil, fmt.Errorf("--store: %w", err)
	}
	l := approval.NewLedger(store, approval.Options{})
	if err := l.Ping(ctx); err != nil {
		log.Error("the approval store is unreachable; calls are refused until it is back", "store", l.Describe(), "err", err)
	}
	return l, nil
}
