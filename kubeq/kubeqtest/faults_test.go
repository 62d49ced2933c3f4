package kubeqtest

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestFailNextDropThenRecover(t *testing.T) {
	srv := newTestServer(t)
	srv.FailNext(2, DropConnection())
	for i := 0; i < 2; i++ {
		if r := ask(t, srv, "s", "hi"); r.err == nil {
			t.Fatalf("attempt %d: want a transport error, got %d", i, r.status)
		}
	}
	if r := ask(t, srv, "s", "hi"); r.status != 200 || !strings.HasSuffix(r.body, "data: [DONE]\n\n") {
		t.Fatalf("third attempt: %d %v", r.status, r.err)
	}
	reqs := srv.ChatRequests()
	if len(reqs) != 3 || reqs[0].Fault != "drop connection" || reqs[0].Status != 0 || reqs[2].Fault != "" {
		t.Errorf("log %+v", reqs)
	}
}

func TestFaultStatuses(t *testing.T) {
	srv := newTestServer(t)
	cases := []struct {
		f      Fault
		status int
		body   string
		header map[string]string
	}{
		{Respond(401), 401, `{"detail":"Authorization: Bearer <api_key> required"}`, nil},
		{RespondInvalidKey(), 401, `{"detail":"Invalid API key"}`, nil},
		{Respond(422), 422, `{"detail":"No user message provided"}`, nil},
		{RespondValidationList(), 422, `{"detail":[{"type":"string_type","loc":["body","messages",0,"content"],"msg":"Input should be a valid string","input":[]}]}`, nil},
		{RateLimited(7), 429, `{"detail":"Rate limit exceeded: 120 requests/minute per API key (burst 30). Retry after 7s."}`,
			map[string]string{"Retry-After": "7", "X-RateLimit-Limit": "120", "X-RateLimit-Remaining": "0"}},
		{Respond(429), 429, "Retry after 30s.", map[string]string{"Retry-After": "30"}},
		{Respond(500), 500, "Internal Server Error", map[string]string{"Content-Type": "text/plain; charset=utf-8"}},
		{Respond(503), 503, `{"detail":"Service Unavailable"}`, nil},
	}
	for _, c := range cases {
		srv.Fault(c.f)
		r := ask(t, srv, "s", "hi")
		if r.status != c.status || !strings.Contains(r.body, c.body) {
			t.Errorf("%s: %d %s", c.f, r.status, r.body)
		}
		for k, v := range c.header {
			if r.header.Get(k) != v {
				t.Errorf("%s: header %s = %q", c.f, k, r.header.Get(k))
			}
		}
	}
	srv.FailNext(3, Respond(500))
	srv.ClearFaults()
	if r := ask(t, srv, "s", "hi"); r.status != 200 {
		t.Errorf("ClearFaults left a fault: %d", r.status)
	}
}

func TestStreamFaults(t *testing.T) {
	srv := newTestServer(t, WithTokenChunkSize(4))
	srv.Handle("q", Answer("a fairly long answer"))

	srv.Fault(CutMidStream(2))
	r := ask(t, srv, "s", "q")
	fs := frames(r.body)
	if !errors.Is(r.err, io.ErrUnexpectedEOF) || len(fs) != 3 || strings.HasSuffix(fs[2], "}") {
		t.Errorf("cut: err %v, frames %q", r.err, fs)
	}

	srv.Fault(TruncateStream())
	r = ask(t, srv, "s", "q")
	if r.err != nil || strings.Contains(r.body, "[DONE]") || !strings.Contains(r.body, `"finish_reason": "stop"`) {
		t.Errorf("truncate: err %v body %q", r.err, r.body)
	}

	srv.Fault(MalformedFrame())
	r = ask(t, srv, "s", "q")
	if fs := frames(r.body); !strings.HasSuffix(fs[1], `"content": "lost`) || !strings.HasSuffix(r.body, "data: [DONE]\n\n") {
		t.Errorf("malformed: %q", fs[1])
	}

	srv.Fault(HugeFrame(1 << 20))
	r = ask(t, srv, "s", "q")
	if fs := frames(r.body); len(fs[1]) < 1<<20 || len(fs[1]) > 1<<20+300 {
		t.Errorf("huge frame is %d bytes", len(fs[1]))
	}

	srv.Fault(CRLFFrames())
	r = ask(t, srv, "s", "q")
	if !strings.HasSuffix(r.body, "data: [DONE]\r\n\r\n") || strings.Count(r.body, "\r\n\r\n") < 5 {
		t.Errorf("crlf: %q", r.body)
	}

	srv.Fault(SlowStream(20 * time.Millisecond))
	start := time.Now()
	r = ask(t, srv, "s", "q")
	if n := len(frames(r.body)); time.Since(start) < time.Duration(n)*20*time.Millisecond {
		t.Errorf("slow stream of %d frames took only %v", n, time.Since(start))
	}
}

