package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/approval/page"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// pageHuman receives approval page URLs (from the browser opener or a
// URL-mode elicitation) and decides on them over plain HTTP, as a browser
// posts the page's form. The browser itself is in approval/page's tests
// and the binary's.
type pageHuman struct {
	urls chan string
	mu   sync.Mutex
	seen []string
}

func newPageHuman() *pageHuman { return &pageHuman{urls: make(chan string, 4)} }

func (h *pageHuman) opener(_ context.Context, u string) error {
	h.mu.Lock()
	h.seen = append(h.seen, u)
	h.mu.Unlock()
	h.urls <- u
	return nil
}

func (h *pageHuman) next(t *testing.T) string {
	t.Helper()
	select {
	case u := <-h.urls:
		return u
	case <-time.After(10 * time.Second):
		t.Fatal("no approval page URL")
		return ""
	}
}

var pageCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// decide posts a decision on the page at u and returns the status.
func (h *pageHuman) decide(t *testing.T, u, decision, confirm string) int {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode
	}
	m := pageCSRF.FindSubmatch(body)
	require.NotNil(t, m)
	form := url.Values{"csrf": {string(m[1])}, "decision": {decision}, "confirm": {confirm}, "reason": {"via the page"}}
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	pu, _ := url.Parse(u)
	req.Header.Set("Origin", pu.Scheme+"://"+pu.Host)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// pageFixture is a fixture whose stdio clients without forms get the page.
func pageFixture(t *testing.T, h *pageHuman, audit io.Writer, timeout time.Duration) *fixture {
	return newFixture(t, func(c *Config) {
		c.ApprovalBrowser = h.opener
		c.AuditLog = audit
		c.ApprovalTimeout = timeout
		c.PageIdle = 100 * time.Millisecond
	})
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func callAsync(t *testing.T, cs *sdk.ClientSession, ctx context.Context, question string) chan *sdk.CallToolResult {
	out := make(chan *sdk.CallToolResult, 1)
	go func() {
		p := &sdk.CallToolParams{Name: "kube_query", Arguments: map[string]any{"question": question}}
		p.SetProgressToken(tokenFor(t))
		res, err := cs.CallTool(ctx, p)
		if err != nil {
			res = &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: err.Error()}}}
		}
		out <- res
	}()
	return out
}

func waitResult(t *testing.T, ch chan *sdk.CallToolResult) *sdk.CallToolResult {
	t.Helper()
	select {
	case res := <-ch:
		return res
	case <-time.After(20 * time.Second):
		t.Fatal("the call did not end")
		return nil
	}
}

func TestApprovalPageOverStdio(t *testing.T) {
	for _, era := range eras {
		t.Run(era.name, func(t *testing.T) {
			h := newPageHuman()
			var audit syncBuf
			f := pageFixture(t, h, &audit, 10*time.Second)
			f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
			cs, prog := f.connect("stdio", clientOpts{version: era.version})

			res := callAsync(t, cs, context.Background(), podQuestion)
			u := h.next(t)
			assert.Equal(t, http.StatusOK, h.decide(t, u, "approve", podTarget))
			r := waitResult(t, res)
			require.False(t, r.IsError, textOf(r))
			assert.Equal(t, []map[string]any{wantApproval("act-pod", podCommand, "high", "approved", "user_approved")},
				approvalsOf(t, r))
			conv := structured(t, r)["conversation_id"].(string)
			assert.Equal(t, []string{podQuestion, "approve"}, f.backend.MessagesFor(conv))
			assert.Equal(t, http.StatusGone, h.decide(t, u, "deny", ""), "a page is used once")
			assert.Equal(t, []string{podQuestion, "approve"}, f.backend.MessagesFor(conv))

			// On the wire the progress comes before the result; the go-sdk
			// client may run its progress handler after returning the result.
			require.Eventually(t, func() bool { return slices.Contains(prog.messages(), pageWaitingBrowser) },
				5*time.Second, 5*time.Millisecond)
			msgs := prog.messages()
			token := u[strings.LastIndex(u, "/")+1:]
			for _, m := range msgs {
				assert.NotContains(t, m, token)
			}
			raw, _ := r.MarshalJSON()
			assert.NotContains(t, string(raw), token)
			assert.Contains(t, audit.String(), `"via":"page"`)
			assert.Contains(t, audit.String(), `"comment":"via the page"`)
			assert.NotContains(t, audit.String(), token)
		})
	}
}

