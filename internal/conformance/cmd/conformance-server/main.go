// Command conformance-server serves the conformance build of kubeq-mcp (our
// HTTP stack with the MCP conformance suite's fixtures, see package
// conformance) at http://ADDR/mcp until interrupted. Test-only.
//
// It prints "listening on http://HOST:PORT/mcp" on stdout once it accepts
// connections, so scripts can wait for that line.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kubeq-mcp/kubeq-mcp/internal/conformance"
	"github.com/kubeq-mcp/kubeq-mcp/server"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback)")
	verbose := flag.Bool("v", false, "debug logging on stderr")
	flag.Parse()
	if err := run(*addr, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "conformance-server:", err)
		os.Exit(1)
	}
}

func run(addr string, verbose bool) error {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	srv, err := conformance.New(server.Config{Version: "conformance", Logger: log})
	if err != nil {
		return err
	}
	defer srv.Close()

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	hs := &http.Server{Handler: srv.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("listening on http://%s%s\n", ln.Addr(), server.MCPPath)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
