package main

// The limits of README's "Limits" table, on the built binary: what a
// runaway client or backend gets, and what it costs the process.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// xReader is an endless stream of 'x', to pad a body without holding it.
type xReader struct{}

func (xReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

const initPrefix = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",` +
	`"capabilities":{},"clientInfo":{"name":"limits-test","version":"1"},"pad":"`

// paddedInitialize is an initialize request of exactly size bytes.
func paddedInitialize(size int64) io.Reader {
	const suffix = `"}}`
	pad := size - int64(len(initPrefix)) - int64(len(suffix))
	return io.MultiReader(strings.NewReader(initPrefix), io.LimitReader(xReader{}, pad), strings.NewReader(suffix))
}

// rawPost sends a POST to /mcp on a fresh connection: head holds extra
// header lines, body is written by write (which may fail once the server
// stops reading). It returns the response with its body read.
func rawPost(t *testing.T, endpoint *url.URL, head string, write func(io.Writer) error) (*http.Response, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", endpoint.Host, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(60*time.Second)))
	_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
		"Accept: application/json, text/event-stream\r\n%s\r\n", endpoint.Path, endpoint.Host, head)
	require.NoError(t, err)
	go func() { _ = write(conn) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func TestBinaryRefusesLargeBody(t *testing.T) {
	stderr := &syncBuffer{}
	cmd, endpoint := startHTTPBinary(t, kubeqMCPBinary(t), stderr, "--url", "http://127.0.0.1:9")
	u, err := url.Parse(endpoint)
	require.NoError(t, err)
	pid := cmd.Process.Pid
	const limit = 1 << 20 // the default

	// A body just under the limit is served.
	resp, body := rawPost(t, u, fmt.Sprintf("Content-Length: %d\r\n", limit-1), func(w io.Writer) error {
		_, err := io.Copy(w, paddedInitialize(limit-1))
		return err
	})
	require.Equal(t, http.StatusOK, resp.StatusCode, body)

	before := readProcMem(t, pid)
	resetPeak(t, pid)
	const size = 200 << 20
	// Declared too large: refused unread.
	resp, body = rawPost(t, u, fmt.Sprintf("Content-Length: %d\r\n", size), func(w io.Writer) error {
		_, err := io.Copy(w, paddedInitialize(size))
		return err
	})
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.Contains(t, body, `"error":{"code":-32600,"message":"request body too large: the limit is 1048576 bytes (--max-request-bytes)"}`)
	// Chunked, so its size is known only by reading: refused past the limit.
	resp, body = rawPost(t, u, "Transfer-Encoding: chunked\r\n", func(w io.Writer) error {
		cw := httputil.NewChunkedWriter(w)
		if _, err := io.Copy(cw, paddedInitialize(size)); err != nil {
			return err
		}
		return cw.Close()
	})
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.Contains(t, body, "the limit is 1048576 bytes")
	after := readProcMem(t, pid)
	t.Logf("two 200 MB bodies refused: before %v; after %v; peak growth %.1f MiB",
		before, after, float64(after.HWM-before.RSS)/(1<<20))
	assert.LessOrEqual(t, after.HWM-before.RSS, int64(limit+4<<20),
		"the peak grew by more than the limit and 4 MiB")
}

func TestBinarySlowBodyTimesOut(t *testing.T) {
	const timeout = 500 * time.Millisecond
	stderr := &syncBuffer{}
	_, endpoint := startHTTPBinary(t, kubeqMCPBinary(t), stderr, "--url", "http://127.0.0.1:9",
		"--request-read-timeout", timeout.String(), "--idle-timeout", "1s")
	u, err := url.Parse(endpoint)
	require.NoError(t, err)

	// One byte of a 1000-byte body, then nothing.
	start := time.Now()
	resp, body := rawPost(t, u, "Content-Length: 1000\r\n", func(w io.Writer) error {
		_, err := w.Write([]byte("{"))
		return err
	})
	waited := time.Since(start)
	assert.Equal(t, http.StatusRequestTimeout, resp.StatusCode, body)
	assert.Contains(t, body, "request body not received within 500ms (--request-read-timeout)")
	assert.True(t, resp.Close, "the connection is closed")
	assert.GreaterOrEqual(t, waited, timeout, "answered before the timeout")
	// stderr reaches the test through a pipe, apart from the response: wait for the line.
	assert.Eventually(t, func() bool {
		return strings.Contains(stderr.String(), "closed a connection whose request body did not arrive in time")
	}, 10*time.Second, 10*time.Millisecond, "the slow body is logged: %s", stderr)

	// An idle keep-alive connection is closed after --idle-timeout.
	conn, err := net.Dial("tcp", u.Host)
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", u.Host)
	require.NoError(t, err)
	br := bufio.NewReader(conn)
	r, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, r.Body)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
	_, err = br.ReadByte()
	assert.ErrorIs(t, err, io.EOF, "the idle connection was closed by the server")
}

// limitsBinary starts the binary over HTTP in front of backend with extra
// flags.
func limitsBinary(t *testing.T, backend *kubeqtest.Server, args ...string) (*exec.Cmd, *binInstance) {
	t.Helper()
	b := &binInstance{t: t, transport: "http", stderr: &syncBuffer{}}
	var cmd *exec.Cmd
	cmd, b.endpoint = startHTTPBinary(t, kubeqMCPBinary(t), b.stderr,
		append([]string{"--url", backend.URL, "--retry-delays", "10ms", "--log-level", "debug"}, args...)...)
	return cmd, b
}

func toolText(res *sdk.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func TestBinaryBusyCalls(t *testing.T) {
	backend := kubeqtest.NewServer(kubeqtest.WithHeartbeat(20 * time.Millisecond))
	t.Cleanup(backend.Close)
	release := make(chan struct{})
	for i := range 4 {
		backend.Handle(fmt.Sprintf("hold %d", i), kubeqtest.Script{
			kubeqtest.Status("analyzing", "holding"), kubeqtest.WaitFor(release), kubeqtest.Tokens("done"),
		})
	}
	// A short body timeout too: the calls' response streams outlive it.
	_, bin := limitsBinary(t, backend, "--max-calls-per-session", "2", "--max-calls", "3",
		"--request-read-timeout", "300ms")
	a := bin.connect("2025-11-25", nil)
	b := bin.connect("2025-11-25", nil)
	call := func(cs *sdk.ClientSession, q string) (*sdk.CallToolResult, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		return cs.CallTool(ctx, &sdk.CallToolParams{Name: "kube_query", Arguments: map[string]any{"question": q}})
	}
	type outcome struct {
		res *sdk.CallToolResult
		err error
	}
	held := make(chan outcome, 3)
	hold := func(cs *sdk.ClientSession, q string, want int) {
		go func() {
			res, err := call(cs, q)
			held <- outcome{res, err}
		}()
		require.Eventually(t, func() bool { return len(backend.ChatRequests()) == want },
			20*time.Second, 5*time.Millisecond)
	}
	hold(a, "hold 0", 1)
	hold(a, "hold 1", 2)

	res, err := call(a, "hold 2")
	require.NoError(t, err)
	assert.True(t, res.IsError)
	assert.Contains(t, toolText(res), "busy: 2 calls in flight on this session")

	hold(b, "hold 3", 3)
	res, err = call(b, "hold 2")
	require.NoError(t, err)
	assert.True(t, res.IsError)
	assert.Contains(t, toolText(res), "busy: 3 calls in flight on this server")
	// kube_health counts too.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err = b.CallTool(ctx, &sdk.CallToolParams{Name: "kube_health"})
	require.NoError(t, err)
	assert.Contains(t, toolText(res), "busy: 3 calls in flight on this server")
	assert.Len(t, backend.ChatRequests(), 3, "a refused call sends nothing")

	// Held past the body timeout, the calls still end normally.
	time.Sleep(600 * time.Millisecond)
	close(release)
	for range 3 {
		o := <-held
		require.NoError(t, o.err)
		assert.False(t, o.res.IsError, toolText(o.res))
		assert.Contains(t, toolText(o.res), "done")
	}
	res, err = call(a, "hold 2")
	require.NoError(t, err)
	assert.False(t, res.IsError, "slots are given back: %s", toolText(res))
	assert.Contains(t, bin.stderr.String(), "refused a tool call: too many calls in flight")
}

func TestBinaryAnswerCap(t *testing.T) {
	for _, version := range []string{"2025-11-25", ""} {
		name := version
		if name == "" {
			name = "2026-era"
		}
		t.Run(name, func(t *testing.T) { runAnswerCap(t, version) })
	}
}

// runAnswerCap streams a 50 MB answer followed by a gate through a binary
// that keeps 2 MiB of it.
func runAnswerCap(t *testing.T, version string) {
	const (
		capBytes = 2 << 20
		frames   = 12800
	)
	token := strings.Repeat("a", 4095) + " "
	backend := kubeqtest.NewServer(kubeqtest.WithHeartbeat(time.Second))
	t.Cleanup(backend.Close)
	backend.Handle("flood", kubeqtest.Script{
		kubeqtest.Status("analyzing", "looping"),
		kubeqtest.Flood(frames, token),
		kubeqtest.Gate{Command: "kubectl delete pod web-1 -n shop", ActionID: "g-1",
			OnDeny: kubeqtest.Script{kubeqtest.Tokens("I left web-1 running.")}},
	})
	cmd, bin := limitsBinary(t, backend, "--max-answer-bytes", "2MiB")
	var forms atomic.Int32
	cs := bin.connect(version, &sdk.ClientOptions{
		ElicitationHandler: func(context.Context, *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
			forms.Add(1)
			return &sdk.ElicitResult{Action: "accept", Content: map[string]any{"decision": "deny", "confirm": "web-1"}}, nil
		},
	})
	pid := cmd.Process.Pid
	before := readProcMem(t, pid)
	resetPeak(t, pid)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "kube_query", Arguments: map[string]any{"question": "flood"},
		Meta: sdk.Meta{"progressToken": "p-flood"}})
	require.NoError(t, err)
	after := readProcMem(t, pid)
	t.Logf("a %d MB answer cut at %d bytes: before %v; after %v; peak growth %.1f MiB",
		frames*len(token)/1e6, capBytes, before, after, float64(after.HWM-before.RSS)/(1<<20))

	require.False(t, res.IsError, toolText(res))
	out, ok := res.StructuredContent.(map[string]any)
	require.True(t, ok)
	answer, _ := out["answer"].(string)
	assert.True(t, strings.HasPrefix(answer, token+token), "the first part is kept")
	m := regexp.MustCompile(`\[kubeq-mcp: the answer was cut at (\d+) bytes, the limit set by --max-answer-bytes; ` +
		`KubeIntellect sent (\d+) bytes, which were read to the end of the turn but not kept\.\]$`).FindStringSubmatch(answer)
	require.NotNil(t, m, "no cut note at the end: %q", answer[max(0, len(answer)-400):])
	assert.Equal(t, fmt.Sprint(capBytes), m[1])
	sent, _ := strconv.Atoi(m[2])
	assert.Greater(t, sent, frames*len(token), "every byte was counted")
	assert.LessOrEqual(t, len(answer), capBytes+1024)
	if version == "" {
		// The 2026-era client carries the answer across the approval in a
		// state that must fit in a request: it was cut further, and says so.
		assert.Contains(t, answer, "[kubeq-mcp: the answer before the approval was cut at ")
		assert.Less(t, len(answer), 1<<20)
	}
	assert.NotContains(t, answer, "I left web-1 running.", "text after the cut is not kept")

	// The gate after the cut was asked and denied, and the turn was read
	// to its end.
	assert.Equal(t, int32(1), forms.Load())
	approvals := binApprovals(t, res)
	require.Len(t, approvals, 1)
	assert.Equal(t, "g-1", approvals[0]["approval_id"])
	assert.Equal(t, "user_denied", approvals[0]["reason"])
	reqs := backend.ChatRequests()
	require.GreaterOrEqual(t, len(reqs), 2)
	assert.True(t, reqs[0].Finished && !reqs[0].Disconnected, "the flood turn was read to [DONE]: %+v", reqs[0])
	// Peak memory: the turn was not kept. Whole, it would be copied several
	// times over (builder, join, text, JSON of the result, its SSE frame).
	assert.Less(t, after.HWM-before.RSS, int64(frames*len(token)), "the peak grew by more than the turn's size")
}

