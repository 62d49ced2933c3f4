package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// A client that sends part of a body and stops holds no connection, token
// or not: every refusal is answered and its connection closed within the
// request read timeout, where net/http would otherwise wait for the rest
// of the body for good.
func TestPartialBodyCannotHoldAConnection(t *testing.T) {
	const timeout = 300 * time.Millisecond
	const token = "a-token-of-at-least-16-bytes"
	f := newFixture(t, func(c *Config) {
		c.HTTPToken = token
		c.RequestReadTimeout = timeout
	})
	hs := httptest.NewServer(f.srv.HTTPHandler())
	t.Cleanup(hs.Close)
	host := strings.TrimPrefix(hs.URL, "http://")
	for _, c := range []struct {
		name, method, path, auth string
		status                   int
	}{
		{"no token", http.MethodPost, MCPPath, "", http.StatusUnauthorized},
		{"token, body never finished", http.MethodPost, MCPPath, "Authorization: Bearer " + token + "\r\n", http.StatusRequestTimeout},
		{"unknown path", http.MethodPost, "/nowhere", "", http.StatusNotFound},
		{"health with a body", http.MethodPut, HealthPath, "", http.StatusMethodNotAllowed},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", host)
			require.NoError(t, err)
			defer conn.Close()
			// One byte of a 1000-byte body, then nothing.
			_, err = fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n%sContent-Length: 1000\r\n\r\n{",
				c.method, c.path, host, c.auth)
			require.NoError(t, err)
			// Bounded by far more than the timeout: a machine under load
			// answers late, a held connection never does.
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(40*timeout)))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			require.NoError(t, err, "no response while the body is incomplete")
			_, _ = io.Copy(io.Discard, resp.Body)
			assert.Equal(t, c.status, resp.StatusCode)
			_, err = br.ReadByte()
			assert.ErrorIs(t, err, io.EOF, "the server closed the connection")
		})
	}
}

// The deadline is the body's only: a call that streams for many times the
// request read timeout is answered whole, over the POST's stream and with
// the client's GET stream open.
func TestBodyDeadlineDoesNotCutStreams(t *testing.T) {
	const timeout = 200 * time.Millisecond
	f := newFixture(t, func(c *Config) { c.RequestReadTimeout = timeout },
		kubeqtest.WithFrameDelay(timeout/2))
	cs, prog := f.connect("http", clientOpts{})
	start := time.Now()
	res := call(t, cs, map[string]any{"question": "how are the pods?"})
	require.False(t, res.IsError, textOf(res))
	require.NotEmpty(t, structured(t, res)["answer"])
	require.Greater(t, time.Since(start), 5*timeout, "the turn outlasted the read timeout several times over")
	assert.NotEmpty(t, prog.messages(), "progress came on the stream")
	// The session is still usable afterwards.
	res = call(t, cs, map[string]any{"question": "and now?"})
	require.False(t, res.IsError, textOf(res))
}
