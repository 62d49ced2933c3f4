package page

// The page in a real browser: headless Chromium, driven with chromedp,
// reads what a human would see and clicks what a human would click.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/internal/browsertest"
)

// browserPage is one page on a loopback listener and a tab showing it.
type browserPage struct {
	ticket *Ticket
	url    string
	tab    context.Context
}

func openInBrowser(t *testing.T, browser context.Context, l *Loopback, req Request, life time.Duration) *browserPage {
	t.Helper()
	tk, u, err := l.Open(req, time.Now().Add(life), testJudge(req.Confirm))
	require.NoError(t, err)
	t.Cleanup(tk.Close)
	tab := browsertest.Tab(t, browser, 60*time.Second)
	resp, err := chromedp.Run(tab, chromedp.NavigateResponse(u))
	require.NoError(t, err)
	require.EqualValues(t, http.StatusOK, resp.Status)
	return &browserPage{ticket: tk, url: u, tab: tab}
}

func text(t *testing.T, tab context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(t, err, sel)
	return s
}

func eval[T any](t *testing.T, tab context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(tab, chromedp.Evaluate[T](js))
	require.NoError(t, err, js)
	return v
}

// submit clicks a button and waits for the page the post answers with.
func submit(t *testing.T, tab context.Context, button string) {
	t.Helper()
	require.NoError(t, chromedp.Do(tab, chromedp.Click(chromedp.CSS(button))))
	require.NoError(t, chromedp.Do(tab, chromedp.WaitVisible(chromedp.CSS("h1#outcome"))))
}

func waitDecision(t *testing.T, tk *Ticket) (Decision, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return tk.Wait(ctx)
}

