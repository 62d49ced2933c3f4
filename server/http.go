package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/kubeq-mcp/kubeq-mcp/approval/page"
)

// MCPPath and HealthPath are where the HTTP transport serves.
const (
	MCPPath    = "/mcp"
	HealthPath = "/healthz"
)

// HTTPHandler serves streamable HTTP at /mcp and liveness at /healthz.
//
// Sessions are on (2025-era clients answer elicitations on their session),
// the standalone GET stream is served (some clients open it for
// list-changed notifications; since mcp-go v1.6.0 a call's progress stays
// on its own POST stream, ahead of its result, while a GET stream is open),
// both protocol eras are accepted, and /mcp requires the bearer token when
// Config.HTTPToken is set.
//
// Two checks stand against web pages, and each catches what the other
// misses. The Host check (mcp-go's rule, on by default since v1.6.0)
// refuses a request that came in on a loopback address with a Host header
// that is neither loopback nor in Config.AllowedHosts: a DNS-rebinding
// page, even one whose browser sent no Origin. Once Config.AllowedHosts is
// set, it checks Host on every listener, loopback or not. checkHostAndType
// applies it to every request before the middlewares that answer some
// themselves (tasks/*), which mcp-go never sees. The Origin check refuses a
// browser Origin that is neither localhost nor in Config.AllowedOrigins,
// which the Host check lets through when a foreign page posts straight to
// 127.0.0.1, and which also holds off loopback.
func (s *Server) HTTPHandler() http.Handler {
	// What WithStateful(true) installs, kept at hand: capSessions checks
	// GETs and DELETEs against the ids mcp-go checks POSTs against.
	ids := &mcpserver.InsecureStatefulSessionIdManager{}
	streamable := mcpserver.NewStreamableHTTPServer(s.mcp,
		mcpserver.WithSessionIdManager(ids),
		mcpserver.WithEventStore(s.newEventStore()),
		mcpserver.WithAllowedHosts(s.cfg.AllowedHosts...),
		mcpserver.WithSessionIdleTTL(sessionIdleTTL),
		// limitBody reads the body first; mcp-go's own bound (4 MiB by
		// default) must not be the smaller one.
		mcpserver.WithMaxRequestBodyBytes(s.cfg.MaxRequestBytes),
		mcpserver.WithStreamableHTTPLogger(s.log.With("component", "mcp-http")),
		mcpserver.WithHTTPContextFunc(func(ctx context.Context, r *http.Request) context.Context {
			token, _ := bearerToken(r.Header.Get("Authorization"))
			return withOwner(withPageBase(withTransport(ctx, "http"), r), s.httpOwner(token))
		}),
	)
	s.mu.Lock()
	s.streamables = append(s.streamables, streamable)
	s.mu.Unlock()
	mux := http.NewServeMux()
	// The token is checked first: nothing an unauthenticated client sends
	// is read further, logged or echoed.
	mux.Handle(MCPPath, s.checkToken(s.checkOrigin(s.checkHostAndType(s.limitBody(s.serveTasks(s.capSessions(ids, s.dropModernCancels(s.tolerateLateAnswers(s.noteCancellations(releaseOnReturn(streamable)))))))))))
	handleOAuthDiscovery(mux)
	// Approval pages for URL-mode clients: the token in the path is the
	// credential, so no bearer token is asked (a browser has none).
	mux.Handle(page.PathPrefix, s.pages.set.Handler())
	mux.HandleFunc("GET "+HealthPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	return s.limitStalls(s.boundBodyReads(mux))
}

// checkToken requires "Authorization: Bearer <token>" when a token is set,
// the scheme in any case (RFC 7235). Both sides are hashed first so the
// comparison takes the same time whatever the length of the guess.
func (s *Server) checkToken(next http.Handler) http.Handler {
	if s.cfg.HTTPToken == "" {
		return next
	}
	want := sha256.Sum256([]byte(s.cfg.HTTPToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := bearerToken(r.Header.Get("Authorization"))
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			writeUnauthorized(w)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearerToken reads the credentials of a Bearer authorization: the scheme
// is case-insensitive and is followed by one or more spaces.
func bearerToken(h string) (string, bool) {
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimLeft(rest, " "), true
}

// maxLoggedHeader caps a client's header value in a log line or an answer.
const maxLoggedHeader = 200

// headerForLog makes a client's header value safe to log or echo: at most
// maxLoggedHeader bytes, Go-quoted so that control characters and invalid
// UTF-8 show as escapes, and the length of what was cut.
func headerForLog(v string) string {
	cut := ""
	if len(v) > maxLoggedHeader {
		cut = fmt.Sprintf("… (%d bytes in all)", len(v))
		v = v[:maxLoggedHeader]
	}
	return strconv.QuoteToASCII(v) + cut
}

// checkOrigin answers 403 to a browser request from a page that is not
// local or explicitly allowed: the DNS-rebinding defence the MCP spec asks
// streamable HTTP servers for. Requests without Origin (non-browser
// clients) pass.
func (s *Server) checkOrigin(next http.Handler) http.Handler {
	allowed := make(map[string]bool, len(s.cfg.AllowedOrigins))
	for _, o := range s.cfg.AllowedOrigins {
		allowed[strings.ToLower(strings.TrimRight(o, "/"))] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && !originAllowed(origin, allowed) {
			shown := headerForLog(origin)
			s.log.Warn("refused request from a foreign Origin: " + shown)
			writeJSONRPCError(w, http.StatusForbidden, "origin not allowed: "+shown)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func originAllowed(origin string, allowed map[string]bool) bool {
	if allowed["*"] || allowed[strings.ToLower(strings.TrimRight(origin, "/"))] {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	switch host := u.Hostname(); host {
	case "localhost", "127.0.0.1", "::1":
		return true
	default:
		ip := net.ParseIP(host)
		return ip != nil && ip.IsLoopback()
	}
}

// writeJSONRPCError answers a transport-level refusal in the JSON-RPC error
// shape clients already parse.
func writeJSONRPCError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	type details struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	b, _ := json.Marshal(struct {
		JSONRPC string  `json:"jsonrpc"`
		ID      any     `json:"id"`
		Error   details `json:"error"`
	}{mcp.JSONRPC_VERSION, nil, details{mcp.INVALID_REQUEST, msg}})
	_, _ = w.Write(b)
}

type transportKey struct{}

func withTransport(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, transportKey{}, name)
}

func transportFrom(ctx context.Context) string {
	if t, ok := ctx.Value(transportKey{}).(string); ok {
		return t
	}
	return "unknown"
}