// mcpPost sends one JSON-RPC message to endpoint and returns the response
// with its body read.
func mcpPost(t *testing.T, endpoint, session, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	}
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// rawSession initializes a 2025-11-25 session with plain HTTP requests.
func rawSession(t *testing.T, endpoint string) string {
	t.Helper()
	resp, body := mcpPost(t, endpoint, "", initPrefix+`"}}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	session := resp.Header.Get("Mcp-Session-Id")
	require.NotEmpty(t, session)
	resp, body = mcpPost(t, endpoint, session, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, body)
	return session
}

// stalledCall starts the binary with args in front of a chatty turn (see
// stalledTurn), calls kube_query with a progress token on a connection
// whose reader never reads, and returns once the backend turn has ended,
// with the process's memory from before the call.
func stalledCall(t *testing.T, args ...string) (bin *binInstance, conn net.Conn, pid int, before procMem) {
	t.Helper()
	backend := kubeqtest.NewServer(kubeqtest.WithHeartbeat(time.Second))
	t.Cleanup(backend.Close)
	backend.Handle("a chatty turn", stalledTurn(t))
	cmd, bin := limitsBinary(t, backend, append([]string{"--max-answer-bytes", fmt.Sprint(stalledAnswerCap)}, args...)...)
	pid = cmd.Process.Pid
	u, err := url.Parse(bin.endpoint)
	require.NoError(t, err)
	session := rawSession(t, bin.endpoint)

	conn, err = net.Dial("tcp", u.Host)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	require.NoError(t, conn.(*net.TCPConn).SetReadBuffer(stalledReadBuffer))
	call := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"kube_query",` +
		`"arguments":{"question":"a chatty turn"},"_meta":{"progressToken":"p-stall"}}}`
	before = readProcMem(t, pid)
	resetPeak(t, pid)
	_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
		"Accept: application/json, text/event-stream\r\nMcp-Session-Id: %s\r\nMcp-Protocol-Version: 2025-11-25\r\n"+
		"Content-Length: %d\r\n\r\n%s", u.Path, u.Host, session, len(call), call)
	require.NoError(t, err)

	// The whole turn streams while nobody reads: the call does not wait
	// for the reader, and the backend is read to its end.
	require.Eventually(t, func() bool {
		reqs := backend.ChatRequests()
		return len(reqs) == 1 && reqs[0].Finished
	}, 5*time.Minute, 50*time.Millisecond, "the turn did not end")
	return bin, conn, pid, before
}

