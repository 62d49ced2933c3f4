package page

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testJudge approves an approve whose confirmation matches.
func testJudge(confirm string) Judge {
	return func(s Submission) Outcome {
		switch {
		case s.Decision == "deny":
			return Outcome{Reason: "user_denied", Text: "You denied it. It did not run."}
		case confirm != "" && strings.TrimSpace(s.Confirm) != confirm:
			return Outcome{Reason: "confirmation_mismatch", Text: "The name typed did not match, so it was denied."}
		default:
			return Outcome{Approved: true, Reason: "user_approved", Text: "You approved it."}
		}
	}
}

var podRequest = Request{ApprovalID: "act-1", Command: "kubectl delete pod web-1 -n shop", Risk: "high",
	Conversation: "conv-1", Confirm: "web-1"}

// served is a Pages behind an httptest server.
type served struct {
	pages *Pages
	srv   *httptest.Server
}

func serve(t *testing.T, o Options) *served {
	p := New(o)
	mux := http.NewServeMux()
	mux.Handle(PathPrefix, p.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &served{pages: p, srv: srv}
}

func (s *served) open(t *testing.T, req Request, d time.Duration) *Ticket {
	t.Helper()
	tk, err := s.pages.Open(req, time.Now().Add(d), testJudge(req.Confirm))
	require.NoError(t, err)
	t.Cleanup(tk.Close)
	return tk
}

func get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	require.NotNil(t, m, "no csrf input in %s", body)
	return m[1]
}

func post(t *testing.T, u string, form url.Values, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func assertSecurityHeaders(t *testing.T, h http.Header) {
	t.Helper()
	csp := h.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "style-src 'unsafe-inline'", "form-action 'self'", "frame-ancestors 'none'"} {
		assert.Contains(t, csp, d)
	}
	assert.NotContains(t, csp, "script-src")
	assert.Equal(t, "no-store", h.Get("Cache-Control"))
	assert.Equal(t, "no-referrer", h.Get("Referrer-Policy"))
}

func TestPageShowsTheGateAndKeepsTheFormContract(t *testing.T) {
	s := serve(t, Options{})
	req := podRequest
	req.YAML = "kind: Pod\nmetadata: {name: web-1}"
	tk := s.open(t, req, time.Minute)
	resp, body := get(t, s.srv.URL+tk.Path())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assertSecurityHeaders(t, resp.Header)
	for _, want := range []string{"kubectl delete pod web-1 -n shop", "HIGH", "act-1", "conv-1", "kind: Pod",
		`<form method="post">`, `name="decision" value="approve"`, `name="decision" value="deny"`,
		`name="confirm" required`, `<textarea id="reason" name="reason"`, `type="hidden" name="csrf"`,
		`name="viewport"`, "Approve:", "Deny:"} {
		assert.Contains(t, body, want)
	}
	assert.Equal(t, 1, strings.Count(body, "<form"), "one form")
	assert.NotContains(t, body, "<script")
	assert.NotContains(t, body, strings.TrimPrefix(tk.Path(), PathPrefix), "the page does not repeat its token")

	// A lower risk asks for no name; an empty or unknown one does.
	low := s.open(t, Request{ApprovalID: "act-2", Command: "kubectl scale deployment api --replicas=3", Risk: "medium"}, time.Minute)
	_, body = get(t, s.srv.URL+low.Path())
	assert.NotContains(t, body, `name="confirm"`)
	assert.Contains(t, body, "MEDIUM")
	unknown := s.open(t, Request{ApprovalID: "act-3", Command: "kubectl drain node-1", Confirm: "node-1"}, time.Minute)
	_, body = get(t, s.srv.URL+unknown.Path())
	assert.Contains(t, body, "UNKNOWN (treated as high)")
	assert.Contains(t, body, `name="confirm"`)
}

