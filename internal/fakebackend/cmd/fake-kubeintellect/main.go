// Command fake-kubeintellect runs kubeqtest's fake KubeIntellect backend on a
// loopback port, scripted with the e2e turns of package fakebackend, for the
// e2e scripts. GET /_log returns the request log and GET /_decisions the
// approval decisions, as JSON. Test-only.
//
// It prints "listening on http://HOST:PORT" on stdout once it accepts
// connections.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kubeq-mcp/kubeq-mcp/internal/fakebackend"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback)")
	scenario := flag.String("scenario", "e2e", "scripted turns: e2e (see package fakebackend)")
	flag.Parse()
	if err := run(*addr, *scenario); err != nil {
		fmt.Fprintln(os.Stderr, "fake-kubeintellect:", err)
		os.Exit(1)
	}
}

func run(addr, scenario string) error {
	if scenario != "e2e" {
		return fmt.Errorf("unknown scenario %q (known: e2e)", scenario)
	}
	fake := kubeqtest.NewUnstartedServer()
	fakebackend.Install(fake)
	defer fake.Close()

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	hs := &http.Server{Handler: fakebackend.Handler(fake), ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("listening on http://%s\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	fake.Close() // ends running turns so Shutdown does not wait for them
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(shutdown)
	return nil
}