const (
	stalledAnswerCap  = 1 << 20  // --max-answer-bytes of the stalled calls
	stalledReadBuffer = 64 << 10 // the stalled reader's socket receive buffer
	stalledStatusSize = 4 << 10  // each status line of the turn, at the backend
)

// stalledTurn is a turn of more progress than can reach a reader that does
// not read, however fast or slow the machine runs, so that some is certainly
// dropped. What can reach it is fixed: the server's socket send buffer (at
// most the kernel's tcp_wmem maximum), the reader's receive buffer (Linux
// doubles what is set), the first 64 progress messages handed to mcp-go
// straight away and the 100 of its POST-stream queue, and the outbox (256
// KiB). Each status line makes a progress message of over 300 bytes (it is
// cut at 300 characters), so status lines alone carry one and a half times
// that. Each is 4 KB at the backend: a turn that kept them all, as turns
// did, holds tens of MB. Between them comes the answer, as much as the cap
// keeps.
func stalledTurn(t *testing.T) kubeqtest.Script {
	t.Helper()
	const msg = 512 // no progress message of this turn is longer
	capacity := tcpSendBufferMax(t) + 2*stalledReadBuffer + (64+100)*msg + 256<<10
	statuses := 3 * capacity / 2 / 300
	tokens := stalledAnswerCap / 4 // "tok "
	var script kubeqtest.Script
	for i := range statuses {
		script = append(script, kubeqtest.Flood(max(1, tokens/statuses), "tok "),
			kubeqtest.Status("looping", fmt.Sprintf("block %d %s", i, strings.Repeat("z", stalledStatusSize))))
	}
	t.Logf("a turn of %d status lines of %d bytes; %d bytes of progress can reach a stalled reader",
		statuses, stalledStatusSize, capacity)
	return script
}

