package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// liveSessions is the number of sessions the cap counts as live.
func (c *sessionCap) liveSessions() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live
}

// rawRequest sends one request to /mcp with the given session id (none
// when empty) and returns its status and body. A stream's body is not read:
// the request is cancelled once its headers are in.
func rawRequest(t *testing.T, base, method, session, version, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+MCPPath, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	if version != "" {
		req.Header.Set("Mcp-Protocol-Version", version)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return resp.StatusCode, ""
	}
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// openRawSession initializes a 2025-11-25 session and returns its id.
func openRawSession(t *testing.T, base string) string {
	t.Helper()
	resp := postInitialize(t, base, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, _ = io.Copy(io.Discard, resp.Body)
	id := resp.Header.Get("Mcp-Session-Id")
	require.NotEmpty(t, id)
	return id
}

// An initialize POST opens a new session whatever Mcp-Session-Id it
// carries (mcp-go ignores the header there), so the header does not spare
// it the cap.
func TestSessionCapHoldsAgainstMadeUpIDsOnInitialize(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxSessions = 2 })
	hs := httptest.NewServer(f.srv.HTTPHandler())
	t.Cleanup(hs.Close)

	var opened []string
	for i := range 5 {
		resp := postInitialize(t, hs.URL, map[string]string{
			"Mcp-Session-Id":       fmt.Sprintf("made-up-%d", i),
			"Mcp-Protocol-Version": "2025-11-25",
		})
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		if i < 2 {
			require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
			opened = append(opened, resp.Header.Get("Mcp-Session-Id"))
			continue
		}
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(b))
		assert.Contains(t, string(b), "too many sessions: the server holds 2")
	}
	assert.Equal(t, 2, f.srv.sessions.liveSessions())
	for i, id := range opened {
		assert.NotEqual(t, fmt.Sprintf("made-up-%d", i), id, "the made-up id was not taken")
		status, body := rawRequest(t, hs.URL, http.MethodPost, id, "2025-11-25", `{"jsonrpc":"2.0","id":2,"method":"ping"}`)
		assert.Equal(t, http.StatusOK, status, body)
	}
}

// A request naming a session that does not exist, or no longer does, is
// answered 404 (MCP 2025-11-25, streamable HTTP) and opens nothing: a GET
// would otherwise have mcp-go open a session under that id, past the cap,
// which outlives the connection.
func TestSessionUnknownIDIsNotFound(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxSessions = 2 })
	hs := httptest.NewServer(f.srv.HTTPHandler())
	t.Cleanup(hs.Close)
	live := openRawSession(t, hs.URL)
	openRawSession(t, hs.URL)
	require.Equal(t, 2, f.srv.sessions.liveSessions())

	ping := `{"jsonrpc":"2.0","id":2,"method":"ping"}`
	unknown := []string{"made-up", "mcp-session-00000000-0000-4000-8000-000000000000"}
	for i := range 5 {
		unknown = append(unknown, fmt.Sprintf("made-up-%d", i))
	}
	versions := []string{"", "2025-11-25"}
	for _, id := range unknown {
		for _, version := range versions {
			status, body := rawRequest(t, hs.URL, http.MethodGet, id, version, "")
			assert.Equal(t, http.StatusNotFound, status, "GET %s (version %q): %s", id, version, body)
			if status == http.StatusNotFound {
				var m struct {
					Error struct {
						Code    int    `json:"code"`
						Message string `json:"message"`
					} `json:"error"`
				}
				require.NoError(t, json.Unmarshal([]byte(body), &m), body)
				assert.Equal(t, mcp.INVALID_REQUEST, m.Error.Code)
				assert.Contains(t, m.Error.Message, "session not found")
			}
		}
	}
	assert.Equal(t, 2, f.srv.sessions.liveSessions(), "no GET opened a session")
	// mcp-go's own 404 for a POST, and ours for a DELETE.
	for _, id := range unknown {
		for _, version := range versions {
			status, body := rawRequest(t, hs.URL, http.MethodPost, id, version, ping)
			assert.Equal(t, http.StatusNotFound, status, "POST %s (version %q): %s", id, version, body)
			status, body = rawRequest(t, hs.URL, http.MethodDelete, id, version, "")
			assert.Equal(t, http.StatusNotFound, status, "DELETE %s (version %q): %s", id, version, body)
		}
	}
	assert.Equal(t, 2, f.srv.sessions.liveSessions(), "no session was opened")

	// The live session is served as before: its GET stream opens and
	// nothing is added by it.
	status, body := rawRequest(t, hs.URL, http.MethodGet, live, "2025-11-25", "")
	assert.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, 2, f.srv.sessions.liveSessions())

	// Once deleted, the session is unknown to every method.
	status, body = rawRequest(t, hs.URL, http.MethodDelete, live, "2025-11-25", "")
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, 1, f.srv.sessions.liveSessions())
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		status, body := rawRequest(t, hs.URL, method, live, "2025-11-25", ping)
		assert.Equal(t, http.StatusNotFound, status, "%s after DELETE: %s", method, body)
	}
	assert.Equal(t, 1, f.srv.sessions.liveSessions())

	// The room it left is taken by a new session, and only one.
	openRawSession(t, hs.URL)
	assert.Equal(t, http.StatusServiceUnavailable, postInitialize(t, hs.URL, nil).StatusCode)
	assert.Equal(t, 2, f.srv.sessions.liveSessions())
}

// The 2026-07-28 era has no sessions: mcp-go refuses its GET and DELETE
// (405) whatever id they carry, and a GET of that era opens nothing, so it
// takes no place under the cap.
func TestSessionModernEraGetAndDelete(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxSessions = 1 })
	hs := httptest.NewServer(f.srv.HTTPHandler())
	t.Cleanup(hs.Close)
	openRawSession(t, hs.URL)
	for _, id := range []string{"", "made-up"} {
		for _, method := range []string{http.MethodGet, http.MethodDelete} {
			status, body := rawRequest(t, hs.URL, method, id, mcp.ProtocolVersion20260728, "")
			assert.Equal(t, http.StatusMethodNotAllowed, status, "%s with id %q: %s", method, id, body)
		}
	}
	assert.Equal(t, 1, f.srv.sessions.liveSessions())
}
