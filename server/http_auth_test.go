package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A 401 says what it is: a bearer token is wanted (error="invalid_token"),
// not OAuth, and the JSON body names --http-token. Clients used to read
// the bare 401 as "start OAuth" and report a failed client registration.
func TestUnauthorizedSaysSendTheToken(t *testing.T) {
	const token = "s3cret-token-value-0123"
	f := newFixture(t, func(c *Config) { c.HTTPToken = token })
	hs := httptest.NewServer(f.srv.HTTPHandler())
	t.Cleanup(hs.Close)
	for name, auth := range map[string]string{"no token": "", "wrong token": "Bearer wrong-token-value-0123"} {
		t.Run(name, func(t *testing.T) {
			h := map[string]string{}
			if auth != "" {
				h["Authorization"] = auth
			}
			resp := postInitialize(t, hs.URL, h)
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			assert.Equal(t, `Bearer realm="kubeq-mcp", error="invalid_token", error_description="send the token configured with --http-token"`,
				resp.Header.Get("WWW-Authenticate"))
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var body struct {
				JSONRPC string `json:"jsonrpc"`
				Error   struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			assert.Equal(t, "2.0", body.JSONRPC)
			assert.Equal(t, "missing or wrong bearer token; send the token configured with --http-token (KUBEQ_MCP_HTTP_TOKEN) "+
				"in the Authorization header with the Bearer scheme; kubeq-mcp does not use OAuth", body.Error.Message)
			assert.NotContains(t, body.Error.Message, token)
		})
	}
}

// OAuth discovery and registration get a 404 that says this server uses a
// bearer token, with or without a token configured, on every path clients
// try.
func TestOAuthDiscoveryIsANotFoundThatSaysSo(t *testing.T) {
	for _, token := range []string{"", "s3cret-token-value-0123"} {
		f := newFixture(t, func(c *Config) { c.HTTPToken = token })
		hs := httptest.NewServer(f.srv.HTTPHandler())
		t.Cleanup(hs.Close)
		for _, p := range []string{
			"/.well-known/oauth-protected-resource",
			"/.well-known/oauth-protected-resource/mcp",
			"/.well-known/oauth-authorization-server",
			"/.well-known/oauth-authorization-server/mcp",
			"/.well-known/openid-configuration",
			"/register", // where a client without metadata registers
			"/authorize",
			"/token",
		} {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				req, err := http.NewRequest(method, hs.URL+p, nil)
				require.NoError(t, err)
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				assert.Equal(t, http.StatusNotFound, resp.StatusCode, "%s %s", method, p)
				assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
				var body map[string]string
				require.NoError(t, json.Unmarshal(b, &body), "%s", b)
				assert.Equal(t, "not_found", body["error"])
				assert.Contains(t, body["error_description"], "send the token configured with --http-token")
				assert.Contains(t, body["error_description"], "kubeq-mcp does not use OAuth")
			}
		}
	}
}
