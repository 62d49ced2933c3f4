package kubeq

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Defaults, as kube-q has them (protocol §6) except the user, which names us.
const (
	DefaultModel   = "kubeintellect-v2"
	DefaultUser    = "mcp-user"
	DefaultTimeout = 120 * time.Second
)

// DefaultRetryDelays is the retry schedule for transport errors.
var DefaultRetryDelays = []time.Duration{1 * time.Second, 3 * time.Second, 5 * time.Second}

const (
	chatPath      = "/v1/chat/completions"
	healthPath    = "/healthz"
	healthTimeout = 5 * time.Second
)

// Client speaks KubeIntellect's /v1/chat/completions SSE protocol. It is safe
// for concurrent use; it does not serialise turns per conversation (callers
// must, see DESIGN.md invariant 2).
type Client struct {
	base          string // no trailing slash
	apiKey        string
	caFile        string
	timeout       time.Duration
	model         string
	user          string
	retryDelays   []time.Duration
	hc            *http.Client
	healthTimeout time.Duration
	log           *slog.Logger // nil: discard
	redact        *redactor    // our secrets, out of everything the backend says
	readers       readerPool   // read buffers of finished turns
}

// Option configures a Client.
type Option func(*Client) error

// WithAPIKey sends "Authorization: Bearer <key>". The key never appears in
// errors.
func WithAPIKey(key string) Option {
	return func(c *Client) error {
		if !safeHeaderValue(key, 4096) {
			return errors.New("kubeq: API key is not a valid header value (control characters, or too long)")
		}
		c.apiKey = key
		return nil
	}
}

// WithCACertFile trusts only the PEM certificates in path (like kube-q's
// --ca-cert). It cannot be combined with WithHTTPClient.
func WithCACertFile(path string) Option {
	return func(c *Client) error { c.caFile = path; return nil }
}

// WithTimeout bounds every wait on the backend: connecting and getting the
// response header, then the silence between any two reads of the stream
// (heartbeats every 15 s keep a long turn alive). It is not a bound on the
// whole turn; use the context for that. Default 120 s, as kube-q.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) error {
		if d <= 0 {
			return fmt.Errorf("kubeq: timeout must be positive, got %s", d)
		}
		c.timeout = d
		return nil
	}
}

// WithModel sets the body "model" (the server ignores it).
func WithModel(model string) Option {
	return func(c *Client) error {
		if model == "" {
			return errors.New("kubeq: model must not be empty")
		}
		c.model = model
		return nil
	}
}

// WithUser sets the default body "user" for turns that name none.
func WithUser(user string) Option {
	return func(c *Client) error {
		if user == "" {
			return errors.New("kubeq: user must not be empty")
		}
		c.user = user
		return nil
	}
}

// WithRetryDelays sets the waits between attempts after transport errors;
// n delays mean up to n+1 attempts. No delays means no retry.
func WithRetryDelays(delays ...time.Duration) Option {
	return func(c *Client) error {
		for _, d := range delays {
			if d < 0 {
				return fmt.Errorf("kubeq: negative retry delay %s", d)
			}
		}
		c.retryDelays = append([]time.Duration(nil), delays...)
		return nil
	}
}

// WithHTTPClient replaces the HTTP client (tests, proxies). Its Timeout, if
// any, bounds whole turns, so leave it zero and use WithTimeout. Its
// CheckRedirect is replaced: the client never follows redirects.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("kubeq: nil *http.Client")
		}
		c.hc = hc
		return nil
	}
}

// WithLogger logs retries and other notable things (never the API key).
// Without it the client is silent.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) error { c.log = l; return nil }
}

// New validates baseURL (http or https, with a host) and applies options.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, badURL(baseURL, "")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, badURL(baseURL, "want http(s)://host[:port]")
	}
	// Even an empty query or fragment: "http://h/?" parses with ForceQuery
	// and "http://h/#" as "http://h/", and either would spoil every path
	// joined to the base. url.Parse takes any "?" or "#" for one.
	if strings.ContainsAny(baseURL, "?#") {
		return nil, badURL(baseURL, "no query or fragment allowed")
	}
	c := &Client{
		base:          u.String(),
		timeout:       DefaultTimeout,
		model:         DefaultModel,
		user:          DefaultUser,
		retryDelays:   append([]time.Duration(nil), DefaultRetryDelays...),
		healthTimeout: healthTimeout,
	}
	for _, opt := range opts {
		if err := opt(c); err != nil {
			return nil, err
		}
	}
	if c.caFile != "" {
		if c.hc != nil {
			return nil, errors.New("kubeq: WithCACertFile and WithHTTPClient cannot be combined; set the CA pool on your client")
		}
		if c.hc, err = clientWithRoots(c.caFile); err != nil {
			return nil, err
		}
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: newTransport()}
	}
	c.redact = newRedactor(c.apiKey, u)
	// Never follow a redirect: it would carry the API key to wherever the
	// Location points, and a health probe would call that place healthy.
	// A redirect is answered to the caller as an error naming its target.
	hc := *c.hc
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.hc = &hc
	return c, nil
}