// tcpSendBufferMax is the most a TCP socket's send buffer grows to.
func tcpSendBufferMax(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_wmem")
	require.NoError(t, err)
	f := strings.Fields(string(b))
	require.Len(t, f, 3, "tcp_wmem: %q", b)
	n, err := strconv.Atoi(f[2])
	require.NoError(t, err)
	return n
}

func TestBinaryStalledReader(t *testing.T) {
	bin, conn, pid, before := stalledCall(t)
	after := readProcMem(t, pid)
	growth := after.HWM - before.RSS
	t.Logf("a chatty turn streamed to a stalled reader: before %v; after %v; peak growth %.1f MiB",
		before, after, float64(growth)/(1<<20))
	// What the process may hold for the call: the answer several times
	// over (the turn's text and the call's, the result with the answer
	// twice in it, its JSON), the session's events kept for resumption
	// (2 answer caps + 1 MiB), the turn's progress (256 KiB), the outbox
	// (256 KiB) and mcp-go's queue (100 messages of at most 512 bytes
	// here); twice all that, for the garbage collector's headroom, and 16
	// MiB for the runtime and the HTTP machinery. Progress kept in full
	// would be more: the turn's status lines alone are tens of MB.
	held := 8*stalledAnswerCap + (2*stalledAnswerCap + 1<<20) + 256<<10 + 256<<10 + 100*512
	bound := int64(2*held + 16<<20)
	assert.Less(t, growth, bound, "the peak grew by %d bytes or more", bound)

	// The reader comes back: what was not dropped, then the result.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(2*time.Minute)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	var stream []byte
	buf := make([]byte, 64<<10)
	for !strings.Contains(string(stream), `"id":7,"result"`) {
		n, err := resp.Body.Read(buf)
		stream = append(stream, buf[:n]...)
		if err != nil {
			t.Logf("read %d bytes: %q ... %q\n%s", len(stream), stream[:min(len(stream), 300)], stream[max(0, len(stream)-500):], bin.stderr.String()[max(0, len(bin.stderr.String())-3000):])
		}
		require.NoError(t, err)
	}
	progress := strings.Count(string(stream), `"method":"notifications/progress"`)
	assert.Contains(t, string(stream), `"id":7,"result"`)
	var sent, dropped int
	require.Eventually(t, func() bool {
		m := regexp.MustCompile(`msg="notifications dropped: the client's queue was full" tool=kube_query sent=(\d+) dropped=(\d+)`).
			FindStringSubmatch(bin.stderr.String())
		if m != nil {
			sent, _ = strconv.Atoi(m[1])
			dropped, _ = strconv.Atoi(m[2])
		}
		return m != nil
	}, 10*time.Second, 10*time.Millisecond, "the drops are counted and logged")
	t.Logf("progress notifications: %d sent and received (%d bytes in all), %d dropped", progress, len(stream), dropped)
	assert.Positive(t, dropped, "some progress was dropped")
	assert.Equal(t, sent, progress, "every progress message sent reached the reader once it read again")
}

