// Package server is kubeq-mcp's MCP layer: the kube_query and kube_health
// tools, the event → progress forwarder, the approval flow, and the stdio
// and streamable HTTP transports. It speaks MCP through mark3labs/mcp-go and
// the backend only through package kubeq's typed API.
package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/kubeq-mcp/kubeq-mcp/approval"
	"github.com/kubeq-mcp/kubeq-mcp/approval/page"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
	"github.com/kubeq-mcp/kubeq-mcp/tasks"
	"github.com/kubeq-mcp/kubeq-mcp/turns"
)

// Config is everything the MCP layer needs. main.go fills it from flags and
// the environment; tests fill it directly.
type Config struct {
	Name    string // server name in initialize; "kubeq-mcp" when empty
	Version string // server version in initialize

	// Backend is the KubeIntellect client. When nil, no product tools are
	// registered (the conformance build adds its own fixtures).
	Backend *kubeq.Client

	Logger *slog.Logger // stderr in the binary; discarded when nil

	ApprovalTimeout time.Duration // how long a human has to answer a gate; 10m when zero
	ConfirmHighRisk bool          // require typing the target's name for high-risk gates
	StateKey        []byte        // 32-byte AES key for sealed request state; random when nil
	AuditLog        io.Writer     // optional extra sink for audit records (one JSON line each)
	Demo            bool          // the backend is simulated: say so in every answer
	// DenyTimeout bounds sending one deny and reading the backend's reply;
	// 30s when zero.
	DenyTimeout time.Duration
	// ShutdownBudget bounds Close: cancelling the calls in flight, waiting
	// for them, and denying the gates left open; 10s when zero. Keep it
	// inside the orchestrator's grace period (docs/deploy.md).
	ShutdownBudget time.Duration
	// EraTTL is how long the backend's /healthz answer about its approval
	// rules (current or older) is trusted before it is read again: a
	// backend can be replaced by an older one while kubeq-mcp runs; 5m
	// when zero.
	EraTTL time.Duration
	// Ledger keeps leases, gate records and used nonces; a memory ledger
	// (one process) when nil. Close closes it.
	Ledger *approval.Ledger
	// AllowUserOverride lets kube_query's caller (the model) choose the
	// backend user with user_id; off, the client's configured user is sent.
	AllowUserOverride bool

	// ApprovalBrowser opens an approval page's URL for a stdio client
	// without forms (page.ParseOpener); nil: such clients are denied.
	ApprovalBrowser page.Opener
	// PageIdle is how long the stdio approval page listener stays open with
	// no page open; 1m when zero.
	PageIdle time.Duration

	// HTTP only.
	HTTPToken      string   // bearer token required on /mcp when set
	AllowedOrigins []string // extra allowed Origin values besides localhost
	// AllowedHosts are Host header values accepted besides loopback ones
	// (mcp-go's DNS-rebinding check; see HTTPHandler).
	AllowedHosts []string

	// CallDeadline is the longest a synchronous kube_query or kube_answer
	// waits for its turn before returning what it has (status "running");
	// nil picks one per known client (see clientLimits), 0 means no
	// deadline.
	CallDeadline *time.Duration
	// AnswerTTL is how long a finished turn's answer is kept for
	// kube_answer; 30m when zero. MaxDetached caps the turns running with
	// no call watching them; 100 when zero.
	AnswerTTL   time.Duration
	MaxDetached int
	// TaskTTL is how long a kube_query task lives from its creation; 1h
	// when zero.
	TaskTTL time.Duration

	// KeepAliveInterval is how often a progress keep-alive is sent while
	// the backend only sends heartbeats; 10s when zero.
	KeepAliveInterval time.Duration
	// CoalesceInterval and CoalesceBytes bound how long answer tokens wait
	// before they are sent as one progress message; 100ms and 256 when zero.
	CoalesceInterval time.Duration
	CoalesceBytes    int
	// FlushTimeout bounds how long a call waits for its last notification
	// to be written before returning; 2s when zero.
	FlushTimeout time.Duration

	// Limits against runaway clients and backends (README, "Limits"); the
	// Default* values when zero.
	MaxRequestBytes    int64         // an HTTP request body on /mcp, or a stdio line
	MaxSessions        int           // live HTTP sessions
	MaxCallsPerSession int           // tool calls in flight on one session
	MaxCalls           int           // tool calls in flight in the process
	MaxAnswerBytes     int64         // answer text kept by one call
	RequestReadTimeout time.Duration // reading an HTTP request body
	WriteTimeout       time.Duration // a write to a client that stopped reading
}

