package bench

import (
	"fmt"
	"slices"
	"time"
)

// Dist is a distribution of durations, summarised by nearest-rank
// percentiles.
type Dist struct {
	N             int
	P50, P99, Max time.Duration
}

// Summarize sorts a copy of ds and takes its percentiles.
func Summarize(ds []time.Duration) Dist {
	if len(ds) == 0 {
		return Dist{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return Dist{N: len(s), P50: rank(s, 50), P99: rank(s, 99), Max: s[len(s)-1]}
}

// rank is the nearest-rank percentile p of sorted s.
func rank(s []time.Duration, p int) time.Duration {
	i := (p*len(s)+99)/100 - 1
	return s[max(0, min(i, len(s)-1))]
}

// Median of ds.
func Median(ds []time.Duration) time.Duration { return Summarize(ds).P50 }

func (d Dist) String() string {
	return fmt.Sprintf("n=%d p50=%s p99=%s max=%s", d.N, ms(d.P50), ms(d.P99), ms(d.Max))
}

// ms formats d in milliseconds with three decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond)) }

// MiB formats a byte count in MiB.
func MiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
