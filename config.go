package main

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kubeq-mcp/kubeq-mcp/approval"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
)

// config is the whole configuration: flags override the environment, which
// overrides the defaults (DESIGN.md, "Configuration").
type config struct {
	Transport         string
	Addr              string
	HTTPToken         string
	AllowedOrigins    []string
	AllowedHosts      []string
	URL               string
	APIKey            string
	CACert            string
	Timeout           time.Duration
	Model             string
	UserID            string
	AllowUserOverride bool
	RetryDelays       []time.Duration
	ApprovalTimeout   time.Duration
	CallDeadline      *time.Duration // nil: per known client
	AnswerTTL         time.Duration
	TaskTTL           time.Duration
	MaxDetached       int
	ConfirmHighRisk   string
	StateKey          []byte
	AuditLog          string
	Store             string // memory, or a redis:// / rediss:// URL (may hold a password)
	ApprovalBrowser   string // "" for the OS opener, "none", or a command
	Demo              bool
	URLSet            bool // --url or KUBE_Q_URL was given (--demo then ignores it)
	LogLevel          string
	Version           bool

	// Limits against runaway clients and backends (README, "Limits").
	MaxRequestBytes    int64
	MaxSessions        int
	MaxCallsPerSession int
	MaxCalls           int
	MaxAnswerBytes     int64
	RequestReadTimeout time.Duration
	IdleTimeout        time.Duration
	WriteTimeout       time.Duration
}

// secretEnv names the environment variable of each secret flag. The
// approval page's browser opener starts without them (page.SecretEnv;
// TestOpenerEnvListsEverySecret keeps the two in step).
var secretEnv = map[string]string{
	"http-token": "KUBEQ_MCP_HTTP_TOKEN",
	"api-key":    "KUBE_Q_API_KEY",
	"state-key":  "KUBEQ_MCP_STATE_KEY",
	"store":      "KUBEQ_MCP_STORE", // its URL may hold a password
}