// The default limits.
const (
	DefaultMaxRequestBytes    = 1 << 20
	DefaultMaxSessions        = 10000
	DefaultMaxCallsPerSession = 8
	DefaultMaxCalls           = 1000
	DefaultMaxAnswerBytes     = 8 << 20
	DefaultRequestReadTimeout = 30 * time.Second
	DefaultWriteTimeout       = 2 * time.Minute
)

// Server is one kubeq-mcp MCP server. It can serve stdio or HTTP.
type Server struct {
	cfg       Config
	log       *slog.Logger
	mcp       *mcpserver.MCPServer
	tracker   *deliveryTracker
	sealer    *sealer
	ownerKey  []byte // keys httpOwner (owner.go)
	ledger    *approval.Ledger
	audit     *auditor
	pages     *pages
	counters  counters
	calls     callSlots
	sessions  sessionCap
	busyLog   rateLog
	stallLog  rateLog
	slowLog   rateLog
	cancels   *cancelReasons
	served    *servedSet      // conversations this process has sent turns on
	turns     *turns.Registry // backend turns, read apart from the calls that start them
	live      liveRuns        // runs whose call stopped watching
	tasks     *tasks.Registry // kube_query calls run as tasks (Tasks extension)
	legacyIDs *legacyTaskIDs  // the ids of 2025-11-25 tasks, for their handlers
	drivers   sync.WaitGroup  // goroutines driving detached runs

	mu          sync.Mutex
	streamables []*mcpserver.StreamableHTTPServer // to shut down in Close

	eraMu sync.Mutex
	era   backendEra // what /healthz last said about the backend's approval rules

	stop chan struct{} // closed by Close

	closeOnce   sync.Once
	closing     bool // under mu: Close has begun, no sweeper may start
	inflight    inflightCalls
	callsCtx    context.Context // ends when Close begins: cancels calls in flight
	cancelCalls context.CancelFunc
	hardCtx     context.Context // ends when Close's budget is spent: cuts off denials
	hardStop    context.CancelFunc
	sweepOnce   sync.Once
	sweepWG     sync.WaitGroup
}

// New builds a server from cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Name == "" {
		cfg.Name = "kubeq-mcp"
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ApprovalTimeout <= 0 {
		cfg.ApprovalTimeout = 10 * time.Minute
	}
	if cfg.DenyTimeout <= 0 {
		cfg.DenyTimeout = defaultDenyTimeout
	}
	if cfg.ShutdownBudget <= 0 {
		cfg.ShutdownBudget = defaultShutdownBudget
	}
	if cfg.EraTTL <= 0 {
		cfg.EraTTL = defaultEraTTL
	}
	if cfg.AnswerTTL <= 0 {
		cfg.AnswerTTL = 30 * time.Minute
	}
	if cfg.TaskTTL <= 0 {
		cfg.TaskTTL = time.Hour
	}
	if cfg.MaxDetached <= 0 {
		cfg.MaxDetached = 100
	}
	if cfg.KeepAliveInterval <= 0 {
		cfg.KeepAliveInterval = 10 * time.Second
	}
	if cfg.CoalesceInterval <= 0 {
		cfg.CoalesceInterval = 100 * time.Millisecond
	}
	if cfg.CoalesceBytes <= 0 {
		cfg.CoalesceBytes = 256
	}
	if cfg.FlushTimeout <= 0 {
		cfg.FlushTimeout = 2 * time.Second
	}
	cfg.setLimitDefaults()
	key := cfg.StateKey
	if key == nil {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generate state key: %w", err)
		}
	}
	seal, err := newSealer(key)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		tracker: newDeliveryTracker(),
		sealer:  seal,
		ledger:  cfg.Ledger,
		audit:   newAuditor(cfg.Logger, cfg.AuditLog, configuredUser(cfg.Backend)),
		pages:   newPages(cfg),
		stop:    make(chan struct{}),
		cancels: newCancelReasons(),
		served:  newServedSet(maxServed),
		turns: turns.New(turns.Options{AnswerTTL: cfg.AnswerTTL, MaxDetached: cfg.MaxDetached,
			// Above the call's own cap, so the call sees the text that
			// crosses it and cuts it there (answer.go).
			MaxAnswerBytes: int(min(cfg.MaxAnswerBytes+1<<20, 1<<30)),
			Logger:         cfg.Logger.With("component", "turns")}),

		tasks:     tasks.New(cfg.TaskTTL, taskPollInterval),
		legacyIDs: newLegacyTaskIDs(),
	}
	s.ownerKey = deriveOwnerKey(key)
	if s.ledger == nil {
		s.ledger = approval.NewLedger(approval.NewMemoryStore(), approval.Options{})
	}
	s.callsCtx, s.cancelCalls = context.WithCancel(context.Background())
	s.hardCtx, s.hardStop = context.WithCancel(context.Background())
	// One set of hooks: mcp-go keeps only the last WithHooks.
	hooks := s.sessionHooks()
	hooks.AddBeforeCallTool(stampRequestID)
	hooks.AddBeforeCallTool(dropModernTaskParam) // before the hooks that read the param
	hooks.AddBeforeCallTool(s.boundTaskTTL)
	hooks.AddBeforeCallTool(s.legacyIDs.mark)
	hooks.AddAfterCallTool(func(ctx context.Context, _ any, _ *mcp.CallToolRequest, _ any) { s.legacyIDs.done(ctx) })
	hooks.AddOnError(func(ctx context.Context, _ any, method mcp.MCPMethod, _ any, _ error) {
		if method == mcp.MethodToolsCall {
			s.legacyIDs.done(ctx)
		}
	})
	taskHooks := &mcpserver.TaskHooks{}
	taskHooks.AddOnTaskCreated(func(ctx context.Context, m mcpserver.TaskMetrics) { s.legacyIDs.created(ctx, m, s.cfg.TaskTTL) })
	s.mcp = mcpserver.NewMCPServer(cfg.Name, cfg.Version,
		mcpserver.WithToolCapabilities(false),
		mcpserver.WithLogging(),
		mcpserver.WithRecovery(),
		mcpserver.WithHooks(hooks),
		mcpserver.WithToolHandlerMiddleware(s.limitCalls), // outermost: a busy call starts nothing
		mcpserver.WithToolHandlerMiddleware(s.notifierMiddleware),
		mcpserver.WithInstructions(instructions),
		mcpserver.WithExtensions(map[string]any{TasksExtension: map[string]any{}}),
		// The 2025-11-25 tasks: list, cancel, tools/call.
		mcpserver.WithTaskCapabilities(true, true, true),
		// 2025-11-25 tasks (mcp-go's) run detached like the extension's:
		// the same cap on how many run at once.
		mcpserver.WithMaxConcurrentTasks(cfg.MaxDetached),
		mcpserver.WithTaskHooks(taskHooks),
	)
	go s.expireLiveRuns()
	go s.sweepTasks()
	if cfg.Backend != nil {
		s.addQueryTool()
		s.addAnswerTool()
		s.addHealthTool()
	}
	if s.ledger.Shared() {
		s.startSweeper() // other replicas' records are due here too
	}
	return s, nil
}

