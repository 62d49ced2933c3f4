package main

// The approval page through the built binary: a client that shows no form
// (the go-sdk client without an elicitation handler) over stdio, in both
// protocol eras, with --approval-browser set to a script that hands the
// page's URL to the test, which opens it in headless Chromium and acts as
// the human. Then the URL-mode path, with a client that declares it, over
// stdio and HTTP in both eras.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/internal/browsertest"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// pageTimeout is the approval timeout of the page tests that a human
// answers: long enough for a loaded machine to drive a browser.
const pageTimeout = 2 * time.Minute

// pageBinary is a kubeq-mcp binary and one client session to it, with
// everything the model or the logs could see recorded.
type pageBinary struct {
	t         *testing.T
	backend   *kubeqtest.Server
	transport string
	urlFile   string // where the --approval-browser script writes each URL
	stderr    *syncBuffer
	audit     string
	cs        *sdk.ClientSession

	mu       sync.Mutex
	progress []string
	logs     []string
	results  []string // every tool result, as JSON
	urls     chan string
}

func startPageBinary(t *testing.T, transport, version string, timeout time.Duration, urlMode bool) *pageBinary {
	t.Helper()
	backend := kubeqtest.NewServer(kubeqtest.WithHeartbeat(20 * time.Millisecond))
	t.Cleanup(backend.Close)
	dir := t.TempDir()
	p := &pageBinary{t: t, backend: backend, transport: transport, urlFile: filepath.Join(dir, "urls"),
		stderr: &syncBuffer{}, audit: filepath.Join(dir, "audit.jsonl"), urls: make(chan string, 8)}
	browser := filepath.Join(dir, "browser.sh")
	require.NoError(t, os.WriteFile(browser, []byte("#!/bin/sh\nfor a; do last=$a; done\n"+
		"printf '%s\\n' \"$last\" >> '"+p.urlFile+"'\n"), 0o755))
	args := []string{"--url", backend.URL, "--approval-timeout", timeout.String(), "--audit-log", p.audit,
		"--log-level", "debug", "--retry-delays", "10ms", "--approval-browser", browser + " --new-window"}

	opts := &sdk.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *sdk.ProgressNotificationClientRequest) {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.progress = append(p.progress, r.Params.Message)
		},
		LoggingMessageHandler: func(_ context.Context, r *sdk.LoggingMessageRequest) {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.logs = append(p.logs, fmt.Sprint(r.Params.Data))
		},
	}
	if urlMode {
		opts.Capabilities = &sdk.ClientCapabilities{Elicitation: &sdk.ElicitationCapabilities{URL: &sdk.URLElicitationCapabilities{}}}
		opts.ElicitationHandler = func(_ context.Context, req *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
			if req.Params.Mode != "url" {
				return nil, fmt.Errorf("a URL-mode client got a %q elicitation", req.Params.Mode)
			}
			if strings.Contains(req.Params.Message, "web-9") {
				return &sdk.ElicitResult{Action: "decline"}, nil // the human will not open it
			}
			p.urls <- req.Params.URL
			return &sdk.ElicitResult{Action: "accept"}, nil
		}
	}
	var tr sdk.Transport
	if transport == "http" {
		_, endpoint := startHTTPBinary(t, kubeqMCPBinary(t), p.stderr, args...)
		tr = &sdk.StreamableClientTransport{Endpoint: endpoint, MaxRetries: -1}
	} else {
		cmd := exec.Command(kubeqMCPBinary(t), args...)
		cmd.Stderr = p.stderr
		tr = &sdk.CommandTransport{Command: cmd}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "page-test", Version: "1"}, opts).
		Connect(ctx, tr, &sdk.ClientSessionOptions{ProtocolVersion: version})
	require.NoError(t, err, p.stderr.String())
	t.Cleanup(func() { _ = cs.Close() })
	p.cs = cs
	if version != "" {
		lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer lcancel()
		require.NoError(t, cs.SetLoggingLevel(lctx, &sdk.SetLoggingLevelParams{Level: "debug"}))
	}
	return p
}

// call is a kube_query in flight.
type call struct {
	done chan struct{}
	res  *sdk.CallToolResult
	err  error
}

func (p *pageBinary) ask(question string) *call {
	c := &call{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		ctx, cancel := context.WithTimeout(context.Background(), pageTimeout+time.Minute)
		defer cancel()
		params := &sdk.CallToolParams{Name: "kube_query", Arguments: map[string]any{"question": question}}
		params.SetProgressToken("page-" + question)
		c.res, c.err = p.cs.CallTool(ctx, params)
		if c.res != nil {
			raw, _ := c.res.MarshalJSON()
			p.mu.Lock()
			p.results = append(p.results, string(raw))
			p.mu.Unlock()
		}
	}()
	return c
}