func TestBackendTextIsEscaped(t *testing.T) {
	s := serve(t, Options{})
	payload := `kubectl delete pod x</pre><script>alert(1)</script><img src=x onerror=alert(2)>"'&`
	tk := s.open(t, Request{ApprovalID: `id"><b>`, Command: payload, Risk: `<i>high</i>`,
		YAML: "<script>y</script>", Conversation: "c<u>", Confirm: "<s>x"}, time.Minute)
	_, body := get(t, s.srv.URL+tk.Path())
	for _, raw := range []string{"<script>", "<img", "<b>", "<i>", "<u>", "<s>"} {
		assert.NotContains(t, body, raw)
	}
	assert.Contains(t, body, "&lt;script&gt;alert(1)&lt;/script&gt;")
}

func decide(t *testing.T, s *served, tk *Ticket, form url.Values) (int, string) {
	t.Helper()
	_, body := get(t, s.srv.URL+tk.Path())
	form.Set("csrf", csrfOf(t, body))
	return post(t, s.srv.URL+tk.Path(), form, nil)
}

func TestADecisionIsTakenOnce(t *testing.T) {
	s := serve(t, Options{})
	tk := s.open(t, podRequest, time.Minute)
	_, body := get(t, s.srv.URL+tk.Path())
	csrf := csrfOf(t, body)
	form := url.Values{"csrf": {csrf}, "decision": {"approve"}, "confirm": {"web-1"}, "reason": {"planned"}}
	status, body := post(t, s.srv.URL+tk.Path(), form, nil)
	require.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, "Approved")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := tk.Wait(ctx)
	require.NoError(t, err)
	assert.True(t, d.Approved)
	assert.Equal(t, Submission{Decision: "approve", Confirm: "web-1", Comment: "planned"}, d.Submission)

	// Reuse: 410, and the decision stands.
	form.Set("decision", "deny")
	status, body = post(t, s.srv.URL+tk.Path(), form, nil)
	assert.Equal(t, http.StatusGone, status)
	assert.Contains(t, body, "Nothing was changed")
	resp, _ := get(t, s.srv.URL+tk.Path())
	assert.Equal(t, http.StatusGone, resp.StatusCode)
	d, err = tk.Wait(ctx)
	require.NoError(t, err)
	assert.True(t, d.Approved)
	assert.Zero(t, s.pages.OpenCount())
}

func TestWrongNameAndDenyAreDenials(t *testing.T) {
	s := serve(t, Options{})
	for _, c := range []struct {
		form   url.Values
		reason string
	}{
		{url.Values{"decision": {"approve"}, "confirm": {"web-2"}}, "confirmation_mismatch"},
		{url.Values{"decision": {"approve"}}, "confirmation_mismatch"},
		{url.Values{"decision": {"deny"}}, "user_denied"},
	} {
		tk := s.open(t, podRequest, time.Minute)
		status, body := decide(t, s, tk, c.form)
		require.Equal(t, http.StatusOK, status)
		assert.Contains(t, body, "Denied")
		d, err := tk.Wait(context.Background())
		require.NoError(t, err)
		assert.False(t, d.Approved)
		assert.Equal(t, c.reason, d.Reason)
	}
}

func TestUnknownTokenIs404(t *testing.T) {
	s := serve(t, Options{})
	s.open(t, podRequest, time.Minute)
	for _, path := range []string{PathPrefix + "nope", PathPrefix, PathPrefix + strings.Repeat("A", 43)} {
		resp, body := get(t, s.srv.URL+path)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, path)
		assertSecurityHeaders(t, resp.Header)
		assert.Contains(t, body, "does not exist")
		status, _ := post(t, s.srv.URL+path, url.Values{"decision": {"approve"}}, nil)
		assert.Equal(t, http.StatusNotFound, status)
	}
}

