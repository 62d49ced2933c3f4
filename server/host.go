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
// requests never reach. The same rules, statuses and bodies as mcp-go
// v1.6.0 (it does not export its check), so its own checks never refuse
// what these passed: TestHostCheckMatchesMCPGo holds the two together.
func (s *Server) checkHostAndType(next http.Handler) http.Handler {
	hosts := newHostRule(s.cfg.AllowedHosts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hosts.accepts(r) {
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

// hostRule is which Host headers a request may carry. A loopback name or
// address always may. Another name may only when it is on the allowlist;
// without an allowlist, any Host is taken on a connection that did not
// come in on loopback (a server on a public address is reached by names
// it cannot know), and refused on one that did: a page that rebinds a
// name of its own to 127.0.0.1 sends that name.
type hostRule struct {
	allowed []authority // parsed once; an empty one never matches
}

// authority is a Host value or allowlist entry: a lowercase name (an IP
// address in canonical form, without brackets) and a port, "" when none.
type authority struct{ name, port string }

func parseAuthority(s string) authority {
	s = strings.ToLower(strings.TrimSpace(s))
	name, port, err := net.SplitHostPort(s)
	if err != nil { // no port
		name, port = strings.Trim(s, "[]"), ""
	}
	if ip, err := netip.ParseAddr(name); err == nil {
		name = ip.String()
	}
	return authority{name, port}
}

func newHostRule(allowed []string) hostRule {
	var h hostRule
	for _, e := range allowed {
		h.allowed = append(h.allowed, parseAuthority(e))
	}
	return h
}

func (h hostRule) accepts(r *http.Request) bool {
	if loopbackAuthority(r.Host) || h.listed(parseAuthority(r.Host)) {
		return true
	}
	if len(h.allowed) > 0 {
		return false
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return local == nil || !loopbackAuthority(local.String())
}

// listed: an entry without a port takes its name on any port, one with a
// port that port only; a Host without a port (browsers leave out the
// scheme's default) also matches an entry for port 80 or 443.
func (h hostRule) listed(req authority) bool {
	if req.name == "" {
		return false
	}
	for _, e := range h.allowed {
		if e.name == "" || e.name != req.name {
			continue
		}
		switch e.port {
		case "", req.port:
			return true
		case "80", "443":
			if req.port == "" {
				return true
			}
		}
	}
	return false
}

// loopbackAuthority: s ("localhost", "127.0.0.1:3000", "[::1]", …) names
// or is a loopback address, exactly as written (no space trimmed).
func loopbackAuthority(s string) bool {
	name, _, err := net.SplitHostPort(s)
	if err != nil { // no port
		name = strings.Trim(s, "[]")
	}
	if strings.EqualFold(name, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(name)
	return err == nil && ip.IsLoopback()
}
