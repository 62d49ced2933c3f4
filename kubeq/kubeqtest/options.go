package kubeqtest

import "time"

// Option configures a Server. The defaults imitate the V4 server: open auth,
// usage frames, fatal ki_event, strict HITL, 15 s heartbeats.
type Option func(*options)

// ConcurrentMode says what happens when a second turn arrives on an
// X-Session-ID that already has a turn streaming. Either way the fake
// records it (Server.ConcurrentTurnViolations).
type ConcurrentMode int

const (
	// RejectConcurrent answers the second turn 409 with a detail.
	RejectConcurrent ConcurrentMode = iota
	// HangConcurrent reproduces the real server: the second turn runs, and
	// the first stream never ends and only gets heartbeats.
	HangConcurrent
)

type options struct {
	apiKeys        []string
	requireAuth    bool // V4 REQUIRE_AUTH without keys: every /v1 call is refused
	authChatOnly   bool // V2: only the chat endpoint checks the key
	usageFrame     bool
	usageSessionTS bool
	fatalEvent     bool
	heartbeat      time.Duration
	hitl           HITLMode
	chunkSize      int
	frameDelay     time.Duration
	crlf           bool
	concurrent     ConcurrentMode
	v2Health       bool
	version        string
	namespaces     []string
	role           string
	v2Namespaces   bool
	deterministic  bool
	now            func() time.Time
	health         healthState
	logLimit       int
}

func defaultOptions() options {
	return options{
		usageFrame: true,
		fatalEvent: true,
		heartbeat:  15 * time.Second,
		chunkSize:  16,
		version:    "4.0.0",
		namespaces: []string{"default", "kube-system", "shop"},
		role:       "admin",
		now:        time.Now,
		health:     healthState{status: 200},
	}
}

// WithAPIKeys turns on key mode: requests need "Authorization: Bearer <key>"
// with one of keys, or get the real 401 bodies. Without keys the server is
// open and every caller is admin.
func WithAPIKeys(keys ...string) Option {
	return func(o *options) { o.apiKeys = append([]string(nil), keys...) }
}

// WithRequireAuthNoKeys imitates V4 with REQUIRE_AUTH=true and no keys
// configured: every authenticated route answers 401.
func WithRequireAuthNoKeys() Option { return func(o *options) { o.requireAuth = true } }

// WithUsageFrame turns the usage ki_event before the stop chunk on or off
// (V2 servers send none). Default on.
func WithUsageFrame(on bool) Option { return func(o *options) { o.usageFrame = on } }

// WithUsageSessionTS adds session_id and ts to the usage ki_event, as the
// newest server does when it builds it through wire.UsageEvent.
func WithUsageSessionTS(on bool) Option { return func(o *options) { o.usageSessionTS = on } }

// WithFatalEvent turns the ki_event error frame of the fatal path on or off
// (V2 sends only the "[Error: …]" chunk). Default on.
func WithFatalEvent(on bool) Option { return func(o *options) { o.fatalEvent = on } }

// WithHeartbeat sets how long a stream may be silent before the fake writes
// ": heartbeat". Default 15 s; tests use a few milliseconds; 0 turns
// heartbeats off.
func WithHeartbeat(d time.Duration) Option { return func(o *options) { o.heartbeat = d } }

// WithHITLMode selects strict (V4, default) or lax (V2) approval parsing.
func WithHITLMode(m HITLMode) Option { return func(o *options) { o.hitl = m } }

// WithTokenChunkSize sets the size in bytes of the content chunks Tokens
// writes. Default 16.
func WithTokenChunkSize(n int) Option { return func(o *options) { o.chunkSize = n } }

// WithFrameDelay makes every frame wait d before it is written: a slow
// stream. Heartbeats still go out when d exceeds the heartbeat interval.
func WithFrameDelay(d time.Duration) Option { return func(o *options) { o.frameDelay = d } }

// WithCRLF frames every event with "\r\n\r\n" instead of "\n\n".
func WithCRLF() Option { return func(o *options) { o.crlf = true } }

// WithConcurrentTurns selects what a second concurrent turn on one session
// gets. Default RejectConcurrent.
func WithConcurrentTurns(m ConcurrentMode) Option { return func(o *options) { o.concurrent = m } }

// WithHealth makes /healthz answer code from the start, or hang until the
// client gives up (see also Server.SetHealth).
func WithHealth(code int, hang bool) Option {
	return func(o *options) { o.health = healthState{status: code, hang: hang} }
}

// WithLogLimit keeps only the last n requests in the log (0: all), for load
// runs that send many thousands of turns.
func WithLogLimit(n int) Option { return func(o *options) { o.logLimit = n } }

// WithVersion sets the version reported by /healthz. Default "4.0.0".
func WithVersion(v string) Option { return func(o *options) { o.version = v } }

// WithRole sets the role GET /v1/auth/whoami reports for an accepted key.
// Default "admin", which is what the real server says in open mode.
func WithRole(role string) Option { return func(o *options) { o.role = role } }

// WithNamespaces sets what GET /v1/namespaces lists.
func WithNamespaces(ns ...string) Option {
	return func(o *options) { o.namespaces = append([]string(nil), ns...) }
}

// WithDeterministicIDs replaces random ids with counters: completion ids
// chatcmpl-000000000001…, action ids and generated session ids
// 00000000-0000-4000-8000-000000000001…, so whole streams can be compared
// byte for byte (with WithNow).
func WithDeterministicIDs() Option { return func(o *options) { o.deterministic = true } }

// WithNow sets the clock of the wire: "created" and "ts". The log keeps
// real times.
func WithNow(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithV2 imitates the April 2026 V2 server: no usage frame, no fatal
// ki_event, lax HITL, the V2 health body, no /readyz and no
// /v1/auth/whoami, auth on the chat endpoint only, and namespaces
// answering 200 [] on failure.
func WithV2() Option {
	return func(o *options) {
		o.usageFrame = false
		o.fatalEvent = false
		o.hitl = HITLLax
		o.v2Health = true
		o.version = "2.0.0"
		o.authChatOnly = true
		o.v2Namespaces = true
	}
}