// parseConfig reads args (without the program name) over getenv. It
// returns flag.ErrHelp for -h.
func parseConfig(args []string, getenv func(string) string, usage io.Writer) (config, error) {
	var c config
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("kubeq-mcp", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.StringVar(&c.Transport, "transport", env("KUBEQ_MCP_TRANSPORT", "stdio"), "stdio or http (env KUBEQ_MCP_TRANSPORT)")
	fs.StringVar(&c.Addr, "addr", env("KUBEQ_MCP_ADDR", "127.0.0.1:8080"), "HTTP listen address; MCP at /mcp, liveness at /healthz (env KUBEQ_MCP_ADDR)")
	// Secrets take no default from the environment here: a flag's default
	// is printed by --help. They are read after parsing instead.
	fs.StringVar(&c.HTTPToken, "http-token", "", "bearer token required on /mcp; required off loopback (env KUBEQ_MCP_HTTP_TOKEN)")
	origins := fs.String("allowed-origins", env("KUBEQ_MCP_ALLOWED_ORIGINS", ""), "comma-separated browser Origins allowed besides localhost (env KUBEQ_MCP_ALLOWED_ORIGINS)")
	hosts := fs.String("allowed-hosts", env("KUBEQ_MCP_ALLOWED_HOSTS", ""), "comma-separated Host header values accepted besides loopback ones, e.g. a reverse proxy's name (env KUBEQ_MCP_ALLOWED_HOSTS)")
	fs.StringVar(&c.URL, "url", env("KUBE_Q_URL", "http://localhost:8000"), "KubeIntellect base URL (env KUBE_Q_URL)")
	// The URL may carry a password: --help prints the default masked.
	fs.Lookup("url").DefValue = kubeq.RedactURL(fs.Lookup("url").DefValue)
	fs.StringVar(&c.APIKey, "api-key", "", "KubeIntellect API key (env KUBE_Q_API_KEY)")
	fs.StringVar(&c.CACert, "ca-cert", env("KUBE_Q_CA_CERT", ""), "PEM CA bundle for the backend's TLS; system roots when empty (env KUBE_Q_CA_CERT)")
	timeout := fs.String("timeout", env("KUBE_Q_TIMEOUT", "120s"), "backend timeout: longest silence in a stream, and the bound on connecting (env KUBE_Q_TIMEOUT)")
	fs.StringVar(&c.Model, "model", env("KUBE_Q_MODEL", "kubeintellect-v2"), "model name sent to the backend (env KUBE_Q_MODEL)")
	fs.StringVar(&c.UserID, "user-id", env("KUBE_Q_USER_ID", "mcp-user"), "default user id sent to the backend (env KUBE_Q_USER_ID)")
	fs.BoolVar(&c.AllowUserOverride, "allow-user-override", envBool(getenv("KUBEQ_MCP_ALLOW_USER_OVERRIDE")), "let the model choose the backend user with kube_query's user_id (audited as model-supplied); off: --user-id is always sent (env KUBEQ_MCP_ALLOW_USER_OVERRIDE)")
	retries := fs.String("retry-delays", env("KUBE_Q_RETRY_DELAYS", "1s,3s,5s"), "waits between retries of transport errors; empty for none (env KUBE_Q_RETRY_DELAYS)")
	deadline := fs.String("call-deadline", env("KUBEQ_MCP_CALL_DEADLINE", ""), "longest a kube_query or kube_answer call waits before returning the answer so far with status running; 0 for none; per known client when empty, else 50s (env KUBEQ_MCP_CALL_DEADLINE)")
	answerTTL := fs.String("answer-ttl", env("KUBEQ_MCP_ANSWER_TTL", "30m"), "how long a finished turn's answer is kept for kube_answer (env KUBEQ_MCP_ANSWER_TTL)")
	taskTTL := fs.String("task-ttl", env("KUBEQ_MCP_TASK_TTL", "1h"), "how long a kube_query task lives from its creation (Tasks extension ttlMs): past it a task still running is failed and stopped, then deleted (env KUBEQ_MCP_TASK_TTL)")
	maxDetached := fs.String("max-detached", env("KUBEQ_MCP_MAX_DETACHED", "100"), "turns that may run with no call watching them; past it the oldest is cancelled (env KUBEQ_MCP_MAX_DETACHED)")
	approval := fs.String("approval-timeout", env("KUBEQ_MCP_APPROVAL_TIMEOUT", "10m"), "how long a human has to answer an approval before it is denied (env KUBEQ_MCP_APPROVAL_TIMEOUT)")
	fs.StringVar(&c.ConfirmHighRisk, "confirm-high-risk", env("KUBEQ_MCP_CONFIRM_HIGH_RISK", "name"), "name: high-risk approvals need the target's name typed; none: they do not (env KUBEQ_MCP_CONFIRM_HIGH_RISK)")
	stateKey := fs.String("state-key", "", "32-byte key (base64 or hex) sealing approval state; share it across replicas; random when empty (env KUBEQ_MCP_STATE_KEY)")
	fs.StringVar(&c.AuditLog, "audit-log", env("KUBEQ_MCP_AUDIT_LOG", ""), "append one JSON line per approval decision to this file (env KUBEQ_MCP_AUDIT_LOG)")
	fs.StringVar(&c.Store, "store", "", "approval ledger: memory (one process, the default) or redis://[user:password@]host:port/db (rediss:// for TLS), shared by replicas with the same --state-key (env KUBEQ_MCP_STORE)")
	fs.StringVar(&c.ApprovalBrowser, "approval-browser", env("KUBEQ_MCP_APPROVAL_BROWSER", ""), "stdio: the command that opens the approval page for a client without forms (split on spaces, no shell; the URL is its last argument); empty for the OS opener; none: such clients are denied (env KUBEQ_MCP_APPROVAL_BROWSER)")
	fs.BoolVar(&c.Demo, "demo", false, "serve a simulated KubeIntellect in-process (no backend needed); every answer is labelled simulated")
	fs.StringVar(&c.LogLevel, "log-level", env("KUBEQ_MCP_LOG_LEVEL", "info"), "debug, info, warn or error; logs go to stderr (env KUBEQ_MCP_LOG_LEVEL)")
	fs.BoolVar(&c.Version, "version", false, "print the version and exit")
	maxRequest := fs.String("max-request-bytes", env("KUBEQ_MCP_MAX_REQUEST_BYTES", "1MiB"), "largest HTTP request body accepted on /mcp; larger ones get 413 (env KUBEQ_MCP_MAX_REQUEST_BYTES)")
	maxSessions := fs.String("max-sessions", env("KUBEQ_MCP_MAX_SESSIONS", "10000"), "most live HTTP sessions; a new initialize beyond them gets 503 (env KUBEQ_MCP_MAX_SESSIONS)")
	maxPerSession := fs.String("max-calls-per-session", env("KUBEQ_MCP_MAX_CALLS_PER_SESSION", "8"), "most tool calls in flight on one session; beyond them a call gets a busy error (env KUBEQ_MCP_MAX_CALLS_PER_SESSION)")
	maxCalls := fs.String("max-calls", env("KUBEQ_MCP_MAX_CALLS", "1000"), "most tool calls in flight in the process; beyond them a call gets a busy error (env KUBEQ_MCP_MAX_CALLS)")
	maxAnswer := fs.String("max-answer-bytes", env("KUBEQ_MCP_MAX_ANSWER_BYTES", "8MiB"), "answer text kept per call; the rest is read and dropped, and the result says where it was cut (env KUBEQ_MCP_MAX_ANSWER_BYTES)")
	readTimeout := fs.String("request-read-timeout", env("KUBEQ_MCP_REQUEST_READ_TIMEOUT", "30s"), "longest time to read an HTTP request's headers and body; response streams are not bound by it (env KUBEQ_MCP_REQUEST_READ_TIMEOUT)")
	writeTimeout := fs.String("write-timeout", env("KUBEQ_MCP_WRITE_TIMEOUT", "2m"), "longest an HTTP response write may wait for a client that stopped reading; then its connection is closed (env KUBEQ_MCP_WRITE_TIMEOUT)")
	idleTimeout := fs.String("idle-timeout", env("KUBEQ_MCP_IDLE_TIMEOUT", "60s"), "how long an idle keep-alive HTTP connection is kept open (env KUBEQ_MCP_IDLE_TIMEOUT)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, secret := range map[string]*string{
		"http-token": &c.HTTPToken, "api-key": &c.APIKey, "state-key": stateKey, "store": &c.Store,
	} {
		if !set[name] {
			*secret = getenv(secretEnv[name])
		}
	}
	c.URLSet = set["url"] || getenv("KUBE_Q_URL") != ""
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (all options are flags; see --help)", fs.Arg(0))
	}
	if c.Version {
		return c, nil
	}
	var err error
	if c.Timeout, err = positiveDuration("timeout", *timeout); err != nil {
		return c, err
	}
	if v := strings.TrimSpace(*deadline); v != "" {
		d, err := time.ParseDuration(v)
		if v == "0" {
			d, err = 0, nil
		}
		if err != nil || d < 0 {
			return c, fmt.Errorf("--call-deadline %q: must be a duration such as 50s or 5m, or 0 for none", *deadline)
		}
		c.CallDeadline = &d
	}
	if c.AnswerTTL, err = positiveDuration("answer-ttl", *answerTTL); err != nil {
		return c, err
	}
	if c.TaskTTL, err = positiveDuration("task-ttl", *taskTTL); err != nil {
		return c, err
	}
	if c.MaxDetached, err = strconv.Atoi(strings.TrimSpace(*maxDetached)); err != nil || c.MaxDetached < 1 {
		return c, fmt.Errorf("--max-detached %q: must be a whole number of at least 1", *maxDetached)
	}
	if c.ApprovalTimeout, err = positiveDuration("approval-timeout", *approval); err != nil {
		return c, err
	}
	if c.RetryDelays, err = parseDelays(*retries); err != nil {
		return c, err
	}
	if c.StateKey, err = parseStateKey(*stateKey); err != nil {
		return c, err
	}
	if err := c.parseLimits(*maxRequest, *maxSessions, *maxPerSession, *maxCalls, *maxAnswer, *readTimeout, *idleTimeout, *writeTimeout); err != nil {
		return c, err
	}
	for _, o := range strings.Split(*origins, ",") {
		// Without trailing slashes, as the Origin check reads them: "*/"
		// is "*", and must meet the same refusal.
		if o = strings.TrimRight(strings.TrimSpace(o), "/"); o != "" {
			c.AllowedOrigins = append(c.AllowedOrigins, o)
		}
	}
	for _, h := range strings.Split(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			c.AllowedHosts = append(c.AllowedHosts, h)
		}
	}
	return c, c.validate()
}

