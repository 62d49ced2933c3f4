package server

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// checkHostAndType applies mcp-go's two transport checks to every request
// to /mcp before any of our middleware can answer one itself (serveTasks
// answers tasks/get, tasks/update and tasks/cancel; dropModernCancels a
// 2026-era cancellation): the DNS-rebinding check on Host, and the
// Content-Type of a POST. mcp-go runs both in ServeHTTP, which those
// requests never reach. Same rules, statuses and bodies as mcp-go v1.6.0,
// whose own checks then never refuse what these passed
// (TestHostCheckMatchesMCPGo holds the two together).
func (s *Server) checkHostAndType(next http.Handler) http.Handler {
	allowed := append([]string(nil), s.cfg.AllowedHosts...)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reboundHost(r, allowed) {
			s.log.Warn("refused a request with a foreign Host (DNS rebinding?): " + headerForLog(r.Host))
			http.Error(w, fmt.Sprintf("Forbidden: invalid Host header %q", r.Host), http.StatusForbidden)
			return
		}
		if r.Method == http.MethodPost {
			mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mediaType != "application/json" {
				http.Error(w, "Invalid content type: must be 'application/json'", http.StatusBadRequest)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// reboundHost is mcp-go v1.6.0's rejectDNSRebinding (http_localhost.go),
// which it does not export: a Host that is neither loopback nor allowed is
// refused on a loopback connection, and on every connection once an
// allowlist is set.
func reboundHost(r *http.Request, allowed []string) bool {
	if isLoopbackHost(r.Host) || hostAllowed(r.Host, allowed) {
		return false
	}
	if len(allowed) == 0 {
		local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if !ok || local == nil || !isLoopbackHost(local.String()) {
			return false
		}
	}
	return true
}

// isLoopbackHost: addr ("localhost", "127.0.0.1:3000", "[::1]", …) is a
// loopback name or address.
func isLoopbackHost(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = strings.Trim(addr, "[]") // no port
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// splitAuthority lowercases a Host value or allowlist entry and splits off
// its port; an IP literal comes back canonical and without brackets.
func splitAuthority(authority string) (host, port string) {
	authority = strings.ToLower(strings.TrimSpace(authority))
	host, port, err := net.SplitHostPort(authority)
	if err != nil {
		host, port = strings.Trim(authority, "[]"), ""
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		host = addr.String()
	}
	return host, port
}

// hostAllowed: an entry without a port matches its host on any port, one
// with a port only that port, and a Host without a port (a browser leaves
// out the default one) also matches an entry for port 80 or 443.
func hostAllowed(reqHost string, allowed []string) bool {
	reqName, reqPort := splitAuthority(reqHost)
	if reqName == "" {
		return false
	}
	for _, entry := range allowed {
		name, port := splitAuthority(entry)
		if name == "" || name != reqName {
			continue
		}
		if port == "" || port == reqPort || (reqPort == "" && (port == "80" || port == "443")) {
			return true
		}
	}
	return false
}
