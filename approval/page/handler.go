package page

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxForm bounds a decision's body.
const maxForm = 16 << 10

// securityHeaders go on every answer: nothing external loads, only inline
// style applies, forms post only to the page itself, no one frames it,
// nothing is cached, and the URL (the token) is never sent on as a referrer.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; "+
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
}

// Handler serves the pages under PathPrefix. Mount it at PathPrefix; it
// needs no other credential than the token in the path.
func (p *Pages) Handler() http.Handler {
	return http.HandlerFunc(p.serve)
}

func (p *Pages) serve(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	if !p.limiter.allow(clientAddr(r), time.Now()) {
		w.Header().Set("Retry-After", "1")
		p.render(w, http.StatusTooManyRequests, notice{Title: "Too many requests",
			Text: "Too many requests came from your address. Wait a moment and reload the page."})
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, HEAD, POST")
		p.render(w, http.StatusMethodNotAllowed, notice{Title: "Method not allowed",
			Text: "This page answers GET and POST only."})
		return
	}
	token := strings.TrimPrefix(r.URL.Path, PathPrefix)
	key := sha256.Sum256([]byte(token))
	now := time.Now()

	p.mu.Lock()
	p.sweepLocked(now)
	e := p.entries[key]
	if e == nil || e.state != stateOpen {
		p.mu.Unlock()
		p.gone(w, e)
		return
	}
	if r.Method != http.MethodPost {
		view := pageView{Request: e.req, CSRF: e.csrf, Deadline: e.deadline.UTC()}
		p.mu.Unlock()
		p.render(w, http.StatusOK, view)
		return
	}
	csrf := e.csrf
	p.mu.Unlock()

	// A decision: same origin or none, the page's CSRF value, a known
	// decision. A refused post changes nothing.
	if !sameOrigin(r) {
		p.log.Warn("approval page: refused a decision from another origin")
		p.render(w, http.StatusForbidden, notice{Title: "Refused",
			Text: "This decision did not come from the approval page itself. Nothing was changed."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		p.render(w, http.StatusBadRequest, notice{Title: "Bad request",
			Text: "The form could not be read. Nothing was changed."})
		return
	}
	form := r.PostForm
	if subtle.ConstantTimeCompare([]byte(form.Get("csrf")), []byte(csrf)) != 1 || len(form["csrf"]) != 1 {
		p.log.Warn("approval page: refused a decision without the page's CSRF value")
		p.render(w, http.StatusForbidden, notice{Title: "Refused",
			Text: "This decision did not carry the page's own check value. Nothing was changed. Reload the page and decide again."})
		return
	}
	sub := Submission{Decision: form.Get("decision"), Confirm: form.Get("confirm"), Comment: form.Get("reason")}
	if (sub.Decision != "approve" && sub.Decision != "deny") || len(form["decision"]) != 1 ||
		len(form["confirm"]) > 1 || len(form["reason"]) > 1 {
		p.render(w, http.StatusBadRequest, notice{Title: "Bad request",
			Text: "Choose Approve or Deny. Nothing was changed."})
		return
	}

	p.mu.Lock()
	now = time.Now()
	p.sweepLocked(now) // the deadline may have passed while the form was read
	if e.state != stateOpen {
		p.mu.Unlock()
		p.gone(w, e)
		return
	}
	e.decision = Decision{Submission: sub, Outcome: p.judge(e.judge, sub)}
	p.finishLocked(e, stateDecided, now)
	out := e.decision.Outcome
	p.mu.Unlock()
	p.render(w, http.StatusOK, resultView{Outcome: out, Command: e.req.Command})
}

// judge runs j under the pages' lock. A judge that panics denies (denial
// is the default for every failure) rather than leave the lock held, which
// would hang every page and every Wait.
func (p *Pages) judge(j Judge, sub Submission) (out Outcome) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("approval page: judging the decision failed; it is a denial", "panic", r)
			out = Outcome{Reason: "error", Text: "kubeq-mcp could not judge this decision, so it is a denial. " +
				"The command did not run."}
		}
	}()
	return j(sub)
}

// gone answers for a token that is unknown (404) or no longer open (410),
// by one code path so the two take the same time.
func (p *Pages) gone(w http.ResponseWriter, e *entry) {
	status, n := http.StatusNotFound, notice{Title: "No such approval page",
		Text: "This approval page does not exist. Nothing was changed."}
	if e != nil {
		status, n = http.StatusGone, notice{Title: "This approval page is closed",
			Text: "This approval was already decided, expired, or was withdrawn. A page can be used once. " +
				"Nothing was changed by this request."}
	}
	p.render(w, status, n)
}

// sameOrigin reports whether a POST came from the page's own origin, or
// from no browser page at all. A browser that sends Sec-Fetch-Site (a
// header no page can set or forge) is believed about it: with the page's
// no-referrer policy it sends "Origin: null" for the page's own form, and
// behind a proxy that terminates TLS the Origin it names may not match the
// request as it reaches us. Without Sec-Fetch-Site, Origin must be absent
// or the page's own.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return true
	case "":
		return origin == "" || originIs(origin, r)
	default:
		return false
	}
}

// originIs reports whether origin is the origin r was sent to.
func originIs(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return u.Scheme == scheme && strings.EqualFold(u.Host, r.Host)
}

// clientAddr is the address requests are limited by.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// render writes a page. Templates execute into a buffer first, so a
// template error cannot leave half a page.
func (p *Pages) render(w http.ResponseWriter, status int, v view) {
	var buf bytes.Buffer
	if err := v.execute(&buf); err != nil {
		p.log.Error("approval page: template failed", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