func (c *call) wait(t *testing.T) *sdk.CallToolResult {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(pageTimeout + time.Minute):
		t.Fatal("the call did not end")
	}
	require.NoError(t, c.err)
	require.False(t, c.res.IsError, "%v", c.res.Content)
	return c.res
}

var pageURL = regexp.MustCompile(`^http://127\.0\.0\.1:\d+/approve/[A-Za-z0-9_-]{43}$`)

// browserURL is the next URL the --approval-browser script received.
func (p *pageBinary) browserURL(c *call) string {
	t := p.t
	t.Helper()
	var u string
	require.Eventually(t, func() bool {
		raw, _ := os.ReadFile(p.urlFile)
		lines := strings.Fields(string(raw))
		if len(lines) == 0 {
			return false
		}
		u = lines[len(lines)-1]
		return true
	}, 60*time.Second, 20*time.Millisecond, "no URL reached the browser command; stderr:\n%s", p.stderr.String())
	require.NoError(t, os.Remove(p.urlFile))
	require.Regexp(t, pageURL, u)
	return u
}

// clientURL is the next URL the client got in a URL-mode elicitation.
func (p *pageBinary) clientURL() string {
	p.t.Helper()
	select {
	case u := <-p.urls:
		require.Regexp(p.t, `^http://127\.0\.0\.1:\d+/approve/[A-Za-z0-9_-]{43}$`, u)
		return u
	case <-time.After(60 * time.Second):
		p.t.Fatalf("no URL elicitation; stderr:\n%s", p.stderr.String())
		return ""
	}
}

// assertSecretKept checks that no page token reached anything the model or
// a log can read: results, progress, log notifications, stderr at debug,
// the audit file.
func (p *pageBinary) assertSecretKept(urls []string) {
	t := p.t
	t.Helper()
	audit, _ := os.ReadFile(p.audit)
	p.mu.Lock()
	seen := map[string]string{
		"results": strings.Join(p.results, "\n"), "progress": strings.Join(p.progress, "\n"),
		"log notifications": strings.Join(p.logs, "\n"),
	}
	p.mu.Unlock()
	seen["stderr"] = p.stderr.String()
	seen["audit"] = string(audit)
	require.NotEmpty(t, urls)
	for _, u := range urls {
		token := u[strings.LastIndex(u, "/")+1:]
		for where, text := range seen {
			assert.NotContainsf(t, text, token, "the page token is in the %s", where)
		}
	}
	assert.NotEmpty(t, seen["results"])
	assert.Contains(t, seen["stderr"], "approval decision", "decisions are logged")
}

func approvalOf(t *testing.T, res *sdk.CallToolResult) map[string]any {
	t.Helper()
	got := binApprovals(t, res)
	require.Len(t, got, 1)
	return got[0]
}

func conversationOf(res *sdk.CallToolResult) string {
	return res.StructuredContent.(map[string]any)["conversation_id"].(string)
}

func gateScript(id, command string) kubeqtest.Script {
	return kubeqtest.Script{kubeqtest.Gate{Command: command, ActionID: id,
		OnApprove: kubeqtest.Script{kubeqtest.Tokens("Ran " + id + ".")},
		OnDeny:    kubeqtest.Script{kubeqtest.Tokens("Did not run " + id + ".")}}}
}

// human acts in the browser on an approval page.
type human struct {
	t       *testing.T
	browser context.Context
}

func (h human) open(u string) context.Context {
	h.t.Helper()
	tab := browsertest.Tab(h.t, h.browser, 60*time.Second)
	resp, err := chromedp.Run(tab, chromedp.NavigateResponse(u))
	require.NoError(h.t, err)
	require.EqualValues(h.t, http.StatusOK, resp.Status)
	return tab
}

func (h human) text(tab context.Context, sel string) string {
	h.t.Helper()
	s, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(h.t, err, sel)
	return s
}

func (h human) click(tab context.Context, sel string) {
	h.t.Helper()
	require.NoError(h.t, chromedp.Do(tab, chromedp.Click(chromedp.CSS(sel)), chromedp.WaitVisible(chromedp.CSS("h1#outcome"))))
}

func (h human) typeName(tab context.Context, name string) {
	h.t.Helper()
	require.NoError(h.t, chromedp.Do(tab, chromedp.SendKeys(chromedp.CSS("#confirm"), name)))
}

func eras() map[string]string { return map[string]string{"2025-11-25": "2025-11-25", "2026-07-28": ""} }

func auditVia(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		m := regexp.MustCompile(`"via":"(\w+)"`).FindStringSubmatch(line)
		if m == nil {
			out = append(out, "")
			continue
		}
		out = append(out, m[1])
	}
	return out
}