func TestBinarySessionCap(t *testing.T) {
	backend := binaryBackend(t)
	_, bin := limitsBinary(t, backend, "--max-sessions", "3")
	sessions := []string{rawSession(t, bin.endpoint), rawSession(t, bin.endpoint), rawSession(t, bin.endpoint)}

	for range 5 {
		resp, body := mcpPost(t, bin.endpoint, "", initPrefix+`"}}`)
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, body)
		assert.Equal(t, "60", resp.Header.Get("Retry-After"))
		assert.Contains(t, body, "too many sessions: the server holds 3, the most it takes (--max-sessions)")
	}
	// A GET stream without a session would open one too.
	req, err := http.NewRequest(http.MethodGet, bin.endpoint, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	// An initialize opens a new session whatever Mcp-Session-Id it carries:
	// a made-up one does not get it past the cap.
	resp, body := mcpPost(t, bin.endpoint, "made-up", initPrefix+`"}}`)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, body)
	// A GET naming a session that does not exist is 404, not a new session.
	assert.Equal(t, http.StatusNotFound, getStatus(t, bin.endpoint, "made-up"))

	// No session was evicted: the first still answers.
	resp, body = mcpPost(t, bin.endpoint, sessions[0], `{"jsonrpc":"2.0","id":2,"method":"ping"}`)
	assert.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Contains(t, body, `"result":{}`)
	assert.Equal(t, 1, strings.Count(bin.stderr.String(), "refused a new session: the session cap is reached"),
		"logged once a minute, not per request")

	// A session that ends makes room.
	del, err := http.NewRequest(http.MethodDelete, bin.endpoint, nil)
	require.NoError(t, err)
	del.Header.Set("Mcp-Session-Id", sessions[1])
	resp, err = http.DefaultClient.Do(del)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, http.StatusNotFound, getStatus(t, bin.endpoint, sessions[1]), "the deleted session is gone")
	rawSession(t, bin.endpoint)
}

