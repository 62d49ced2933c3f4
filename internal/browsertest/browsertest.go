// Package browsertest starts headless Chromium for tests, driven with
// chromedp. Tests that need it are skipped on a machine without Chromium,
// except in CI (CI=true), where a missing browser is a failure:
// scripts/test.sh installs the Debian package chromium when it is missing.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kubeq-mcp/kubeq-mcp/internal/testskip"
)

// ExecPath finds Chromium: $KUBEQ_CHROMIUM, or chromium, chromium-browser
// or google-chrome on PATH. It returns "" when there is none.
func ExecPath() string {
	if p := os.Getenv("KUBEQ_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// New starts a headless Chromium for t and returns a context for one tab
// in it; more tabs come from chromedp.NewContext on the result. The
// browser stops when t ends.
func New(t testing.TB) context.Context {
	t.Helper()
	path := ExecPath()
	if path == "" {
		testskip.Skip(t, "chromium not installed: apt-get install chromium to run the browser tests (scripts/test.sh does)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests often run as root in containers
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(900, 1200),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// Start the browser now, so a failure to start is reported here. (On
	// this first context, not a child with a timeout: chromedp closes the
	// browser with the context its first run was given.)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium %s: %v", path, err)
	}
	return ctx
}

// Tab opens a new tab in the browser of ctx, bounded by d.
func Tab(t testing.TB, ctx context.Context, d time.Duration) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(ctx)
	tctx, cancelT := context.WithTimeout(tab, d)
	t.Cleanup(func() { cancelT(); cancel() })
	return tctx
}

// Screenshot saves a full-page screenshot of the tab as name under dir,
// and logs its path.
func Screenshot(t testing.TB, ctx context.Context, dir, name string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(path)
	t.Logf("screenshot: %s", abs)
	return abs
}

// ArtifactDir is where tests save artifacts: $KUBEQ_TEST_ARTIFACTS, else
// kubeq-mcp-artifacts in the system's temporary directory (not in the
// tree, which tests must leave clean).
func ArtifactDir() string {
	if d := os.Getenv("KUBEQ_TEST_ARTIFACTS"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "kubeq-mcp-artifacts")
}