func TestBinaryApprovalPage(t *testing.T) {
	h := human{t: t, browser: browsertest.New(t)}
	for eraName, version := range eras() {
		t.Run(eraName, func(t *testing.T) {
			h := human{t: t, browser: h.browser}
			p := startPageBinary(t, "stdio", version, pageTimeout, false)
			b := p.backend
			var urls []string

			// Approve: the human reads the gate, types the name, clicks.
			b.Handle("approve it", gateScript("web-1", "kubectl delete pod web-1 -n shop"))
			c := p.ask("approve it")
			u := p.browserURL(c)
			urls = append(urls, u)
			tab := h.open(u)
			assert.Equal(t, "kubectl delete pod web-1 -n shop", h.text(tab, "#command"))
			assert.Equal(t, "HIGH", h.text(tab, "#risk"))
			assert.Equal(t, "web-1", h.text(tab, "#approval-id"))
			browsertest.Screenshot(t, tab, browsertest.ArtifactDir(), "binary-approval-page-"+eraName+".png")
			h.typeName(tab, "web-1")
			h.click(tab, "#approve")
			assert.Equal(t, "Approved", h.text(tab, "#outcome"))
			res := c.wait(t)
			assert.Equal(t, "user_approved", approvalOf(t, res)["reason"])
			conv := conversationOf(res)
			assert.Equal(t, []string{"approve it", "approve"}, b.MessagesFor(conv))

			// Reuse: the same URL again is 410, and changes nothing.
			resp, err := chromedp.Run(tab, chromedp.NavigateResponse(u))
			require.NoError(t, err)
			assert.EqualValues(t, http.StatusGone, resp.Status)
			assert.Equal(t, []string{"approve it", "approve"}, b.MessagesFor(conv))

			// Deny.
			b.Handle("deny it", gateScript("web-2", "kubectl delete pod web-2 -n shop"))
			c = p.ask("deny it")
			u = p.browserURL(c)
			urls = append(urls, u)
			tab = h.open(u)
			h.click(tab, "#deny")
			res = c.wait(t)
			assert.Equal(t, "user_denied", approvalOf(t, res)["reason"])
			assert.Equal(t, []string{"deny it", "deny"}, b.MessagesFor(conversationOf(res)))

			// A wrong name.
			b.Handle("mistype it", gateScript("web-3", "kubectl delete pod web-3 -n shop"))
			c = p.ask("mistype it")
			u = p.browserURL(c)
			urls = append(urls, u)
			tab = h.open(u)
			h.typeName(tab, "web-4")
			h.click(tab, "#approve")
			assert.Equal(t, "Denied", h.text(tab, "#outcome"))
			res = c.wait(t)
			assert.Equal(t, "confirmation_mismatch", approvalOf(t, res)["reason"])
			assert.Equal(t, []string{"mistype it", "deny"}, b.MessagesFor(conversationOf(res)))

			// A command carrying HTML and script is inert text.
			const payload = `kubectl delete pod x </pre><script>window.pwned=1</script><img src=x onerror="window.pwned=2">`
			b.Handle("payload", gateScript("web-5", payload))
			c = p.ask("payload")
			u = p.browserURL(c)
			urls = append(urls, u)
			tab = h.open(u)
			assert.Equal(t, payload, h.text(tab, "#command"))
			pwned, err := chromedp.Run(tab, chromedp.Evaluate[string]("typeof window.pwned"))
			require.NoError(t, err)
			assert.Equal(t, "undefined", pwned, "no script ran")
			n, err := chromedp.Run(tab, chromedp.Evaluate[int]("document.querySelectorAll('script, img').length"))
			require.NoError(t, err)
			assert.Zero(t, n)
			h.click(tab, "#deny")
			res = c.wait(t)
			assert.Equal(t, "user_denied", approvalOf(t, res)["reason"])

			// Only the human's approval was an approve.
			for _, d := range b.Decisions() {
				assert.Equalf(t, d.ActionID == "web-1", d.Approved, "gate %s", d.ActionID)
			}
			p.mu.Lock()
			assert.Contains(t, p.progress, "waiting for your decision in the approval page opened in your browser")
			p.mu.Unlock()
			assert.Equal(t, []string{"page", "page", "page", "page"}, auditVia(t, p.audit))
			p.assertSecretKept(urls)
		})
	}
}

