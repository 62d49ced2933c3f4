package server

import (
	"log/slog"
	"sync"
	"time"
)

// rateLog logs a repeated refusal at most once a minute, with how many
// were not logged since, so that a flood of refused requests cannot fill
// the log.
type rateLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

const rateLogEvery = time.Minute

func (r *rateLog) warn(log *slog.Logger, msg string, args ...any) {
	r.mu.Lock()
	now := time.Now()
	if !r.last.IsZero() && now.Sub(r.last) < rateLogEvery {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	n := r.suppressed
	r.last, r.suppressed = now, 0
	r.mu.Unlock()
	log.Warn(msg, append(args, "not_logged_since_last", n, "logged_at_most", "once a minute")...)
}
