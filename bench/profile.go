package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
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
