package server

import (
	"encoding/json"
	"net/http"
)

// tokenHelp is what a client that did not send the right bearer token is
// told, in the 401 body and in the OAuth 404s. It is worded so that
// clients which mask "Bearer <value>" and "token: <value>" in what they
// show (Claude Code does) leave it readable.
const tokenHelp = "send the token configured with --http-token (KUBEQ_MCP_HTTP_TOKEN) in the " +
	"Authorization header with the Bearer scheme; kubeq-mcp does not use OAuth"

// writeUnauthorized answers a request without the right token. MCP
// clients read a bare 401 as "start OAuth" and then report a failed
// client registration; error="invalid_token" (RFC 6750) and the body say
// what is really wanted.
func writeUnauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate",
		`Bearer realm="kubeq-mcp", error="invalid_token", error_description="send the token configured with --http-token"`)
	writeJSONRPCError(w, http.StatusUnauthorized, "missing or wrong bearer token; "+tokenHelp)
}

// oauthPaths are where MCP clients look for OAuth after a 401: the
// metadata documents (RFC 9728 and RFC 8414, also with the /mcp suffix),
// and the default endpoints a client falls back to without metadata
// (Claude Code then reports "Dynamic Client Registration rejected (HTTP
// 404)" with the body of /register).
var oauthPaths = []string{
	"/.well-known/oauth-protected-resource",
	"/.well-known/oauth-authorization-server",
	"/.well-known/openid-configuration",
	"/register",
	"/authorize",
	"/token",
}

// handleOAuthDiscovery answers OAuth discovery and registration with a 404
// that says why, so a client that shows it shows the way out.
func handleOAuthDiscovery(mux *http.ServeMux) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		b, _ := json.Marshal(map[string]string{"error": "not_found", "error_description": tokenHelp})
		_, _ = w.Write(b)
	})
	for _, p := range oauthPaths {
		mux.Handle(p, h)
		mux.Handle(p+"/", h)
	}
}
