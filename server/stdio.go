package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"

	mcpserver "github.com/mark3labs/mcp-go/server"
)

// stdioStreamKey is the delivery key of the one stdio stream.
const stdioStreamKey = "stdio"

// ServeStdio serves MCP over in/out (the process's stdin and stdout) until
// in ends or ctx is cancelled. Nothing but JSON-RPC is ever written to out:
// the library's own error log goes to the server's slog logger.
//
// mcp-go keeps the stdio session in a package variable, so one process can
// serve only one stdio connection at a time.
func (s *Server) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	stdio := mcpserver.NewStdioServer(s.mcp)
	stdio.SetErrorLogger(slog.NewLogLogger(s.log.With("component", "mcp-stdio").Handler(), slog.LevelWarn))
	// mcp-go runs tool calls on a pool of workers (5 by default) and queues
	// the rest unseen: a call past the pool would wait for one to end (an
	// approval, minutes) instead of reaching limitCalls, which refuses it at
	// once. One worker more than the calls a session may run, at most
	// mcp-go's 100.
	mcpserver.WithWorkerPoolSize(min(s.cfg.MaxCallsPerSession+1, 100))(stdio)
	link := newStdioLink(in, out)
	link.maxLine = int(s.cfg.MaxRequestBytes) + 1 // its newline
	link.onMessage = func(msg []byte) {
		s.cancels.noteMessage("stdio", msg)
		if isJSONRPCResponse(msg) {
			s.counters.clientAnswers.Add(1) // read in order: what follows on stdin comes after it
		}
	}
	// The stdio session owns its tasks: a random name per connection.
	sid := make([]byte, 16)
	if _, err := rand.Read(sid); err != nil {
		return fmt.Errorf("stdio session id: %w", err)
	}
	owner := "stdio:" + hex.EncodeToString(sid)
	link.intercept = func(msg []byte) (reply []byte, handled bool) {
		if !isTaskMethod(msg) {
			return nil, false
		}
		return s.taskRPC(owner, msg, nil), true
	}
	link.rewrite = taskHandle
	stdio.SetContextFunc(func(ctx context.Context) context.Context {
		ctx = withOwner(withStreamKey(withTransport(ctx, "stdio"), stdioStreamKey), owner)
		return context.WithValue(ctx, stdioLinkKey{}, link)
	})
	err := stdio.Listen(ctx, link, s.tracker.writer(stdioStreamKey, link))
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