func TestExpiredPageIs410AndWaitSaysExpired(t *testing.T) {
	s := serve(t, Options{})
	const life = 300 * time.Millisecond
	tk := s.open(t, podRequest, life)
	_, body := get(t, s.srv.URL+tk.Path())
	csrf := csrfOf(t, body)
	_, err := tk.Wait(context.Background())
	require.ErrorIs(t, err, ErrExpired)
	resp, _ := get(t, s.srv.URL+tk.Path())
	assert.Equal(t, http.StatusGone, resp.StatusCode)
	status, _ := post(t, s.srv.URL+tk.Path(), url.Values{"csrf": {csrf}, "decision": {"approve"}, "confirm": {"web-1"}}, nil)
	assert.Equal(t, http.StatusGone, status)
	_, err = tk.Wait(context.Background())
	require.ErrorIs(t, err, ErrExpired, "a late post changes nothing")

	// Unwatched, a page still expires by itself.
	tk2 := s.open(t, podRequest, life)
	time.Sleep(life + 50*time.Millisecond)
	resp, _ = get(t, s.srv.URL+tk2.Path())
	assert.Equal(t, http.StatusGone, resp.StatusCode)
}

func TestWithdrawnPageIs410(t *testing.T) {
	s := serve(t, Options{})
	tk := s.open(t, podRequest, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := tk.Wait(ctx)
	require.ErrorIs(t, err, context.Canceled)
	resp, _ := get(t, s.srv.URL+tk.Path())
	assert.Equal(t, http.StatusGone, resp.StatusCode)

	tk2 := s.open(t, podRequest, time.Minute)
	tk2.Close()
	_, err = tk2.Wait(context.Background())
	require.ErrorIs(t, err, ErrWithdrawn)
}

func TestForgedDecisionsChangeNothing(t *testing.T) {
	s := serve(t, Options{})
	tk := s.open(t, podRequest, time.Minute)
	_, body := get(t, s.srv.URL+tk.Path())
	csrf := csrfOf(t, body)
	u := s.srv.URL + tk.Path()
	good := func() url.Values {
		return url.Values{"csrf": {csrf}, "decision": {"approve"}, "confirm": {"web-1"}}
	}
	noCSRF := good()
	noCSRF.Del("csrf")
	wrongCSRF := good()
	wrongCSRF.Set("csrf", csrf+"x")
	twoCSRF := good()
	twoCSRF.Add("csrf", csrf)
	badDecision := good()
	badDecision.Set("decision", "yes")
	twoDecisions := good()
	twoDecisions.Add("decision", "deny")
	for name, c := range map[string]struct {
		form   url.Values
		header map[string]string
		status int
	}{
		"no csrf":        {noCSRF, nil, http.StatusForbidden},
		"wrong csrf":     {wrongCSRF, nil, http.StatusForbidden},
		"two csrf":       {twoCSRF, nil, http.StatusForbidden},
		"foreign origin": {good(), map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		"https origin":   {good(), map[string]string{"Origin": strings.Replace(s.srv.URL, "http:", "https:", 1)}, http.StatusForbidden},
		"cross-site":     {good(), map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		"same-site":      {good(), map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		"null origin":    {good(), map[string]string{"Origin": "null"}, http.StatusForbidden},
		"bad decision":   {badDecision, nil, http.StatusBadRequest},
		"two decisions":  {twoDecisions, nil, http.StatusBadRequest},
	} {
		status, _ := post(t, u, c.form, c.header)
		assert.Equal(t, c.status, status, name)
	}
	assert.Equal(t, 1, s.pages.OpenCount(), "still open")

	// A browser's own word that the post is same-origin is taken whatever
	// Origin it names (behind a TLS proxy the scheme it sees differs).
	status, _ := post(t, u, good(), map[string]string{"Origin": "null", "Sec-Fetch-Site": "same-origin"})
	require.Equal(t, http.StatusOK, status)
	_, err := tk.Wait(context.Background())
	require.NoError(t, err)
	tk = s.open(t, podRequest, time.Minute)
	_, body = get(t, s.srv.URL+tk.Path())
	csrf = csrfOf(t, body)
	u = s.srv.URL + tk.Path()
	status, _ = post(t, u, good(), map[string]string{"Origin": strings.Replace(s.srv.URL, "http:", "https:", 1),
		"Sec-Fetch-Site": "same-origin"})
	require.Equal(t, http.StatusOK, status)
	_, err = tk.Wait(context.Background())
	require.NoError(t, err)
	tk = s.open(t, podRequest, time.Minute)
	_, body = get(t, s.srv.URL+tk.Path())
	csrf = csrfOf(t, body)
	u = s.srv.URL + tk.Path()

	// The same origin, without Sec-Fetch-Site, is taken.
	status, _ = post(t, u, good(), map[string]string{"Origin": s.srv.URL})
	require.Equal(t, http.StatusOK, status)
	d, err := tk.Wait(context.Background())
	require.NoError(t, err)
	assert.True(t, d.Approved)
}

func TestOtherMethodsAreRefused(t *testing.T) {
	s := serve(t, Options{})
	tk := s.open(t, podRequest, time.Minute)
	req, _ := http.NewRequest(http.MethodPut, s.srv.URL+tk.Path(), nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, "GET, HEAD, POST", resp.Header.Get("Allow"))
}

func TestRequestsAreRateLimited(t *testing.T) {
	s := serve(t, Options{Burst: 5, Rate: 0.001})
	tk := s.open(t, podRequest, time.Minute)
	for i := range 5 {
		resp, _ := get(t, s.srv.URL+PathPrefix+"guess")
		require.Equal(t, http.StatusNotFound, resp.StatusCode, i)
	}
	resp, _ := get(t, s.srv.URL+PathPrefix+"guess")
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
	resp, _ = get(t, s.srv.URL+tk.Path())
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "the limit is per client, not per token")
}

func TestOpenPagesAreCapped(t *testing.T) {
	s := serve(t, Options{MaxOpen: 2})
	s.open(t, podRequest, time.Minute)
	tk := s.open(t, podRequest, time.Minute)
	_, err := s.pages.Open(podRequest, time.Now().Add(time.Minute), testJudge(""))
	require.ErrorIs(t, err, ErrTooMany)
	tk.Close()
	s.open(t, podRequest, time.Minute)
}

func TestTokensAreLongAndDistinct(t *testing.T) {
	p := New(Options{})
	seen := map[string]bool{}
	for range 100 {
		tk, err := p.Open(podRequest, time.Now().Add(time.Minute), testJudge(""))
		require.NoError(t, err)
		tok := strings.TrimPrefix(tk.Path(), PathPrefix)
		assert.Len(t, tok, 43, "256 bits, base64url")
		assert.False(t, seen[tok])
		seen[tok] = true
		tk.Close()
	}
}

func TestLoopbackOpensOnDemandAndClosesWhenIdle(t *testing.T) {
	p := New(Options{})
	const idle = 200 * time.Millisecond
	l := NewLoopback(p, idle, nil)
	t.Cleanup(func() { l.Close(context.Background()) })
	assert.Empty(t, l.Listening(), "nothing listens before a page is needed")

	tk, u, err := l.Open(podRequest, time.Now().Add(time.Minute), testJudge("web-1"))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(u, "http://127.0.0.1:"), u)
	addr := l.Listening()
	require.NotEmpty(t, addr)
	resp, _ := get(t, u)
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	// Another name for loopback (a DNS-rebinding page) is refused.
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Host = "attacker.example:" + strings.Split(addr, ":")[1]
	r2, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	r2.Body.Close()
	assert.Equal(t, http.StatusMisdirectedRequest, r2.StatusCode)

	// While a page is open the listener stays, however long.
	time.Sleep(3 * idle)
	assert.Equal(t, addr, l.Listening())
	tk.Close()
	// Closed pages still answer 410 until the idle time passes.
	resp, _ = get(t, u)
	assert.Equal(t, http.StatusGone, resp.StatusCode)
	require.Eventually(t, func() bool { return l.Listening() == "" }, 20*idle, idle/10)
	_, err = http.Get(u)
	assert.Error(t, err, "the listener is closed")

	// The next page opens a new listener.
	tk2, u2, err := l.Open(podRequest, time.Now().Add(time.Minute), testJudge("web-1"))
	require.NoError(t, err)
	resp, _ = get(t, u2)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	tk2.Close()
}

func TestParseOpener(t *testing.T) {
	_, err := ParseOpener("none")
	require.ErrorIs(t, err, ErrNoOpener)
	_, err = ParseOpener(" NONE ")
	require.ErrorIs(t, err, ErrNoOpener)
	assert.Equal(t, []string{"xdg-open"}, osOpener("linux"))
	assert.Equal(t, []string{"open"}, osOpener("darwin"))
	assert.Equal(t, []string{"rundll32", "url.dll,FileProtocolHandler"}, osOpener("windows"))

	dir := t.TempDir()
	out := filepath.Join(dir, "args")
	script := filepath.Join(dir, "browser.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s\\n' \"$@\" > \""+out+"\"\n"), 0o755))
	open, err := ParseOpener(script + "  --new-window  x;y")
	require.NoError(t, err)
	const secret = "http://127.0.0.1:1/approve/SECRET"
	require.NoError(t, open(context.Background(), secret))
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, "--new-window\nx;y\n"+secret+"\n", string(got), "split on spaces, no shell, URL last")

	fail := filepath.Join(dir, "fail.sh")
	require.NoError(t, os.WriteFile(fail, []byte("#!/bin/sh\nexit 3\n"), 0o755))
	open, _ = ParseOpener(fail)
	err = open(context.Background(), secret)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "SECRET")
	open, _ = ParseOpener(filepath.Join(dir, "missing"))
	err = open(context.Background(), secret)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "SECRET")
	assert.False(t, errors.Is(err, ErrNoOpener))
}

