package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// stdioLink sits between the stdio transport and the process's stdin and
// stdout, so the server can ping the client itself.
//
// Why: the TypeScript SDK client (inside Claude Desktop, Claude Code and
// most toolchains) handles notifications one microtask later than
// responses. When a call's last progress and its result arrive in the same
// read of the pipe, the result removes the progress handler first and the
// progress is dropped as "unknown token" — though it was written first. A
// ping answered by the client proves it has run every notification queued
// before the ping (its handlers run in order), so the result is written
// after the pong.
type stdioLink struct {
	out   io.Writer
	outMu sync.Mutex // one JSON-RPC line per Write, never interleaved

	in      *bufio.Reader
	pending []byte // the rest of the line being passed to the transport
	maxLine int    // a longer line (newline included) is dropped, answered as a parse error; 0: no bound

	seq     atomic.Int64
	mu      sync.Mutex
	waiters map[string]chan struct{}
	mute    atomic.Bool // the client did not answer a ping: stop asking

	onMessage func([]byte) // sees every client message before the transport
	// intercept answers a client message itself (the Tasks extension's
	// methods, which mcp-go does not know); rewrite sees every message out.
	intercept func([]byte) (reply []byte, handled bool)
	rewrite   func([]byte) []byte
}

const pingIDPrefix = "kubeq-mcp-ping-"

func newStdioLink(in io.Reader, out io.Writer) *stdioLink {
	return &stdioLink{out: out, in: bufio.NewReaderSize(in, 64<<10), waiters: make(map[string]chan struct{})}
}

// Write writes one message for the transport.
func (l *stdioLink) Write(p []byte) (int, error) {
	if l.rewrite != nil {
		if q := l.rewrite(p); len(q) != len(p) || !bytes.Equal(q, p) {
			l.outMu.Lock()
			defer l.outMu.Unlock()
			if _, err := l.out.Write(q); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	l.outMu.Lock()
	defer l.outMu.Unlock()
	return l.out.Write(p)
}

// Read passes client messages to the transport, keeping the answers to our
// own pings.
func (l *stdioLink) Read(p []byte) (int, error) {
	for len(l.pending) == 0 {
		line, tooLong, err := l.readLine()
		if tooLong {
			_, _ = l.Write([]byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,`+
				`"message":"Parse error: a message over %d bytes was dropped unread (--max-request-bytes)"}}`+"\n", l.maxLine-1)))
			line = nil
		}
		if len(line) > 0 && l.takePong(line) {
			line = nil
		}
		if len(line) > 0 {
			if l.onMessage != nil {
				l.onMessage(line)
			}
			if l.intercept != nil {
				if reply, ok := l.intercept(bytes.TrimSpace(line)); ok {
					if reply != nil {
						_, _ = l.Write(append(reply, '\n'))
					}
					if err != nil {
						return 0, err
					}
					continue
				}
			}
			l.pending = disambiguate(line)
			break
		}
		if err != nil {
			return 0, err
		}
	}
	n := copy(p, l.pending)
	l.pending = l.pending[n:]
	return n, nil
}

// readLine reads the next line, its newline included. One over maxLine
// is read to its end but not kept (tooLong): a client cannot grow the
// server's memory with a line that never ends.
func (l *stdioLink) readLine() (line []byte, tooLong bool, err error) {
	for {
		frag, err := l.in.ReadSlice('\n')
		if !tooLong {
			if l.maxLine > 0 && len(line)+len(frag) > l.maxLine {
				tooLong, line = true, nil
			} else {
				line = append(line, frag...)
			}
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, tooLong, err
		}
	}
}

// takePong reports whether line answers one of our pings, and wakes its
// waiter.
func (l *stdioLink) takePong(line []byte) bool {
	if !bytes.Contains(line, []byte(pingIDPrefix)) {
		return false
	}
	var m struct {
		ID     string  `json:"id"`
		Method *string `json:"method"`
	}
	if json.Unmarshal(line, &m) != nil || m.Method != nil || len(m.ID) <= len(pingIDPrefix) || m.ID[:len(pingIDPrefix)] != pingIDPrefix {
		return false
	}
	l.mu.Lock()
	ch := l.waiters[m.ID]
	delete(l.waiters, m.ID)
	l.mu.Unlock()
	if ch != nil {
		close(ch)
	}
	return true
}

// barrier pings the client and waits for its answer, at most limit. A
// client that never answers is not pinged again.
func (l *stdioLink) barrier(ctx context.Context, limit time.Duration) bool {
	if l.mute.Load() {
		return false
	}
	id := fmt.Sprintf("%s%d", pingIDPrefix, l.seq.Add(1))
	ch := make(chan struct{})
	l.mu.Lock()
	l.waiters[id] = ch
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.waiters, id)
		l.mu.Unlock()
	}()
	msg, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": "ping"})
	if _, err := l.Write(append(msg, '\n')); err != nil {
		return false
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-ch:
		return true
	case <-timer.C:
		l.mute.Store(true)
		return false
	case <-ctx.Done():
		return false
	}
}

type stdioLinkKey struct{}

func stdioLinkFrom(ctx context.Context) *stdioLink {
	l, _ := ctx.Value(stdioLinkKey{}).(*stdioLink)
	return l
}