func TestPageInABrowser(t *testing.T) {
	browser := browsertest.New(t)
	l := NewLoopback(New(Options{}), time.Minute, nil)
	t.Cleanup(func() { l.Close(context.Background()) })

	t.Run("a human reads the gate, types the name and approves", func(t *testing.T) {
		req := podRequest
		req.YAML = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web-1\n  namespace: shop"
		p := openInBrowser(t, browser, l, req, time.Minute)
		assert.Equal(t, "kubectl delete pod web-1 -n shop", text(t, p.tab, "#command"))
		assert.Equal(t, "HIGH", text(t, p.tab, "#risk"))
		assert.Equal(t, "act-1", text(t, p.tab, "#approval-id"))
		assert.Equal(t, "conv-1", text(t, p.tab, "#conversation"))
		assert.Contains(t, text(t, p.tab, "#yaml"), "namespace: shop")
		assert.Contains(t, text(t, p.tab, "label[for=confirm]"), "web-1")
		body := text(t, p.tab, "main")
		assert.Contains(t, body, "the command runs now on your cluster, exactly as shown")
		assert.Equal(t, 0, eval[int](t, p.tab, "document.scripts.length"), "the page needs no JavaScript")
		browsertest.Screenshot(t, p.tab, browsertest.ArtifactDir(), "approval-page.png")

		require.NoError(t, chromedp.Do(p.tab, chromedp.SendKeys(chromedp.CSS("#confirm"), "web-1"),
			chromedp.SendKeys(chromedp.CSS("#reason"), "planned restart")))
		submit(t, p.tab, "#approve")
		assert.Equal(t, "Approved", text(t, p.tab, "#outcome"))
		d, err := waitDecision(t, p.ticket)
		require.NoError(t, err)
		assert.True(t, d.Approved)
		assert.Equal(t, Submission{Decision: "approve", Confirm: "web-1", Comment: "planned restart"}, d.Submission)

		// Reuse: going back and posting again, or reloading, gets 410.
		resp, err := chromedp.Run(p.tab, chromedp.NavigateResponse(p.url))
		require.NoError(t, err)
		assert.EqualValues(t, http.StatusGone, resp.Status)
		assert.Contains(t, text(t, p.tab, "#why"), "A page can be used once")
		d, err = waitDecision(t, p.ticket)
		require.NoError(t, err)
		assert.True(t, d.Approved, "unchanged")
	})

	t.Run("deny needs no name", func(t *testing.T) {
		p := openInBrowser(t, browser, l, podRequest, time.Minute)
		submit(t, p.tab, "#deny")
		assert.Equal(t, "Denied", text(t, p.tab, "#outcome"))
		d, err := waitDecision(t, p.ticket)
		require.NoError(t, err)
		assert.False(t, d.Approved)
		assert.Equal(t, "user_denied", d.Reason)
	})

	t.Run("a wrong name is a denial", func(t *testing.T) {
		p := openInBrowser(t, browser, l, podRequest, time.Minute)
		require.NoError(t, chromedp.Do(p.tab, chromedp.SendKeys(chromedp.CSS("#confirm"), "web-2")))
		submit(t, p.tab, "#approve")
		assert.Equal(t, "Denied", text(t, p.tab, "#outcome"))
		assert.Contains(t, text(t, p.tab, "#why"), "did not match")
		d, err := waitDecision(t, p.ticket)
		require.NoError(t, err)
		assert.False(t, d.Approved)
		assert.Equal(t, "confirmation_mismatch", d.Reason)
	})

	t.Run("approve with no name typed is held by the browser", func(t *testing.T) {
		p := openInBrowser(t, browser, l, podRequest, time.Minute)
		require.NoError(t, chromedp.Do(p.tab, chromedp.Click(chromedp.CSS("#approve"))))
		assert.False(t, eval[bool](t, p.tab, "document.querySelector('form').checkValidity()"))
		assert.Equal(t, 1, l.pages.OpenCount(), "nothing was posted")
		submit(t, p.tab, "#deny")
	})

	t.Run("an expired page is 410 and the wait ends denied", func(t *testing.T) {
		const life = 1500 * time.Millisecond
		p := openInBrowser(t, browser, l, podRequest, life)
		require.NoError(t, chromedp.Do(p.tab, chromedp.SendKeys(chromedp.CSS("#confirm"), "web-1")))
		_, err := waitDecision(t, p.ticket)
		require.ErrorIs(t, err, ErrExpired)
		submit(t, p.tab, "#approve")
		assert.Equal(t, "This approval page is closed", text(t, p.tab, "#outcome"))
		_, err = waitDecision(t, p.ticket)
		require.ErrorIs(t, err, ErrExpired, "the late click changed nothing")
	})

	t.Run("an HTML and script payload is inert text", func(t *testing.T) {
		const payload = `kubectl delete pod x </pre><script>window.pwned=1</script>` +
			`<img src=x onerror="window.pwned=2"><b id=bold>bold</b>`
		req := Request{ApprovalID: "act-x<script>window.pwned=3</script>", Command: payload, Risk: "high",
			YAML: "<script>window.pwned=4</script>", Conversation: "c", Confirm: "x"}
		p := openInBrowser(t, browser, l, req, time.Minute)
		assert.Equal(t, payload, text(t, p.tab, "#command"), "shown exactly, as text")
		assert.Equal(t, "<script>window.pwned=4</script>", text(t, p.tab, "#yaml"))
		assert.Equal(t, "undefined", eval[string](t, p.tab, "typeof window.pwned"), "no script ran")
		assert.Equal(t, 0, eval[int](t, p.tab, "document.querySelectorAll('script, img, #bold').length"),
			"no element was made from the payload")
		submit(t, p.tab, "#deny")
		assert.Contains(t, text(t, p.tab, "#command"), "<script>")
		assert.Equal(t, "undefined", eval[string](t, p.tab, "typeof window.pwned"))
	})

	t.Run("works with JavaScript turned off", func(t *testing.T) {
		tk, u, err := l.Open(podRequest, time.Now().Add(time.Minute), testJudge(podRequest.Confirm))
		require.NoError(t, err)
		t.Cleanup(tk.Close)
		tab := browsertest.Tab(t, browser, 60*time.Second)
		_, err = chromedp.Call(tab, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		require.NoError(t, err)
		// Scripts are really off in this tab: a page's own script does not run.
		probe := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`<title>off</title><script>document.title = "on"</script>`))
		}))
		t.Cleanup(probe.Close)
		require.NoError(t, chromedp.Do(tab, chromedp.Navigate(probe.URL)))
		title, err := chromedp.Run(tab, chromedp.Title())
		require.NoError(t, err)
		require.Equal(t, "off", title)

		require.NoError(t, chromedp.Do(tab, chromedp.Navigate(u)))
		assert.Equal(t, "kubectl delete pod web-1 -n shop", text(t, tab, "#command"))
		require.NoError(t, chromedp.Do(tab, chromedp.SendKeys(chromedp.CSS("#confirm"), "web-1")))
		submit(t, tab, "#approve")
		assert.Equal(t, "Approved", text(t, tab, "#outcome"))
		d, err := waitDecision(t, tk)
		require.NoError(t, err)
		assert.True(t, d.Approved)
	})

	t.Run("readable on a phone", func(t *testing.T) {
		p := openInBrowser(t, browser, l, podRequest, time.Minute)
		require.NoError(t, chromedp.Do(p.tab, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3))))
		require.NoError(t, chromedp.Do(p.tab, chromedp.Reload()))
		assert.LessOrEqual(t, eval[int](t, p.tab, "document.documentElement.scrollWidth"), 390, "no sideways scrolling")
		assert.GreaterOrEqual(t, eval[float64](t, p.tab, "document.querySelector('#approve').getBoundingClientRect().height"), 40.0,
			"a button a thumb can hit")
		browsertest.Screenshot(t, p.tab, browsertest.ArtifactDir(), "approval-page-phone.png")
		submit(t, p.tab, "#deny")
	})

	assert.False(t, strings.Contains(l.Listening(), "approve"))
}
