package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	mcpserver "github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// reply is what a client got: status, Content-Type and body.
type reply struct {
	status      int
	contentType string
	body        string
}

// postModern posts a 2026-era request for method over a real connection,
// with the headers a conforming client sends, then host and contentType.
func postModern(t *testing.T, base, method, taskID, host, contentType string) reply {
	t.Helper()
	params := map[string]any{"_meta": map[string]any{
		"io.modelcontextprotocol/protocolVersion":    "2026-07-28",
		"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "raw", "version": "1"},
		"io.modelcontextprotocol/clientCapabilities": map[string]any{"extensions": map[string]any{TasksExtension: map[string]any{}}},
	}}
	msg := map[string]any{"jsonrpc": "2.0", "method": method, "params": params}
	if method != "notifications/cancelled" {
		msg["id"] = 7
	}
	if taskID != "" {
		params["taskId"] = taskID
	}
	if method == "tasks/update" {
		params["inputResponses"] = map[string]any{"approval-1": map[string]any{"action": "accept",
			"content": map[string]any{"decision": "approve", "confirm": "web-5"}}}
	}
	if method == "notifications/cancelled" {
		params["requestId"] = 7
	}
	body, err := json.Marshal(msg)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, base+MCPPath, strings.NewReader(string(body)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", method)
	if taskID != "" {
		req.Header.Set("Mcp-Name", taskID)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{resp.StatusCode, resp.Header.Get("Content-Type"), string(out)}
}

// The methods kubeq-mcp answers in front of mcp-go (tasks/*, a 2026-era
// cancellation) pass the same Host and Content-Type checks as those
// mcp-go answers, with the same refusal: a DNS-rebinding page on the
// loopback listener reads no task and answers no approval.
func TestHostCheckCoversTaskMethods(t *testing.T) {
	f := newFixture(t, nil)
	hs := httptest.NewServer(f.srv.HTTPHandler()) // listens on 127.0.0.1
	t.Cleanup(hs.Close)
	const rebound = "rebound.evil.example:8080"
	taskID := strings.Repeat("0", 32)
	ours := []string{"tasks/get", "tasks/update", "tasks/cancel", "notifications/cancelled"}

	// The controls: loopback Host and JSON pass to mcp-go, and to the task
	// lookup (a task of nobody's is not found).
	require.Equal(t, http.StatusOK, postModern(t, hs.URL, "tools/list", "", "", "application/json").status)
	got := postModern(t, hs.URL, "tasks/get", taskID, "", "application/json")
	require.Equal(t, http.StatusBadRequest, got.status)
	require.Contains(t, got.body, "Task not found")

	want := postModern(t, hs.URL, "tools/list", "", rebound, "application/json")
	require.Equal(t, http.StatusForbidden, want.status, want.body)
	require.Contains(t, want.body, `invalid Host header "`+rebound+`"`)
	for _, m := range ours {
		t.Run("rebound host/"+m, func(t *testing.T) {
			assert.Equal(t, want, postModern(t, hs.URL, m, taskID, rebound, "application/json"))
		})
	}

	want = postModern(t, hs.URL, "tools/list", "", "", "text/plain")
	require.Equal(t, http.StatusBadRequest, want.status, want.body)
	require.Contains(t, want.body, "Invalid content type")
	for _, m := range ours {
		t.Run("text/plain/"+m, func(t *testing.T) {
			assert.Equal(t, want, postModern(t, hs.URL, m, taskID, "", "text/plain"))
		})
	}
}

// checkHostAndType is mcp-go's Host and Content-Type checks copied (mcp-go
// does not export them): for every Host, connection, allowlist and
// Content-Type here, kubeq-mcp's handler refuses exactly what a bare mcp-go
// StreamableHTTPServer refuses, with the same status, headers and body,
// and lets through what it lets through. A new mcp-go that changes its
// rule fails this test.
func TestHostCheckMatchesMCPGo(t *testing.T) {
	allowlists := [][]string{nil, {"mcp.example.com"}, {"MCP.example.com:8080"}, {"mcp.example.com:443"}, {"[FE80::1]", "10.0.0.5"}}
	hosts := []string{"127.0.0.1:8080", "localhost", "LocalHost:1", "[::1]:80", "::1", "127.1.2.3",
		"evil.example", "evil.example:8080", "localhost.evil.example", "mcp.example.com",
		"mcp.example.com:8080", "mcp.example.com:9090", "fe80::1", "[fe80:0::1]:99", "10.0.0.5:8080", "",
		"mcp.example.com:80", "mcp.example.com:443", "MCP.EXAMPLE.COM", "[::ffff:127.0.0.1]:1", " 127.0.0.1", "127.0.0.1 "}
	locals := []net.Addr{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080},
		&net.TCPAddr{IP: net.IPv6loopback, Port: 8080}, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 8080}, nil}
	types := []string{"application/json", "application/json; charset=utf-8", "Application/JSON", "text/plain", "", "application/json;;"}

	serve := func(h http.Handler, host string, local net.Addr, contentType string) *httptest.ResponseRecorder {
		// A 2026-era tools/list: it opens no session.
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1"+MCPPath, strings.NewReader(
			`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",`+
				`"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}`))
		req.Host = host
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
		req.Header.Set("Mcp-Method", "tools/list")
		if local != nil {
			req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, local))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	refused := 0
	for _, list := range allowlists {
		ours := newFixture(t, func(c *Config) { c.AllowedHosts = list }).srv.HTTPHandler()
		bare := mcpserver.NewStreamableHTTPServer(mcpserver.NewMCPServer("bare", "1", mcpserver.WithToolCapabilities(false)),
			mcpserver.WithStateful(true), mcpserver.WithAllowedHosts(list...))
		for _, host := range hosts {
			for _, local := range locals {
				for _, ct := range types {
					name := fmt.Sprintf("allowed=%q host=%q local=%v type=%q", list, host, local, ct)
					want, got := serve(bare, host, local, ct), serve(ours, host, local, ct)
					if want.Code == http.StatusOK {
						assert.Equal(t, http.StatusOK, got.Code, name)
						continue
					}
					refused++
					assert.Equal(t, want.Code, got.Code, name)
					assert.Equal(t, want.Body.String(), got.Body.String(), name)
					assert.Equal(t, want.Header(), got.Header(), name)
				}
			}
		}
	}
	assert.Positive(t, refused, "the matrix holds refusals")
}