// A judge that panics must not leave the pages locked: the post is a
// denial (denial is the default for every failure), the waiter gets it
// without waiting past the deadline, and other pages keep answering.
func TestAPanickingJudgeDenies(t *testing.T) {
	s := serve(t, Options{})
	tk, err := s.pages.Open(podRequest, time.Now().Add(2*time.Second), func(Submission) Outcome { panic("judge bug") })
	require.NoError(t, err)
	t.Cleanup(tk.Close)
	_, body := get(t, s.srv.URL+tk.Path())
	status, body := post(t, s.srv.URL+tk.Path(), url.Values{"csrf": {csrfOf(t, body)}, "decision": {"approve"},
		"confirm": {"web-1"}}, nil)
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, "Denied")

	got := make(chan error, 1)
	var d Decision
	go func() {
		var err error
		d, err = tk.Wait(context.Background())
		got <- err
	}()
	select {
	case err := <-got:
		require.NoError(t, err)
		assert.False(t, d.Approved)
		assert.Equal(t, "error", d.Reason)
	case <-time.After(30 * time.Second):
		t.Fatal("Wait did not return: the pages are still locked")
	}
	other := s.open(t, podRequest, time.Minute)
	resp, _ := get(t, s.srv.URL+other.Path())
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// The opener starts a browser, which has no use for kubeq-mcp's secrets:
// they are not in its environment (a browser hands its environment on to
// everything it starts), while the rest of the environment is.
func TestOpenerGetsNoSecrets(t *testing.T) {
	secrets := map[string]string{"KUBE_Q_API_KEY": "sk-opener-secret-1",
		"KUBEQ_MCP_HTTP_TOKEN": "tok-opener-secret-2", "KUBEQ_MCP_STATE_KEY": "state-opener-secret-3",
		"KUBEQ_MCP_STORE": "redis://user:store-opener-secret-4@localhost:6379/0"}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	t.Setenv("KUBEQ_OPENER_TEST_KEPT", "kept")
	dir := t.TempDir()
	out := filepath.Join(dir, "env")
	script := filepath.Join(dir, "browser.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\nenv > \""+out+"\"\n"), 0o755))
	open, err := ParseOpener(script)
	require.NoError(t, err)
	require.NoError(t, open(context.Background(), "http://127.0.0.1:1/approve/x"))
	env, err := os.ReadFile(out)
	require.NoError(t, err)
	for k, v := range secrets {
		assert.NotContains(t, string(env), v, k)
	}
	assert.Contains(t, string(env), "KUBEQ_OPENER_TEST_KEPT=kept")
	assert.Contains(t, string(env), "PATH=")
}
