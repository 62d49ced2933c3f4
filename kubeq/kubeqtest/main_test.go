package kubeqtest

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixedNow is 2026-01-01T00:00:00Z, the clock of the protocol page's examples.
func fixedNow() time.Time { return time.Unix(1767225600, 0) }

// newTestServer starts a fake with fast heartbeats and closes it (and the
// test client's connections) at the end of the test.
func newTestServer(t *testing.T, opts ...Option) *Server {
	t.Helper()
	srv := NewServer(append([]Option{WithHeartbeat(time.Hour)}, opts...)...)
	t.Cleanup(srv.Close)
	return srv
}

// kubeqBody is the body kube-q sends for one question.
func kubeqBody(msg string) string {
	return `{"model": "kubeintellect-v2", "messages": [{"role": "user", "content": ` + PyJSON(msg) +
		`}], "stream": true, "user": "mcp-user", "stream_options": {"include_usage": true}}`
}

type reply struct {
	status int
	header http.Header
	body   string
	err    error // a read error after the headers
}

// do sends a raw request and reads the whole answer.
func do(t *testing.T, srv *Server, method, path, body string, header map[string]string) reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: string(b), err: err}
}

// ask posts question on session the way kube-q does.
func ask(t *testing.T, srv *Server, session, question string) reply {
	t.Helper()
	return do(t, srv, http.MethodPost, chatPath, kubeqBody(question), map[string]string{"X-Session-ID": session})
}

// frames splits an SSE body into its "data: " payloads and comments.
func frames(body string) []string {
	var out []string
	for _, f := range strings.Split(body, "\n\n") {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}
