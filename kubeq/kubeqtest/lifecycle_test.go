package kubeqtest

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// openStream starts a turn and returns the response once the headers came.
func openStream(t *testing.T, ctx context.Context, client *http.Client, url, session, question string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+chatPath, strings.NewReader(kubeqBody(question)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Session-ID", session)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestConcurrentTurnRejected(t *testing.T) {
	srv := newTestServer(t)
	release := make(chan struct{})
	srv.Handle("slow", Script{Token("a"), WaitFor(release), Token("b")})
	first := openStream(t, waitCtx(t), srv.Client(), srv.URL, "busy", "slow")
	defer first.Body.Close()

	r := ask(t, srv, "busy", "again")
	if r.status != http.StatusConflict || !strings.Contains(r.body, `"detail":"kubeqtest: a turn is already streaming on session 'busy'`) {
		t.Errorf("second turn: %d %s", r.status, r.body)
	}
	if ok := ask(t, srv, "other", "hi"); ok.status != 200 {
		t.Errorf("another session must not be blocked: %d", ok.status)
	}
	close(release)
	body, err := io.ReadAll(first.Body)
	if err != nil || contentOf(t, string(body)) != "ab" {
		t.Errorf("first turn: %v %q", err, body)
	}
	v := srv.ConcurrentTurnViolations()
	if len(v) != 1 || v[0].Session != "busy" {
		t.Errorf("violations %+v", v)
	}
	if r := ask(t, srv, "busy", "after"); r.status != 200 {
		t.Errorf("session must be free after the turn: %d", r.status)
	}
}

func TestConcurrentTurnHangsFirstStream(t *testing.T) {
	srv := newTestServer(t, WithConcurrentTurns(HangConcurrent), WithHeartbeat(10*time.Millisecond))
	release := make(chan struct{})
	srv.Handle("slow", Script{Token("a"), WaitFor(release), Token("b")})
	ctx, cancel := context.WithCancel(waitCtx(t))
	first := openStream(t, ctx, srv.Client(), srv.URL, "busy", "slow")
	defer first.Body.Close()

	if r := ask(t, srv, "busy", "hi"); r.status != 200 || !strings.HasSuffix(r.body, "data: [DONE]\n\n") {
		t.Errorf("second turn should run: %d", r.status)
	}
	close(release)
	// The first stream now only gets heartbeats: read a few, then give up.
	br := bufio.NewReader(first.Body)
	heartbeats := 0
	for heartbeats < 3 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("first stream: %v", err)
		}
		if strings.Contains(line, `"b"`) || strings.Contains(line, "[DONE]") {
			t.Fatalf("hung stream went on: %q", line)
		}
		if line == ": heartbeat\n" {
			heartbeats++
		}
	}
	cancel()
	if _, err := srv.WaitForDisconnect(waitCtx(t), "busy"); err != nil {
		t.Error(err)
	}
	if len(srv.ConcurrentTurnViolations()) != 1 {
		t.Error("hang mode must record the violation too")
	}
}

func TestHeartbeatsDuringSleep(t *testing.T) {
	srv := newTestServer(t, WithHeartbeat(20*time.Millisecond))
	srv.Handle("think", Script{Status("analyzing", "…"), Sleep(200 * time.Millisecond), Token("done")})
	body := ask(t, srv, "s", "think").body
	// Late timers on a loaded machine give fewer heartbeats, never more.
	n := strings.Count(body, ": heartbeat\n\n")
	if n < 2 || n > 10 {
		t.Errorf("%d heartbeats in 200ms at a 20ms interval", n)
	}
	if contentOf(t, body) != "done" {
		t.Errorf("answer %q", contentOf(t, body))
	}
	if q := newTestServer(t); strings.Contains(ask(t, q, "s", "x").body, "heartbeat") {
		t.Error("heartbeat on a fast turn")
	}
}

func TestDisconnectBeforeGateCreatesNone(t *testing.T) {
	srv := newTestServer(t)
	release := make(chan struct{})
	defer close(release)
	srv.Handle("delete", Script{Token("looking"), WaitFor(release), Gate{Command: deleteCmd}})
	ctx, cancel := context.WithCancel(waitCtx(t))
	resp := openStream(t, ctx, srv.Client(), srv.URL, "d1", "delete")
	readFrames(t, resp.Body, 2)
	cancel()
	resp.Body.Close()
	r, err := srv.WaitForDisconnect(waitCtx(t), "d1")
	if err != nil || !r.Disconnected || r.Finished || r.DisconnectedAt.IsZero() {
		t.Fatalf("disconnect not seen: %v %+v", err, r)
	}
	if _, ok := srv.PendingGate("d1"); ok {
		t.Error("a gate was created for a cancelled turn")
	}
}

func TestDisconnectAfterGateKeepsIt(t *testing.T) {
	srv := newTestServer(t)
	srv.Handle("delete", Script{Gate{Command: deleteCmd, SkipToolCall: true}})
	// Frames 100ms apart: the client leaves after the gate chunk, before the
	// usage frame is written.
	srv.Fault(SlowStream(100 * time.Millisecond))
	ctx, cancel := context.WithCancel(waitCtx(t))
	resp := openStream(t, ctx, srv.Client(), srv.URL, "d2", "delete")
	if fs := readFrames(t, resp.Body, 2); !strings.Contains(fs[1], "hitl_required") {
		t.Fatalf("second frame is not the gate: %q", fs[1])
	}
	cancel()
	resp.Body.Close()
	if r, err := srv.WaitForDisconnect(waitCtx(t), "d2"); err != nil || r.Finished {
		t.Fatal(err, r.Finished)
	}
	if g, ok := srv.PendingGate("d2"); !ok || g.Command != deleteCmd {
		t.Error("the gate must stay pending after the client left")
	}
}

func TestCloseEndsEveryTurn(t *testing.T) {
	srv := NewServer(WithHeartbeat(5 * time.Millisecond))
	never := make(chan struct{})
	srv.Handle("hang", Script{WaitFor(never)})
	srv.SetHealth(200, true)
	resp := openStream(t, waitCtx(t), srv.Client(), srv.URL, "c", "hang")
	defer resp.Body.Close()
	health := make(chan error, 1)
	go func() {
		r, err := srv.Client().Get(srv.URL + "/healthz")
		if err == nil {
			r.Body.Close()
		}
		health <- err
	}()
	if err := srv.WaitForRequests(waitCtx(t), 2); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	srv.Close()
	srv.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Error("stream of a closed server ended cleanly")
	}
	if err := <-health; err == nil {
		t.Error("hanging health check got an answer")
	}
}

func mustRequest(t *testing.T, ctx context.Context, url, session, question string) *http.Request {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+chatPath, strings.NewReader(kubeqBody(question)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Session-ID", session)
	return req
}

// readFrames reads n complete frames from a stream.
func readFrames(t *testing.T, r io.Reader, n int) []string {
	t.Helper()
	br := bufio.NewReader(r)
	var out []string
	var cur strings.Builder
	for len(out) < n {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d frames: %v", len(out), err)
		}
		if line == "\n" {
			out = append(out, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteString(line)
	}
	return out
}
