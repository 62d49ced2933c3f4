// Package page serves one-time approval pages: a human whose MCP client
// cannot show a form approves or denies a gate in a browser instead.
//
// A page lives at /approve/<token>, where the token (256 random bits) is
// the only credential. It is good for one decision, until its deadline:
// after that it answers 410, and a token it never issued answers 404 by the
// same code path. Decisions are POSTs that carry the page's CSRF value and
// come from the page's own origin (or from none). Everything the page shows
// that came from the backend is escaped by html/template.
//
// The token is a secret: nothing in this package logs it, and callers must
// never put a page's URL in anything a model can read.
package page

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Request is what a page shows about one gate.
type Request struct {
	ApprovalID   string
	Command      string
	Risk         string
	YAML         string // the manifest to be applied, when the backend sent one
	Conversation string
	Confirm      string // what the human types to approve; "" when nothing is typed
	Note         string // one more line under the gate (e.g. the demo label)
}

// Submission is what a human posted.
type Submission struct {
	Decision string // "approve" or "deny"
	Confirm  string
	Comment  string // the form's reason field
}

// Outcome is the judgement of a submission, as the page reports it.
type Outcome struct {
	Approved bool
	Reason   string // the machine reason, e.g. "confirmation_mismatch"
	Text     string // what happened, in a sentence a person reads
}

// Judge decides a submission. It runs once per page, under the page's
// lock, so it must be quick and must not call back into Pages.
type Judge func(Submission) Outcome

// Decision is a human's submission and its judgement.
type Decision struct {
	Submission
	Outcome
}

// Errors a Wait ends with when no decision came.
var (
	ErrExpired   = errors.New("the approval page expired unanswered")
	ErrWithdrawn = errors.New("the approval page was withdrawn")
	ErrTooMany   = errors.New("too many approval pages are open")
)

// Options tune Pages; zero values take the defaults.
type Options struct {
	Logger *slog.Logger
	// Retain is how long a used, expired or withdrawn page keeps answering
	// 410 rather than 404. Default 15 minutes.
	Retain time.Duration
	// MaxOpen caps the pages open at once. Default 256.
	MaxOpen int
	// Rate and Burst limit requests per client address: Burst at once,
	// then Rate a second. Defaults 2 and 30.
	Rate  float64
	Burst int
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Retain <= 0 {
		o.Retain = 15 * time.Minute
	}
	if o.MaxOpen <= 0 {
		o.MaxOpen = 256
	}
	if o.Rate <= 0 {
		o.Rate = 2
	}
	if o.Burst <= 0 {
		o.Burst = 30
	}
	return o
}

// Pages holds the pages open and the tombstones of finished ones.
type Pages struct {
	opts    Options
	log     *slog.Logger
	limiter *limiter

	mu      sync.Mutex
	entries map[[32]byte]*entry // by the token's SHA-256: no lookup compares token prefixes
	open    int
	idle    func(open int) // told the number of open pages after each change
}

type state int

const (
	stateOpen state = iota
	stateDecided
	stateExpired
	stateWithdrawn
)

type entry struct {
	req      Request
	csrf     string
	deadline time.Time
	judge    Judge
	state    state
	done     chan struct{} // closed when the state leaves stateOpen
	decision Decision
	forget   time.Time // when the tombstone goes
}

// New makes an empty set of pages.
func New(o Options) *Pages {
	o = o.withDefaults()
	return &Pages{opts: o, log: o.Logger, limiter: newLimiter(o.Rate, o.Burst),
		entries: map[[32]byte]*entry{}}
}

// onChange registers f to learn how many pages are open after each change.
func (p *Pages) onChange(f func(open int)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.idle = f
}

// Open makes a page for req, good until deadline, whose submission judge
// decides. The ticket's Path holds the token: hand it only to the human.
func (p *Pages) Open(req Request, deadline time.Time, judge Judge) (*Ticket, error) {
	if judge == nil {
		return nil, errors.New("page: Open without a judge")
	}
	token, err := randomString(32)
	if err != nil {
		return nil, fmt.Errorf("page token: %w", err)
	}
	csrf, err := randomString(16)
	if err != nil {
		return nil, fmt.Errorf("page csrf value: %w", err)
	}
	key := sha256.Sum256([]byte(token))
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sweepLocked(time.Now())
	if p.open >= p.opts.MaxOpen {
		return nil, ErrTooMany
	}
	p.entries[key] = &entry{req: req, csrf: csrf, deadline: deadline, judge: judge,
		done: make(chan struct{}), forget: deadline.Add(p.opts.Retain)}
	p.open++
	p.changedLocked()
	return &Ticket{pages: p, key: key, token: token}, nil
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// sweepLocked drops tombstones past their time, and expires open pages past
// their deadline (their waiters find them expired).
func (p *Pages) sweepLocked(now time.Time) {
	for k, e := range p.entries {
		if e.state == stateOpen && now.After(e.deadline) {
			p.finishLocked(e, stateExpired, now)
		}
		if e.state != stateOpen && now.After(e.forget) {
			delete(p.entries, k)
		}
	}
}

// finishLocked moves an open entry to st.
func (p *Pages) finishLocked(e *entry, st state, now time.Time) {
	if e.state != stateOpen {
		return
	}
	e.state = st
	close(e.done)
	e.forget = later(e.deadline, now).Add(p.opts.Retain)
	p.open--
	p.changedLocked()
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (p *Pages) changedLocked() {
	if p.idle != nil {
		p.idle(p.open)
	}
}

// Open reports how many pages are open.
func (p *Pages) OpenCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.open
}

// Ticket is one open page, for the caller that waits on it.
type Ticket struct {
	pages *Pages
	key   [32]byte
	token string
}

// Path is the page's path, /approve/<token>. It is a secret.
func (t *Ticket) Path() string { return PathPrefix + t.token }

// PathPrefix is where pages are served.
const PathPrefix = "/approve/"

// Wait returns the human's decision, or ErrExpired once the deadline
// passes, or ctx's error (the page is then withdrawn). A decision that
// came before the page was closed is always returned: a human who saw
// "approved" is never overruled by a race with the deadline.
func (t *Ticket) Wait(ctx context.Context) (Decision, error) {
	p := t.pages
	p.mu.Lock()
	e := p.entries[t.key]
	p.mu.Unlock()
	if e == nil {
		return Decision{}, ErrExpired
	}
	timer := time.NewTimer(time.Until(e.deadline))
	defer timer.Stop()
	why, cause := stateWithdrawn, error(nil)
	select {
	case <-e.done:
	case <-timer.C:
		why, cause = stateExpired, ErrExpired
	case <-ctx.Done():
		cause = ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finishLocked(e, why, time.Now())
	switch e.state {
	case stateDecided:
		return e.decision, nil
	case stateExpired:
		return Decision{}, ErrExpired
	default:
		if cause == nil {
			cause = ErrWithdrawn
		}
		return Decision{}, cause
	}
}

// Close withdraws the page if it is still open; it then answers 410.
func (t *Ticket) Close() {
	p := t.pages
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.entries[t.key]; e != nil {
		p.finishLocked(e, stateWithdrawn, time.Now())
	}
}
