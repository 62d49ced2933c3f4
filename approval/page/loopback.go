package page

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// shutdownGrace bounds how long closing the listener waits for answers
// being written.
const shutdownGrace = time.Second

// Loopback serves pages on 127.0.0.1, on a random port, while they are
// needed: the listener opens with the first page and closes once no page
// has been open for the idle time (so a page just decided can still answer
// a reload or a second post with 410 for a while).
type Loopback struct {
	pages *Pages
	idle  time.Duration
	log   *slog.Logger

	mu     sync.Mutex
	srv    *http.Server
	base   string // http://127.0.0.1:PORT while listening
	timer  *time.Timer
	closed bool
}

// NewLoopback serves pages on loopback, closing the listener after idle
// with no page open.
func NewLoopback(pages *Pages, idle time.Duration, log *slog.Logger) *Loopback {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Loopback{pages: pages, idle: idle, log: log}
	pages.onChange(l.changed)
	return l
}

// Open opens a page for req and returns its ticket and full URL, starting
// the listener when it is not running. The URL is a secret.
func (l *Loopback) Open(req Request, deadline time.Time, judge Judge) (*Ticket, string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, "", errors.New("approval page listener closed")
	}
	if l.srv == nil {
		if err := l.startLocked(); err != nil {
			return nil, "", err
		}
	}
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	t, err := l.pages.Open(req, deadline, judge)
	if err != nil {
		return nil, "", err
	}
	return t, l.base + t.Path(), nil
}

func (l *Loopback) startLocked() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("approval page listener: %w", err)
	}
	host := ln.Addr().String()
	mux := http.NewServeMux()
	mux.Handle(PathPrefix, l.pages.Handler())
	srv := &http.Server{
		Handler:           onlyHost(host, mux),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       30 * time.Second,
		ErrorLog:          slog.NewLogLogger(l.log.Handler(), slog.LevelDebug),
	}
	l.srv, l.base = srv, "http://"+host
	l.log.Info("approval page listener opened", "addr", host)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			l.log.Error("approval page listener failed", "err", err)
		}
	}()
	return nil
}

// onlyHost refuses a Host other than the listener's own address: a
// DNS-rebinding page that reached loopback under another name gets 421.
func onlyHost(host string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Host, host) {
			securityHeaders(w.Header())
			http.Error(w, "misdirected request", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// changed is told the number of open pages: at none, the idle timer starts.
func (l *Loopback) changed(open int) {
	if open > 0 {
		return
	}
	go func() { // Pages calls this under its lock; take ours outside it
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.srv == nil || l.timer != nil || l.closed {
			return
		}
		// The callback reads t only under l.mu, which this goroutine holds
		// until t is set: reading it unlocked raced with the assignment
		// when the timer fired first (seen under -race on a loaded machine).
		var t *time.Timer
		t = time.AfterFunc(l.idle, func() { l.closeIdle(&t) })
		l.timer = t
	}()
}

// closeIdle closes the listener if timer *t is still the one armed and no
// page opened meanwhile.
func (l *Loopback) closeIdle(t **time.Timer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer != *t {
		return
	}
	l.timer = nil
	if l.srv == nil || l.pages.OpenCount() > 0 {
		return // a page opened meanwhile: its end arms the timer again
	}
	l.stopLocked(context.Background())
}

func (l *Loopback) stopLocked(ctx context.Context) {
	srv := l.srv
	l.srv, l.base = nil, ""
	// Shutdown lets an answer being written finish, but it also waits on
	// connections a browser opened ahead and never used (up to 5 s), so
	// it gets a short bound; whatever is left is closed.
	ctx, cancel := context.WithTimeout(ctx, shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
	}
	l.log.Info("approval page listener closed")
}

// Listening reports the listener's address, or "" when it is closed.
func (l *Loopback) Listening() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.TrimPrefix(l.base, "http://")
}

// Close stops the listener for good.
func (l *Loopback) Close(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	if l.srv != nil {
		l.stopLocked(ctx)
	}
}