// envBool reads a boolean environment variable: 1, true, yes or on.
func envBool(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

func (c *config) validate() error {
	switch c.Transport {
	case "stdio", "http":
	default:
		return fmt.Errorf("--transport %q: must be stdio or http", c.Transport)
	}
	if !c.Demo {
		if err := checkURL(c.URL); err != nil {
			return err
		}
	}
	// Only the token guards this server; a placeholder API key is the
	// backend's to refuse (and the client snippets carry one on purpose).
	if isPlaceholder(c.HTTPToken) {
		return errors.New("--http-token (KUBEQ_MCP_HTTP_TOKEN) is still a placeholder from the examples, " +
			"which anyone can read: set a random one, e.g. `openssl rand -base64 32`")
	}
	if c.CACert != "" {
		f, err := os.Open(c.CACert)
		if err != nil {
			return fmt.Errorf("--ca-cert: cannot read the CA bundle: %w", err)
		}
		_ = f.Close()
	}
	if err := c.validateStore(); err != nil {
		return err
	}
	switch c.ConfirmHighRisk {
	case "name", "none":
	default:
		return fmt.Errorf("--confirm-high-risk %q: must be name or none", c.ConfirmHighRisk)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("--log-level %q: must be debug, info, warn or error", c.LogLevel)
	}
	if c.Transport == "http" {
		host, _, err := net.SplitHostPort(c.Addr)
		if err != nil {
			return fmt.Errorf("--addr %q: must be host:port, e.g. 127.0.0.1:8080", c.Addr)
		}
		if !isLoopback(host) && c.HTTPToken == "" {
			return fmt.Errorf("--addr %q is not a loopback address: set --http-token (KUBEQ_MCP_HTTP_TOKEN) so that only your clients can call the server", c.Addr)
		}
		// "*" turns off the Origin check, so any web page open in a browser
		// on this machine could call the server and answer its approval
		// form; only a token it cannot know keeps such a page out.
		if c.HTTPToken == "" && slices.Contains(c.AllowedOrigins, "*") {
			return errors.New("--allowed-origins '*' lets any web page call this server: set --http-token (KUBEQ_MCP_HTTP_TOKEN) too, or list the origins you need")
		}
		// "null" is the Origin of a sandboxed frame, which any web page
		// can open: allowing it lets every page in, as "*" does.
		if c.HTTPToken == "" && slices.ContainsFunc(c.AllowedOrigins, func(o string) bool { return strings.EqualFold(o, "null") }) {
			return errors.New("--allowed-origins 'null' lets any web page call this server (from a sandboxed frame): set --http-token (KUBEQ_MCP_HTTP_TOKEN) too, or list the origins you need")
		}
		if c.HTTPToken != "" && len(c.HTTPToken) < minHTTPToken {
			return fmt.Errorf("--http-token is %d bytes: use at least %d, e.g. `openssl rand -hex 32` (KUBEQ_MCP_HTTP_TOKEN)", len(c.HTTPToken), minHTTPToken)
		}
	}
	return nil
}

// minHTTPToken is the shortest bearer token accepted: shorter ones can be
// guessed by a page or a process that may try many.
const minHTTPToken = 16

// checkURL refuses a backend URL that is not http(s) with a host, and
// what url.Parse lets through but a request would trip on later: white
// space (a trailing space becomes "/%20" in every path) and a port outside
// 1-65535. Messages quote the URL masked as the backend client masks it
// (user info and query values).
func checkURL(raw string) error {
	if strings.ContainsAny(raw, " \t\r\n") {
		return fmt.Errorf("--url %q: contains white space (a trailing space?); remove it (KUBE_Q_URL)",
			kubeq.RedactURL(strings.TrimSpace(raw)))
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url %q: must be an http:// or https:// URL with a host, e.g. http://localhost:8000 (KUBE_Q_URL)", kubeq.RedactURL(raw))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("--url: port %s is not a TCP port (1-65535) (KUBE_Q_URL)", p)
		}
	}
	return nil
}

