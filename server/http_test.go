package server

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

func postInitialize(t *testing.T, url string, header map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+MCPPath, strings.NewReader(initializeBody))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func TestOriginCheck(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.AllowedOrigins = []string{"https://console.example.com"} })
	hs := httptest.NewServer(f.srv.HTTPHandler())
	t.Cleanup(hs.Close)
	cases := map[string]int{
		"":                            http.StatusOK, // not a browser
		"http://localhost:6274":       http.StatusOK,
		"http://127.0.0.1":            http.StatusOK,
		"http://[::1]:3000":           http.StatusOK,
		"https://console.example.com": http.StatusOK,
		"https://evil.example":        http.StatusForbidden,
		"http://localhost.evil.com":   http.StatusForbidden,
		"null":                        http.StatusForbidden,
	}
	for origin, want := range cases {
		t.Run(origin, func(t *testing.T) {
			h := map[string]string{}
			if origin != "" {
				h["Origin"] = origin
			}
			assert.Equal(t, want, postInitialize(t, hs.URL, h).StatusCode)
		})
	}
}

// mcp-go's DNS-rebinding check (Host) and ours (Origin) side by side: a
// request on a loopback connection is refused when either names a foreign
// site, and each lets through what only the other catches.
func TestHostAndOriginChecks(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.AllowedHosts = []string{"mcp.example.com"} })
	hs := httptest.NewServer(f.srv.HTTPHandler()) // listens on 127.0.0.1
	t.Cleanup(hs.Close)
	cases := []struct {
		name, host, origin string
		want               int
	}{
		{"loopback host, no origin", "", "", http.StatusOK},
		{"localhost host", "localhost:8080", "", http.StatusOK},
		{"allowed host (a reverse proxy's name)", "mcp.example.com", "", http.StatusOK},
		{"rebinding: foreign host, no origin", "evil.example:8080", "", http.StatusForbidden},
		{"rebinding: foreign host and origin", "evil.example:8080", "http://evil.example:8080", http.StatusForbidden},
		{"cross-site post to 127.0.0.1: loopback host, foreign origin", "", "http://evil.example", http.StatusForbidden},
		{"host that only starts like localhost", "localhost.evil.example", "", http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, hs.URL+MCPPath, strings.NewReader(initializeBody))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			if c.host != "" {
				req.Host = c.host
			}
			if c.origin != "" {
				req.Header.Set("Origin", c.origin)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			_ = resp.Body.Close()
			assert.Equal(t, c.want, resp.StatusCode)
		})
	}
}

func TestBearerToken(t *testing.T) {
	const token = "s3cret-token-value"
	f := newFixture(t, func(c *Config) { c.HTTPToken = token })
	hs := httptest.NewServer(f.srv.HTTPHandler())
	t.Cleanup(hs.Close)

	for name, auth := range map[string]string{
		"none":         "",
		"wrong":        "Bearer nope",
		"prefix":       "Bearer " + token[:5],
		"other scheme": "Basic " + token,
	} {
		t.Run(name, func(t *testing.T) {
			h := map[string]string{}
			if auth != "" {
				h["Authorization"] = auth
			}
			resp := postInitialize(t, hs.URL, h)
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			assert.NotEmpty(t, resp.Header.Get("WWW-Authenticate"))
		})
	}
	resp := postInitialize(t, hs.URL, map[string]string{"Authorization": "Bearer " + token})
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	// Liveness needs no token: orchestrators probe it.
	hr, err := http.Get(hs.URL + HealthPath)
	require.NoError(t, err)
	_ = hr.Body.Close()
	assert.Equal(t, http.StatusOK, hr.StatusCode)
}

// mcp-go checks Host on a loopback listener only, until --allowed-hosts is
// set: from then on it checks every request, whatever address it came in
// on, so every name clients use must be listed (README, --allowed-hosts).
func TestAllowedHostsApplyOnEveryListener(t *testing.T) {
	onLAN := func(h http.Handler, host string) int {
		req := httptest.NewRequest(http.MethodPost, "http://"+host+MCPPath, strings.NewReader(initializeBody))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		lan := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 8080}
		req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, lan))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	open := newFixture(t, nil).srv.HTTPHandler()
	assert.Equal(t, http.StatusOK, onLAN(open, "10.0.0.5:8080"), "no list: Host is not checked off loopback")
	assert.Equal(t, http.StatusOK, onLAN(open, "anything.example"), "no list: Host is not checked off loopback")

	listed := newFixture(t, func(c *Config) { c.AllowedHosts = []string{"mcp.example.com"} }).srv.HTTPHandler()
	assert.Equal(t, http.StatusOK, onLAN(listed, "mcp.example.com"))
	assert.Equal(t, http.StatusOK, onLAN(listed, "127.0.0.1:8080"), "loopback names always pass")
	assert.Equal(t, http.StatusForbidden, onLAN(listed, "10.0.0.5:8080"), "with a list, an unlisted address is refused off loopback too")
}