func TestScriptFaultSteps(t *testing.T) {
	srv := newTestServer(t)
	srv.Handle("cut", Script{Token("a"), CutMidFrame(), Token("never")})
	srv.Handle("eof", Script{Token("a"), EndWithoutDone(), Token("never")})
	srv.Handle("raw", Script{Raw([]byte("event: odd\ndata: {}\n\n")), Malformed(), Huge(20)})

	r := ask(t, srv, "s", "cut")
	if !errors.Is(r.err, io.ErrUnexpectedEOF) || strings.Contains(r.body, "never") || !strings.Contains(r.body, `"content": "a"`) {
		t.Errorf("cut: %v %q", r.err, r.body)
	}
	r = ask(t, srv, "s", "eof")
	if r.err != nil || len(frames(r.body)) != 2 {
		t.Errorf("eof: %v %q", r.err, r.body)
	}
	r = ask(t, srv, "s", "raw")
	if !strings.Contains(r.body, "event: odd\ndata: {}\n\n") || !strings.Contains(r.body, `"content": "kubeintellect xxxxxx"`) {
		t.Errorf("raw: %q", r.body)
	}
	reqs := srv.ChatRequests()
	if reqs[0].Finished || reqs[1].Finished || !reqs[2].Finished || reqs[0].Disconnected {
		t.Errorf("Finished flags wrong: %v %v %v", reqs[0].Finished, reqs[1].Finished, reqs[2].Finished)
	}
}

func TestErrorsInBand(t *testing.T) {
	srv := newTestServer(t)
	srv.Handle("mid", Script{Token("partial"), MidTurnError("LLM rate limit hit — please try again in a moment.")})
	srv.Handle("fatal", Script{Token("partial"), Fatal("boom"), Token("never")})

	fs := frames(ask(t, srv, "s", "mid").body)
	n := len(fs)
	if n != 6 || !strings.Contains(fs[2], `"content": "\n\n**Error:** LLM rate limit hit \u2014 please try again in a moment.", "role": "assistant"}, "finish_reason": "stop"}`) ||
		!strings.Contains(fs[3], `"type": "usage"`) || !strings.Contains(fs[4], `"finish_reason": "stop"`) {
		t.Errorf("mid-turn error frames %q", fs)
	}
	fs = frames(ask(t, srv, "s", "fatal").body)
	if len(fs) != 5 || !strings.Contains(fs[2], `"ki_event": {"type": "error", "fatal": true, "message": "boom"}, "choices": []`) ||
		!strings.Contains(fs[3], `"content": "\n\n[Error: boom]", "role": "assistant"}, "finish_reason": "stop"`) || fs[4] != "data: [DONE]" {
		t.Errorf("fatal frames %q", fs)
	}

	v2 := newTestServer(t, WithV2())
	v2.Handle("fatal", Script{Fatal("boom")})
	fs = frames(ask(t, v2, "s", "fatal").body)
	if len(fs) != 3 || strings.Contains(fs[1], "ki_event") {
		t.Errorf("V2 fatal frames %q", fs)
	}
	if body := ask(t, v2, "s", "plain").body; strings.Contains(body, `"usage"`) {
		t.Errorf("V2 sends no usage frame: %q", body)
	}
	ts := newTestServer(t, WithUsageSessionTS(true), WithNow(fixedNow))
	if body := ask(t, ts, "sid", "x").body; !strings.Contains(body, `"llm_calls": 1, "session_id": "sid", "ts": 1767225600.0}`) {
		t.Errorf("usage with session_id and ts: %q", body)
	}
}
