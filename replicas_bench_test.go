package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/kubeq-mcp/kubeq-mcp/internal/redistest"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// Throughput of kube_query through the round-robin proxy: 1 replica with
// the memory store (the baseline), then 1 and 3 replicas sharing one
// Redis, in the same run. 16 clients of the 2026 era each ask on their own
// conversation (the lease and the record check are on every call); the
// fake backend answers at once, so the figure is kubeq-mcp's own cost. The
// machine's cores bound what 3 replicas can add: read it next to
// runtime.NumCPU.
func BenchmarkReplicasThroughput(b *testing.B) {
	srv := redistest.Start(b)
	for _, c := range []struct {
		name  string
		n     int
		store string
	}{{"memory/replicas=1", 1, "memory"}, {"redis/replicas=1", 1, srv.URL(1)}, {"redis/replicas=3", 3, srv.URL(2)}} {
		b.Run(c.name, func(b *testing.B) {
			backend := kubeqtest.NewServer()
			b.Cleanup(backend.Close)
			backend.HandleFunc(func(kubeqtest.Request) kubeqtest.Script { return kubeqtest.Answer("fine.") })
			rs := startReplicas(b, c.n, backend, c.store)
			const clients = 16
			css := make([]*sdk.ClientSession, clients)
			for i := range css {
				css[i] = rs.client()
			}
			var next atomic.Int64
			var failed atomic.Int64
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for i, cs := range css {
				wg.Add(1)
				go func() {
					defer wg.Done()
					conv := fmt.Sprintf("bench-%d-%d", c.n, i)
					for next.Add(1) <= int64(b.N) {
						res, err := ask(cs, map[string]any{"question": "how is web?", "conversation_id": conv})
						if err == nil && res.IsError {
							err = fmt.Errorf("%s", demoText(res))
						}
						if err != nil && failed.Add(1) == 1 {
							b.Logf("call failed: %v", err)
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if failed.Load() > 0 {
				b.Fatalf("%d calls failed", failed.Load())
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
		})
	}
}
