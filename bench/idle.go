package bench

import (
	"context"
	"io"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// IdleResult is scenario 5: resident memory of an idle server.
type IdleResult struct {
	StdioRSS     int64 // kubeq-mcp over stdio, initialized, idle
	NodeStdioRSS int64 // the Node.js reference server, same state; 0 when not run
	HTTPRSS      int64 // kubeq-mcp over HTTP, started, no session
	Sessions     int
	HTTPRSSOpen  int64 // with Sessions initialized idle sessions
	PerSession   int64 // (HTTPRSSOpen - HTTPRSS) / Sessions
}

// settle is how long a server is left alone before its RSS is read.
const settle = 500 * time.Millisecond

// Idle runs scenario 5.
func Idle(ctx context.Context, env *Env, sessions int) (IdleResult, error) {
	res := IdleResult{Sessions: sessions}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	be, err := StartBackend()
	if err != nil {
		return res, err
	}
	defer be.Close()

	env.logf("idle: stdio RSS")
	rss := func(dst *int64) func(int, io.Writer) error {
		return func(pid int, stdin io.Writer) error {
			if _, err := io.WriteString(stdin, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n"); err != nil {
				return err
			}
			time.Sleep(settle)
			m, err := ReadMemory(pid)
			*dst = m.RSS
			return err
		}
	}
	if _, err := timeInitialize(ctx, append(env.binArgs(be.URL), "--transport", "stdio"), rss(&res.StdioRSS)); err != nil {
		return res, err
	}
	if env.NodeServer != "" {
		if _, err := timeInitialize(ctx, []string{"node", env.NodeServer, "stdio"}, rss(&res.NodeStdioRSS)); err != nil {
			return res, err
		}
	}

	env.logf("idle: HTTP RSS, then with %d idle sessions", sessions)
	p, err := StartHTTPServer(ctx, env.binArgs(be.URL), env.Stderr)
	if err != nil {
		return res, err
	}
	defer p.Stop()
	time.Sleep(settle)
	m, err := ReadMemory(p.Cmd.Process.Pid)
	if err != nil {
		return res, err
	}
	res.HTTPRSS = m.RSS
	client := NewClient(nil)
	hc := LoopbackHTTPClient(sessions + 8)
	defer hc.CloseIdleConnections()
	open := make([]*sdk.ClientSession, sessions)
	defer closeAll(open)
	if err := parallel(sessions, 10, func(i int) error {
		cs, err := ConnectHTTP(ctx, client, p.MCPURL(), hc)
		open[i] = cs
		return err
	}); err != nil {
		return res, err
	}
	time.Sleep(settle)
	if m, err = ReadMemory(p.Cmd.Process.Pid); err != nil {
		return res, err
	}
	res.HTTPRSSOpen = m.RSS
	if sessions > 0 {
		res.PerSession = (res.HTTPRSSOpen - res.HTTPRSS) / int64(sessions)
	}
	return res, nil
}