// badURL reports an invalid base URL. The URL may hold a password, and
// url.Parse's errors quote the URL (or the piece that failed) verbatim, so
// the message quotes a masked copy and, when why is empty, takes the reason
// from parsing that copy; the *url.Error is not wrapped.
func badURL(raw, why string) error {
	masked := maskPassword(raw)
	if why == "" {
		// If the masked copy parses, the fault was in the masked part.
		why = "malformed user info (percent-encode any % / ? # @ in the password)"
		if _, err := url.Parse(strings.TrimRight(masked, "/")); err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			why = err.Error()
		}
	}
	return fmt.Errorf("kubeq: invalid URL %q: %s", masked, why)
}

// RedactURL is raw, a URL that may not parse, with what may be a secret
// in it masked as maskPassword does: for messages about a URL outside this
// package (the start-up checks).
func RedactURL(raw string) string { return maskPassword(raw) }

// maskPassword masks what may be a secret in raw, a URL that may not
// parse: the user info from the scheme's "//" (or the start) up to the
// last "@" (the password, or the whole of a user name alone, which is
// often a token), and everything after a "?" (query parameters often carry
// tokens). It is looser than url.Parse on purpose, so that a password
// holding "/", "?", "#" or "@" is masked whole; it may mask more than the
// secret, never less.
func maskPassword(raw string) string {
	if at := strings.LastIndex(raw, "@"); at >= 0 {
		start := 0
		if i := strings.Index(raw[:at], "://"); i >= 0 {
			start = i + 3
		}
		if colon := strings.Index(raw[start:at], ":"); colon >= 0 {
			raw = raw[:start+colon+1] + "xxxxx" + raw[at:]
		} else {
			raw = raw[:start] + "xxxxx" + raw[at:]
		}
	}
	if q := strings.Index(raw, "?"); q >= 0 && q+1 < len(raw) {
		raw = raw[:q+1] + "xxxxx"
	}
	return raw
}

func clientWithRoots(path string) (*http.Client, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kubeq: reading CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("kubeq: CA bundle %s holds no PEM certificate", path)
	}
	tr := newTransport()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}, nil
}

// idleConnTimeout closes backend connections nobody reused. It is shorter
// than uvicorn's default keep-alive (5 s), so a connection the backend is
// about to close is never reused: a request written on one fails after it
// was sent, and an at-most-once turn such as "approve" cannot be sent
// again. Turns come at human pace, so little reuse is lost; the 90 s
// default also kept a goroutine pair per pooled connection long after a
// burst of calls.
const idleConnTimeout = 4 * time.Second

func newTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.IdleConnTimeout = idleConnTimeout
	// The client talks to one host: keep as many idle connections to it as
	// turns run at once, instead of net/http's default of 2, so concurrent
	// turns reuse connections rather than dial (and, over TLS, handshake)
	// for nearly every question.
	tr.MaxIdleConnsPerHost = maxIdleConnsPerHost
	return tr
}

// maxIdleConnsPerHost is how many idle backend connections are kept.
const maxIdleConnsPerHost = 64

// User is the body "user" sent for turns that name none.
func (c *Client) User() string { return c.user }

// URL is the backend base URL, without trailing slash, and with any
// password in it masked, so it is safe to log and show.
func (c *Client) URL() string { return c.redactedBase() }

// redactedBase is the base URL safe for messages (no password).
func (c *Client) redactedBase() string {
	u, err := url.Parse(c.base)
	if err != nil {
		return maskPassword(c.base)
	}
	if u.User != nil {
		if _, hasPassword := u.User.Password(); !hasPassword {
			u.User = url.User("xxxxx") // a user name alone is often a token
		}
	}
	return u.Redacted()
}
