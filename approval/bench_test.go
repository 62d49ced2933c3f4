package approval

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kubeq-mcp/kubeq-mcp/internal/redistest"
)

// The ledger's cost per kube_query call: the question's lease and record
// check (Acquire, Take, Release), and a gate's full life on top (Set when
// it is raised, then Acquire, Consume, Clear, Release when the human
// answers). Memory against Redis on loopback, in the same run; p50 and p99
// per call are reported besides the mean.
func BenchmarkLedger(b *testing.B) {
	srv := redistest.Start(b)
	stores := []struct {
		name string
		make func(b *testing.B) Store
	}{
		{"memory", func(*testing.B) Store { return NewMemoryStore() }},
		{"redis", func(b *testing.B) Store {
			s, err := NewRedisStore(srv.URL(0), "bench:")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			return s
		}},
	}
	for _, st := range stores {
		l := NewLedger(st.make(b), Options{})
		b.Run(st.name+"/question", func(b *testing.B) {
			runTimed(b, func(i int) {
				ctx := context.Background()
				h, err := l.Acquire(ctx, fmt.Sprintf("q-%d", i%64))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := h.Take(ctx); err != nil {
					b.Fatal(err)
				}
				h.Release()
			})
		})
		b.Run(st.name+"/gate", func(b *testing.B) {
			runTimed(b, func(i int) {
				ctx := context.Background()
				conv, nonce := fmt.Sprintf("g-%d", i%64), fmt.Sprintf("n-%d-%d", i, time.Now().UnixNano())
				h, err := l.Acquire(ctx, conv)
				if err != nil {
					b.Fatal(err)
				}
				if err := h.Set(ctx, &Record{Nonce: nonce, Sealed: true, Expires: time.Now().Add(time.Minute)}); err != nil {
					b.Fatal(err)
				}
				h.Release()
				h, err = l.Acquire(ctx, conv)
				if err != nil {
					b.Fatal(err)
				}
				if st, rec, err := h.Consume(ctx, nonce, time.Now().Add(time.Minute)); err != nil || st != NonceFresh || rec == nil {
					b.Fatalf("consume: %v %v %v", st, rec, err)
				}
				if err := h.Clear(ctx); err != nil {
					b.Fatal(err)
				}
				h.Release()
			})
		})
	}
}

// runTimed runs op b.N times and reports the p50 and p99 of one op.
func runTimed(b *testing.B, op func(i int)) {
	d := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		op(i)
		d = append(d, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(d[min(len(d)-1, len(d)*99/100)].Nanoseconds()), "p99-ns")
}
