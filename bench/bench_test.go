package bench

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/kubeq-mcp/kubeq-mcp/internal/testskip"
)

func TestSummarizeNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	d := Summarize(ds)
	if d.N != 100 || d.P50 != 50*time.Millisecond || d.P99 != 99*time.Millisecond || d.Max != 100*time.Millisecond {
		t.Fatalf("got %v", d)
	}
	if ds[0] != 100*time.Millisecond {
		t.Fatal("Summarize sorted its input")
	}
	if one := Summarize(ds[:1]); one.P50 != one.P99 || one.P99 != one.Max {
		t.Fatalf("one sample: %v", one)
	}
}

func TestStampAge(t *testing.T) {
	sent := time.Now().Add(-3 * time.Millisecond)
	msg := "[bench] t=" + strconv.FormatInt(sent.UnixNano(), 10)
	d, ok := StampAge(msg, sent.Add(3*time.Millisecond))
	if !ok || d != 3*time.Millisecond {
		t.Fatalf("StampAge(%q) = %v, %v", msg, d, ok)
	}
	if _, ok := StampAge("[bench] done", time.Now()); ok {
		t.Fatal("a message without a stamp parsed")
	}
}

// The fake writes the frames the baseline reader and kubeq-mcp read: a
// flood adds up to FloodAnswer, stamped events arrive in order.
func TestBackendThroughDirectReader(t *testing.T) {
	be, err := StartBackend()
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hc := LoopbackHTTPClient(2)
	turn, err := ReadDirect(ctx, hc, be.URL, "s1", FloodQuestion(1000), nil)
	if err != nil {
		t.Fatal(err)
	}
	if turn.Answer != FloodAnswer(1000) || turn.Frames != 1000+4 {
		t.Fatalf("flood: %d frames, answer of %d bytes", turn.Frames, len(turn.Answer))
	}
	var ages []time.Duration
	_, err = ReadDirect(ctx, hc, be.URL, "s2", StampedQuestion(5, 2*time.Millisecond), func(msg string, at time.Time) {
		d, ok := StampAge(msg, at)
		if !ok || d < 0 || d > time.Second {
			t.Errorf("status %q: age %v", msg, d)
		}
		ages = append(ages, d)
	})
	if err != nil || len(ages) != 5 {
		t.Fatalf("stamped: %d events, err %v", len(ages), err)
	}
}

// TestScenariosSmoke runs every scenario at a tiny size against a freshly
// built kubeq-mcp. It takes several seconds: skipped with -short.
func TestScenariosSmoke(t *testing.T) {
	if testing.Short() {
		testskip.Skip(t, "builds and runs the binary: skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "kubeq-mcp")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	env := &Env{Bin: bin, Logf: t.Logf}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	lat, err := Latency(ctx, env, 5, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if lat.Baseline.N != 5 || lat.HTTP.N != 5 || lat.Stdio.N != 5 {
		t.Fatalf("latency samples: %+v", lat)
	}
	thr, err := Throughput(ctx, env, 2000, "")
	if err != nil {
		t.Fatal(err)
	}
	if thr.HTTP <= 0 || thr.Stdio <= 0 || thr.HTTPProgress == 0 {
		t.Fatalf("throughput: %+v", thr)
	}
	conc, err := Concurrency(ctx, env, 20, "")
	if err != nil {
		t.Fatal(err)
	}
	if conc.OK != 20 || conc.PeakRSS == 0 {
		t.Fatalf("concurrency: %+v", conc)
	}
	cold, err := ColdStart(ctx, env, 2)
	if err != nil {
		t.Fatal(err)
	}
	if cold.KubeqMCP.N != 2 || cold.KubeqMCP.P50 <= 0 {
		t.Fatalf("cold start: %+v", cold)
	}
	idle, err := Idle(ctx, env, 3)
	if err != nil {
		t.Fatal(err)
	}
	if idle.StdioRSS == 0 || idle.HTTPRSS == 0 || idle.HTTPRSSOpen == 0 {
		t.Fatalf("idle: %+v", idle)
	}
}