func (c *Config) setLimitDefaults() {
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.MaxCallsPerSession <= 0 {
		c.MaxCallsPerSession = DefaultMaxCallsPerSession
	}
	if c.MaxCalls <= 0 {
		c.MaxCalls = DefaultMaxCalls
	}
	if c.MaxAnswerBytes <= 0 {
		c.MaxAnswerBytes = DefaultMaxAnswerBytes
	}
	if c.RequestReadTimeout <= 0 {
		c.RequestReadTimeout = DefaultRequestReadTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
}

// MCPServer is the underlying mcp-go server, for adding test fixtures.
func (s *Server) MCPServer() *mcpserver.MCPServer { return s.mcp }

// Close cancels the calls in flight and denies every gate still pending
// (within Config.ShutdownBudget), then ends the HTTP sessions and the
// background work of every handler HTTPHandler made. The audit sink is the
// caller's to close, after Close.
func (s *Server) Close() error {
	s.closeOnce.Do(s.shutdown)
	s.mu.Lock()
	hs := s.streamables
	s.streamables = nil
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.pages.loopback.Close(ctx)
	var errs []error
	for _, h := range hs {
		if err := h.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

const instructions = `kubeq-mcp connects you to KubeIntellect, an AI SRE for Kubernetes.
Use kube_query for any question about the cluster: diagnosis, status, logs, metrics, and changes.
Pass conversation_id from a previous result to follow up in the same conversation.
Changes to the cluster are proposed by the agent and approved or denied by the human in a form;
you cannot approve them, and questions that are only approval words are refused.
When a kube_query result has status "running", the investigation goes on: call kube_answer with its
conversation_id (and wait_seconds) until the status is "complete".
Use kube_health when kube_query fails to learn whether the backend is reachable.`

// errBadState is how every sealed-state failure looks to callers: one
// error, so a client learns nothing about why a forged state failed.
var errBadState = errors.New("request state is invalid")

// errStateExpired is an authentic state past its expiry: the conversation
// it names is still known, so its gate can be denied.
var errStateExpired = errors.New("request state has expired")
