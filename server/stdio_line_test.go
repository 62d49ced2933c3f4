package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A stdio line over --max-request-bytes is read to its end but not kept:
// answered as a parse error, and the next line is served as usual.
func TestStdioLineOverTheLimitIsDropped(t *testing.T) {
	const limit = 4096
	f := newFixture(t, func(c *Config) { c.MaxRequestBytes = limit })
	cr, sw := io.Pipe()
	sr, cw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); _ = f.srv.ServeStdio(ctx, sr, sw) }()
	t.Cleanup(func() { cancel(); _ = cw.Close(); _ = sw.Close(); <-served })
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(cr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func() string {
		select {
		case l := <-lines:
			return l
		case <-time.After(10 * time.Second):
			t.Fatal("no reply")
			return ""
		}
	}
	write := func(s string) {
		_, err := io.WriteString(cw, s)
		require.NoError(t, err)
	}
	write(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}` + "\n")
	require.Contains(t, next(), `"id":1`)
	write(`{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n")
	// 64 KiB of one line, written in pieces: more than the reader's buffer.
	big := `{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"pad":"` + strings.Repeat("x", 64<<10) + `"}}` + "\n"
	for i := 0; i < len(big); i += 1000 {
		write(big[i:min(i+1000, len(big))])
	}
	var refused struct {
		ID    json.RawMessage `json:"id"`
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(next()), &refused))
	assert.Equal(t, "null", string(refused.ID))
	assert.Equal(t, -32700, refused.Error.Code)
	assert.Contains(t, refused.Error.Message, "4096 bytes")
	write(`{"jsonrpc":"2.0","id":3,"method":"tools/list"}` + "\n")
	assert.Contains(t, next(), `"id":3`, "the next line is served")
}
