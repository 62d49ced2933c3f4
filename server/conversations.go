package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
)

// conversations serialises turns per conversation and remembers gates left
// pending on one.
//
// The backend keys its stream queue by X-Session-ID: a second concurrent
// turn on a session replaces the first one's queue and the first stream
// hangs. And any message sent while a gate is pending is taken as the
// answer to it. So one turn at a time, and a pending gate is denied before
// anything else is said on that conversation.
type conversations struct {
	mu    sync.Mutex
	convs map[string]*conversation
}

type conversation struct {
	turn    chan struct{} // holds one token: the right to run a turn
	users   int           // callers holding or waiting for turn
	pending *pendingGate  // a gate asked of a client that has not answered yet
}

// pendingGate is a gate whose answer is outstanding: a 2026-era client was
// sent input_required, or a deny could not be delivered.
type pendingGate struct {
	Nonce string // of the sealed state the client holds; "" when none
	Gate  kubeq.HitlRequest
	User  string // body "user" of the conversation's turns

	// Blind: a gate may or may not be pending (an older backend without
	// history); nothing is known of it.
	Blind bool

	// Who asked, for the audit record of a deny sent later on its behalf.
	ClientName, ClientVersion, Transport string
	Expires                              time.Time // when the human's time is up; zero: no deadline (a deny that failed)
}

func newConversations() *conversations {
	return &conversations{convs: make(map[string]*conversation)}
}

// acquire waits for the right to run a turn on id. Call the returned
// release exactly once.
func (c *conversations) acquire(ctx context.Context, id string) (release func(), err error) {
	c.mu.Lock()
	conv := c.convs[id]
	if conv == nil {
		conv = &conversation{turn: make(chan struct{}, 1)}
		conv.turn <- struct{}{}
		c.convs[id] = conv
	}
	conv.users++
	c.mu.Unlock()

	select {
	case <-conv.turn:
		var once sync.Once
		return func() {
			once.Do(func() {
				conv.turn <- struct{}{}
				c.done(id, conv)
			})
		}, nil
	case <-ctx.Done():
		c.done(id, conv)
		return nil, fmt.Errorf("waiting for the previous turn on conversation %s: %w", id, ctx.Err())
	}
}

// done drops a user and forgets the conversation when nothing refers to it.
func (c *conversations) done(id string, conv *conversation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	conv.users--
	if conv.users == 0 && conv.pending == nil {
		delete(c.convs, id)
	}
}

// setPending records a gate left pending on id. The caller holds the turn.
func (c *conversations) setPending(id string, p *pendingGate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	conv := c.convs[id]
	if conv == nil { // cannot happen while the caller holds the turn
		conv = &conversation{turn: make(chan struct{}, 1)}
		conv.turn <- struct{}{}
		c.convs[id] = conv
	}
	conv.pending = p
}

// takePending removes and returns the gate pending on id, if any. The
// caller holds the turn.
func (c *conversations) takePending(id string) *pendingGate {
	c.mu.Lock()
	defer c.mu.Unlock()
	conv := c.convs[id]
	if conv == nil {
		return nil
	}
	p := conv.pending
	conv.pending = nil
	return p
}

// expired lists the conversations whose pending gate expired before now.
func (c *conversations) expired(now time.Time) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for id, conv := range c.convs {
		if p := conv.pending; p != nil && !p.Expires.IsZero() && !now.Before(p.Expires) {
			out = append(out, id)
		}
	}
	return out
}

// pendingIDs lists the conversations with a gate pending.
func (c *conversations) pendingIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for id, conv := range c.convs {
		if conv.pending != nil {
			out = append(out, id)
		}
	}
	return out
}