func TestBinaryApprovalPageExpires(t *testing.T) {
	h := human{t: t, browser: browsertest.New(t)}
	const short = 3 * time.Second
	for eraName, version := range eras() {
		t.Run(eraName, func(t *testing.T) {
			p := startPageBinary(t, "stdio", version, short, false)
			p.backend.Handle("let it expire", gateScript("web-6", "kubectl delete pod web-6 -n shop"))
			c := p.ask("let it expire")
			u := p.browserURL(c)
			tab := h.open(u)
			h.typeName(tab, "web-6")
			res := c.wait(t) // nobody clicked
			assert.Equal(t, "timed_out", approvalOf(t, res)["reason"])
			assert.Equal(t, []string{"let it expire", "deny"}, p.backend.MessagesFor(conversationOf(res)))
			h.click(tab, "#approve") // too late
			assert.Equal(t, "This approval page is closed", h.text(tab, "#outcome"))
			time.Sleep(200 * time.Millisecond)
			assert.Equal(t, []string{"let it expire", "deny"}, p.backend.MessagesFor(conversationOf(res)),
				"the late click sent nothing")
			p.assertSecretKept([]string{u})
		})
	}
}

func TestBinaryApprovalPageURLMode(t *testing.T) {
	h := human{t: t, browser: browsertest.New(t)}
	for _, tr := range []string{"stdio", "http"} {
		for eraName, version := range eras() {
			t.Run(tr+"/"+eraName, func(t *testing.T) {
				p := startPageBinary(t, tr, version, pageTimeout, true)
				b := p.backend
				b.Handle("approve by url", gateScript("web-7", "kubectl delete pod web-7 -n shop"))
				c := p.ask("approve by url")
				u := p.clientURL()
				tab := h.open(u)
				assert.Equal(t, "kubectl delete pod web-7 -n shop", h.text(tab, "#command"))
				h.typeName(tab, "web-7")
				h.click(tab, "#approve")
				res := c.wait(t)
				assert.Equal(t, "user_approved", approvalOf(t, res)["reason"])
				assert.Equal(t, []string{"approve by url", "approve"}, b.MessagesFor(conversationOf(res)))

				b.Handle("deny by url", gateScript("web-8", "kubectl delete pod web-8 -n shop"))
				c = p.ask("deny by url")
				u2 := p.clientURL()
				tab = h.open(u2)
				h.click(tab, "#deny")
				res = c.wait(t)
				assert.Equal(t, "user_denied", approvalOf(t, res)["reason"])
				assert.Equal(t, []string{"deny by url", "deny"}, b.MessagesFor(conversationOf(res)))

				// Declining to open the page is a denial.
				b.Handle("decline by url", gateScript("web-9", "kubectl delete pod web-9 -n shop"))
				res = p.ask("decline by url").wait(t)
				assert.Equal(t, "user_declined", approvalOf(t, res)["reason"])
				assert.Equal(t, []string{"decline by url", "deny"}, b.MessagesFor(conversationOf(res)))

				_, err := os.Stat(p.urlFile)
				assert.True(t, os.IsNotExist(err), "kubeq-mcp launched no browser itself")
				assert.Equal(t, []string{"url", "url", "url"}, auditVia(t, p.audit))
				p.assertSecretKept([]string{u, u2})
			})
		}
	}
}

// Over HTTP the page is offered only by URL mode: a client with neither
// forms nor URL mode is denied, and no browser is launched.
func TestBinaryHTTPClientWithoutFormsIsDenied(t *testing.T) {
	for eraName, version := range eras() {
		t.Run(eraName, func(t *testing.T) {
			p := startPageBinary(t, "http", version, pageTimeout, false)
			p.backend.Handle("no forms", gateScript("web-10", "kubectl delete pod web-10 -n shop"))
			res := p.ask("no forms").wait(t)
			assert.Equal(t, "elicitation_unsupported", approvalOf(t, res)["reason"])
			assert.Equal(t, []string{"no forms", "deny"}, p.backend.MessagesFor(conversationOf(res)))
			_, err := os.Stat(p.urlFile)
			assert.True(t, os.IsNotExist(err), "no browser launched")
		})
	}
}

// A stdio client without forms whose browser cannot be opened is denied,
// and the log says what to set.
func TestBinaryApprovalPageWithoutABrowser(t *testing.T) {
	backend := kubeqtest.NewServer()
	t.Cleanup(backend.Close)
	backend.Handle("no browser", gateScript("web-11", "kubectl delete pod web-11 -n shop"))
	var stderr syncBuffer
	cmd := exec.Command(kubeqMCPBinary(t), "--url", backend.URL, "--approval-browser",
		filepath.Join(t.TempDir(), "no-such-browser"))
	cmd.Stderr = &stderr
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "page-test", Version: "1"}, nil).
		Connect(ctx, &sdk.CommandTransport{Command: cmd}, nil)
	require.NoError(t, err)
	defer cs.Close()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "kube_query", Arguments: map[string]any{"question": "no browser"}})
	require.NoError(t, err)
	assert.Equal(t, "error", approvalOf(t, res)["reason"])
	assert.Equal(t, []string{"no browser", "deny"}, backend.MessagesFor(conversationOf(res)))
	assert.Contains(t, stderr.String(), "approval page could not be opened in a browser")
	assert.NotContains(t, stderr.String(), "/approve/")
}