// isPlaceholder recognises the stand-in secrets of our examples and
// manifests (deploy/kubernetes/secret.yaml, docs/examples), and the usual
// others: a server started with one would accept a token anyone can read.
// An unexpanded "${VAR}" or "<token>" counts too.
func isPlaceholder(v string) bool {
	v = strings.ToLower(strings.TrimSpace(v))
	if v == "" {
		return false
	}
	for _, p := range []string{"replace-with", "replace_with", "replaceme", "replace-me", "replace_me",
		"changeme", "change-me", "change_me", "your-", "your_", "${", "$(", "<"} {
		if strings.HasPrefix(v, p) {
			return true
		}
	}
	switch v {
	case "token", "secret", "password", "api-key", "apikey", "xxx", "xxxx", "xxxxx", "todo":
		return true
	}
	return false
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func positiveDuration(name, v string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--%s %q: must be a positive duration such as 90s or 10m", name, v)
	}
	return d, nil
}

func parseDelays(v string) ([]time.Duration, error) {
	delays := []time.Duration{}
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		d, err := time.ParseDuration(part)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("--retry-delays %q: must be a comma-separated list of durations such as 1s,3s,5s", v)
		}
		delays = append(delays, d)
	}
	return delays, nil
}

// parseLimits reads the limits of README's "Limits" table.
func (c *config) parseLimits(request, sessions, perSession, calls, answer, readTimeout, idleTimeout, writeTimeout string) error {
	var err error
	if c.MaxRequestBytes, err = positiveBytes("max-request-bytes", request); err != nil {
		return err
	}
	if c.MaxAnswerBytes, err = positiveBytes("max-answer-bytes", answer); err != nil {
		return err
	}
	for _, n := range []struct {
		name, v string
		dst     *int
	}{
		{"max-sessions", sessions, &c.MaxSessions},
		{"max-calls-per-session", perSession, &c.MaxCallsPerSession},
		{"max-calls", calls, &c.MaxCalls},
	} {
		if *n.dst, err = positiveInt(n.name, n.v); err != nil {
			return err
		}
	}
	if c.RequestReadTimeout, err = positiveDuration("request-read-timeout", readTimeout); err != nil {
		return err
	}
	if c.IdleTimeout, err = positiveDuration("idle-timeout", idleTimeout); err != nil {
		return err
	}
	c.WriteTimeout, err = positiveDuration("write-timeout", writeTimeout)
	return err
}