// getStatus is the status of a GET stream asked for on session; the stream
// is not read.
func getStatus(t *testing.T, endpoint, session string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", session)
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func TestBinaryStalledReaderGivenUp(t *testing.T) {
	bin, conn, _, _ := stalledCall(t, "--write-timeout", "1s")
	// The call ended with its turn, and its result could not be written to
	// a reader that never reads: the connection was given up.
	require.Eventually(t, func() bool {
		return strings.Contains(bin.stderr.String(), "closed a response whose client stopped reading")
	}, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
	got, err := io.ReadAll(conn)
	if err != nil {
		assert.False(t, isTimeoutErr(err), "the server did not close the connection: %v", err)
	}
	assert.NotContains(t, string(got), `"id":7,"result"`)
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Results and progress of a 2025-era session are kept for resumption; many
// calls with large answers on one session must not pile them up.
func TestBinaryManyLargeAnswersOneSession(t *testing.T) {
	const calls = 60
	token := strings.Repeat("b", 4095) + " "
	backend := kubeqtest.NewServer(kubeqtest.WithHeartbeat(time.Second))
	t.Cleanup(backend.Close)
	backend.Handle("a mebibyte", kubeqtest.Script{kubeqtest.Flood(256, token)})
	cmd, bin := limitsBinary(t, backend, "--max-answer-bytes", "1MiB")
	cs := bin.connect("2025-11-25", nil)
	call := func(i int) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "kube_query",
			Arguments: map[string]any{"question": "a mebibyte"}, Meta: sdk.Meta{"progressToken": i}})
		require.NoError(t, err)
		require.False(t, res.IsError, toolText(res))
		require.Equal(t, 256*len(token), len(res.StructuredContent.(map[string]any)["answer"].(string)))
	}
	call(0)
	pid := cmd.Process.Pid
	before := readProcMem(t, pid)
	resetPeak(t, pid)
	for i := 1; i <= calls; i++ {
		call(i)
	}
	after := readProcMem(t, pid)
	t.Logf("%d calls of a 1 MiB answer on one session: before %v; after %v; peak growth %.1f MiB",
		calls, before, after, float64(after.HWM-before.RSS)/(1<<20))
	// Each call's result holds its answer twice: kept for every call, that
	// would be 120 MiB and more.
	assert.Less(t, after.HWM-before.RSS, int64(64<<20), "the peak grew by 64 MiB or more")
}
