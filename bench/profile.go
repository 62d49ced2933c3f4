package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// startProfile asks the instrumented server to write a CPU profile to path.
func startProfile(ctx context.Context, p *Proc, path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("profile path: %w", err)
	}
	_, err = benchPost(ctx, p, CPUProfileStart+"?path="+url.QueryEscape(abs))
	return err
}

func stopProfile(ctx context.Context, p *Proc) {
	_, _ = benchPost(ctx, p, CPUProfileStop)
}

// Goroutines reads the instrumented server's goroutine count.
func Goroutines(ctx context.Context, p *Proc) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Addr+GoroutinesPath, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("goroutines: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("goroutines: %w", err)
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func benchPost(ctx context.Context, p *Proc, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+p.Addr+path, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s: %s", path, resp.Status, b)
	}
	return string(b), nil
}

// goroutineCreators counts the instrumented server's goroutines by the
// function that created them (from /debug/pprof/goroutine?debug=2).
func goroutineCreators(ctx context.Context, p *Proc) (map[string]int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Addr+"/debug/pprof/goroutine?debug=2", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("goroutine dump: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("goroutine dump: %w", err)
	}
	counts := map[string]int{}
	for _, g := range strings.Split(string(b), "\n\n") {
		creator := "main"
		for _, line := range strings.Split(g, "\n") {
			if c, ok := strings.CutPrefix(line, "created by "); ok {
				creator, _, _ = strings.Cut(c, " in goroutine")
			}
		}
		if strings.HasPrefix(g, "goroutine ") {
			counts[creator]++
		}
	}
	return counts, nil
}

// creatorDiff says which creators have more goroutines in after than in
// before, e.g. "+2 net/http.(*Transport).dialConn".
func creatorDiff(before, after map[string]int) string {
	var parts []string
	for k, n := range after {
		if d := n - before[k]; d != 0 {
			parts = append(parts, fmt.Sprintf("%+d %s", d, k))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// saveHeapProfile writes the instrumented server's heap profile to path.
func saveHeapProfile(ctx context.Context, p *Proc, path string) error {
	return savePprof(ctx, p, "heap", path)
}

// saveAllocsProfile writes the instrumented server's allocation profile
// (every allocation since it started) to path.
func saveAllocsProfile(ctx context.Context, p *Proc, path string) error {
	return savePprof(ctx, p, "allocs", path)
}

func savePprof(ctx context.Context, p *Proc, name, path string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Addr+"/debug/pprof/"+name, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s profile: %w", name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s profile: %w", name, err)
	}
	return os.WriteFile(path, b, 0o644)
}