// A call cancelled while its page waits denies, and the page closes.
func TestApprovalPageCancelledCallDenies(t *testing.T) {
	h := newPageHuman()
	f := pageFixture(t, h, nil, 10*time.Second)
	f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
	cs, _ := f.connect("stdio", clientOpts{version: "2025-11-25"})
	ctx, cancel := context.WithCancel(context.Background())
	res := callAsync(t, cs, ctx, podQuestion)
	u := h.next(t)
	cancel()
	waitResult(t, res)
	require.Eventually(t, func() bool {
		for _, d := range f.backend.Decisions() {
			if d.ActionID == "act-pod" {
				return !d.Approved && d.Message == "deny"
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, http.StatusGone, h.decide(t, u, "approve", podTarget), "the page was withdrawn")
	for _, d := range f.backend.Decisions() {
		assert.False(t, d.Approved)
	}
}

// The page expires with the approval timeout: the call denies.
func TestApprovalPageTimesOut(t *testing.T) {
	h := newPageHuman()
	f := pageFixture(t, h, nil, 300*time.Millisecond)
	f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
	cs, _ := f.connect("stdio", clientOpts{version: "2025-11-25"})
	res := callAsync(t, cs, context.Background(), podQuestion)
	u := h.next(t)
	r := waitResult(t, res)
	assert.Equal(t, []map[string]any{wantApproval("act-pod", podCommand, "high", "denied", "timed_out")}, approvalsOf(t, r))
	assert.Equal(t, http.StatusGone, h.decide(t, u, "approve", podTarget))
}

// Over HTTP the browser opener is never used: a client with neither forms
// nor URL mode is denied as before.
func TestApprovalPageNotOfferedOverHTTPWithoutURLMode(t *testing.T) {
	for _, era := range eras {
		t.Run(era.name, func(t *testing.T) {
			h := newPageHuman()
			f := pageFixture(t, h, nil, 10*time.Second)
			f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
			cs, _ := f.connect("http", clientOpts{version: era.version})
			r := call(t, cs, map[string]any{"question": podQuestion})
			assert.Equal(t, []map[string]any{wantApproval("act-pod", podCommand, "high", "denied", "elicitation_unsupported")},
				approvalsOf(t, r))
			h.mu.Lock()
			assert.Empty(t, h.seen)
			h.mu.Unlock()
		})
	}
}

// A URL-mode client gets the link in an elicitation on both transports
// and eras; over HTTP the page is served by the MCP listener itself.
func TestApprovalPageURLMode(t *testing.T) {
	for _, tr := range transports {
		for _, era := range eras {
			t.Run(tr+"/"+era.name, func(t *testing.T) {
				h := newPageHuman()
				var audit syncBuf
				f := newFixture(t, func(c *Config) { c.AuditLog = &audit }) // no browser opener at all
				f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
				var mode string
				opts := &sdk.ClientOptions{
					Capabilities: &sdk.ClientCapabilities{Elicitation: &sdk.ElicitationCapabilities{URL: &sdk.URLElicitationCapabilities{}}},
					ElicitationHandler: func(_ context.Context, req *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
						mode = req.Params.Mode
						if req.Params.URL == "" {
							return nil, errors.New("no URL")
						}
						h.urls <- req.Params.URL
						return &sdk.ElicitResult{Action: "accept"}, nil
					},
				}
				cs := f.dial(&sdk.Implementation{Name: "url-client", Version: "1"}, opts, tr, era.version, &wireLog{})
				res := callAsync(t, cs, context.Background(), podQuestion)
				u := h.next(t)
				assert.Equal(t, "url", mode)
				assert.Contains(t, u, "/approve/")
				assert.Equal(t, http.StatusOK, h.decide(t, u, "approve", "web-2"), "a wrong name")
				r := waitResult(t, res)
				require.False(t, r.IsError, textOf(r))
				assert.Equal(t, []map[string]any{wantApproval("act-pod", podCommand, "high", "denied", "confirmation_mismatch")},
					approvalsOf(t, r))
				assert.Contains(t, audit.String(), `"via":"url"`)
				raw, _ := r.MarshalJSON()
				assert.NotContains(t, string(raw), u[strings.LastIndex(u, "/")+1:])
			})
		}
	}
}

// A 2026-era client that never comes back leaves no parked ticket behind.
func TestParkedPagesAreDroppedAfterExpiry(t *testing.T) {
	p := newPages(Config{Logger: newTestLogger(t)})
	t.Cleanup(func() { p.loopback.Close(context.Background()) })
	judge := func(page.Submission) page.Outcome { return page.Outcome{} }
	old, _, err := p.loopback.Open(page.Request{Command: "a"}, time.Now().Add(time.Minute), judge)
	require.NoError(t, err)
	p.park("old", old, time.Now().Add(-time.Second))
	fresh, _, err := p.loopback.Open(page.Request{Command: "b"}, time.Now().Add(time.Minute), judge)
	require.NoError(t, err)
	p.park("fresh", fresh, time.Now().Add(time.Minute))
	assert.Nil(t, p.claim("old"), "dropped")
	_, err = old.Wait(context.Background())
	require.ErrorIs(t, err, page.ErrWithdrawn, "and its page withdrawn")
	assert.Same(t, fresh, p.claim("fresh"))
	assert.Nil(t, p.claim("fresh"), "a ticket is claimed once")
	fresh.Close()
}

type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// With a bearer token on /mcp, the page on the same listener needs none:
// the browser has none, and the token in the path is the credential.
func TestApprovalPageNeedsNoBearerToken(t *testing.T) {
	const token = "a-bearer-token-of-32-characters!"
	h := newPageHuman()
	f := newFixture(t, func(c *Config) { c.HTTPToken = token })
	f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
	hs := httptest.NewServer(f.srv.HTTPHandler())
	t.Cleanup(hs.Close)
	opts := &sdk.ClientOptions{
		Capabilities: &sdk.ClientCapabilities{Elicitation: &sdk.ElicitationCapabilities{URL: &sdk.URLElicitationCapabilities{}}},
		ElicitationHandler: func(_ context.Context, req *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
			h.urls <- req.Params.URL
			return &sdk.ElicitResult{Action: "accept"}, nil
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "url-client", Version: "1"}, opts).Connect(ctx,
		&sdk.StreamableClientTransport{Endpoint: hs.URL + MCPPath, MaxRetries: -1,
			HTTPClient: &http.Client{Transport: bearer{token, http.DefaultTransport}}},
		&sdk.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cs.Close() })

	resp, err := http.Post(hs.URL+MCPPath, "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "/mcp still needs the token")

	res := callAsync(t, cs, context.Background(), podQuestion)
	u := h.next(t)
	assert.True(t, strings.HasPrefix(u, hs.URL+"/approve/"), "served on the MCP listener: %s", u)
	assert.Equal(t, http.StatusOK, h.decide(t, u, "approve", podTarget), "no bearer token needed")
	r := waitResult(t, res)
	assert.Equal(t, []map[string]any{wantApproval("act-pod", podCommand, "high", "approved", "user_approved")}, approvalsOf(t, r))
}

// A URL handed to an HTTP client names the listener as the client reached
// it: its Host, and https behind a proxy that says so.
func TestPageBaseFollowsTheRequest(t *testing.T) {
	for _, c := range []struct {
		host, proto string
		tls         bool
		want        string
	}{
		{"127.0.0.1:8080", "", false, "http://127.0.0.1:8080"},
		{"mcp.example.com", "https", false, "https://mcp.example.com"},
		{"mcp.example.com", "", true, "https://mcp.example.com"},
	} {
		r := httptest.NewRequest(http.MethodPost, "http://"+c.host+MCPPath, nil)
		if c.proto != "" {
			r.Header.Set("X-Forwarded-Proto", c.proto)
		}
		if !c.tls {
			r.TLS = nil
		} else if r.TLS == nil {
			r.TLS = &tls.ConnectionState{}
		}
		got, _ := withPageBase(context.Background(), r).Value(pageBaseKey{}).(string)
		assert.Equal(t, c.want, got)
	}
}
