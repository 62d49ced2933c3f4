package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kubeq-mcp/kubeq-mcp/demo"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// demoPaceEnv scales the pauses of the demo's scripted investigations: 1 by
// default, 0 for none (tests), 2 for twice as slow. Read in demo mode only.
const demoPaceEnv = "KUBEQ_MCP_DEMO_PACE"

// demoBackend is the simulated KubeIntellect of --demo, served on a loopback
// port so that the real client code path (HTTP, SSE) is the one shown.
type demoBackend struct {
	URL    string
	fake   *kubeqtest.Server
	hs     *http.Server
	served chan struct{}
}

func startDemoBackend(ctx context.Context, log *slog.Logger) (*demoBackend, error) {
	pace, err := demoPace(os.Getenv(demoPaceEnv))
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen on loopback: %w", err)
	}
	fake := demo.NewBackend(demo.WithPace(pace))
	d := &demoBackend{
		URL:  "http://" + ln.Addr().String(),
		fake: fake,
		hs: &http.Server{
			Handler:           fake.Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		served: make(chan struct{}),
	}
	go func() {
		defer close(d.served)
		_ = d.hs.Serve(ln) // ends with ErrServerClosed on Close
	}()
	log.Info("demo: try these questions (rephrasing is fine): "+strings.Join(demo.Questions(), " | "), "pace", pace)
	return d, nil
}

// Close ends every running scripted turn, then the listener.
func (d *demoBackend) Close() {
	d.fake.Close()
	_ = d.hs.Close()
	<-d.served
}

func demoPace(v string) (float64, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 1, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f >= 0 && f <= 100) { // also refuses NaN
		return 0, fmt.Errorf("%s %q: must be a number from 0 (no pauses) to 100; 1 is the default pace", demoPaceEnv, v)
	}
	return f, nil
}