func positiveInt(name, v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("--%s %q: must be a positive whole number", name, v)
	}
	return n, nil
}

// positiveBytes reads a size: a number of bytes, or one with a KiB, MiB or
// GiB suffix (1MiB = 1048576).
func positiveBytes(name, v string) (int64, error) {
	s := strings.TrimSpace(v)
	unit := int64(1)
	for suffix, u := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if rest, ok := strings.CutSuffix(s, suffix); ok {
			s, unit = strings.TrimSpace(rest), u
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/unit {
		return 0, fmt.Errorf("--%s %q: must be a positive size in bytes, e.g. 1048576 or 1MiB", name, v)
	}
	return n * unit, nil
}

// parseStateKey accepts 32 bytes as standard base64 or hex.
func parseStateKey(v string) ([]byte, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	if b, err := base64.StdEncoding.DecodeString(v); err == nil && len(b) == 32 {
		return b, nil
	}
	if b, err := hex.DecodeString(v); err == nil && len(b) == 32 {
		return b, nil
	}
	return nil, errors.New("--state-key: must be 32 random bytes in standard base64 or hex (e.g. `openssl rand -base64 32`) (KUBEQ_MCP_STATE_KEY)")
}

// validateStore checks --store; its errors never show a password.
func (c *config) validateStore() error {
	if c.Store == "" {
		c.Store = "memory"
	}
	if c.Store == "memory" {
		return nil
	}
	u, err := url.Parse(c.Store)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return fmt.Errorf("--store %s: must be memory, or redis://[user:password@]host:port/db or rediss://… (KUBEQ_MCP_STORE)",
			approval.RedactURL(c.Store))
	}
	if c.StateKey == nil {
		return errors.New("--store: replicas that share a store must share the key that seals approval " +
			"state: set --state-key (KUBEQ_MCP_STATE_KEY) to the same 32 random bytes on every replica")
	}
	return nil
}
