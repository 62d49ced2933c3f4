package kubeq

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNewValidatesURLAndOptions(t *testing.T) {
	for _, bad := range []string{"", "localhost:8000", "ftp://x", "http://", "http://x/?q=1", "http://x/#f", "://x",
		"http://x/?", "http://x?", "http://x/#", "http://x#"} { // an empty query or fragment too
		_, err := New(bad)
		require.Error(t, err, "url %q", bad)
	}
	c, err := New("http://127.0.0.1:8000/")
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:8000", c.URL())
	require.Equal(t, DefaultModel, c.model)
	require.Equal(t, DefaultUser, c.user)
	require.Equal(t, DefaultTimeout, c.timeout)

	for name, opt := range map[string]Option{
		"zero timeout":     WithTimeout(0),
		"negative delay":   WithRetryDelays(time.Second, -time.Second),
		"empty model":      WithModel(""),
		"empty user":       WithUser(""),
		"key with newline": WithAPIKey("abc\nX-Evil: 1"),
		"nil http client":  WithHTTPClient(nil),
		"missing CA file":  WithCACertFile(filepath.Join(t.TempDir(), "none.pem")),
	} {
		_, err := New("http://127.0.0.1:8000", opt)
		require.Error(t, err, name)
	}
	notPEM := filepath.Join(t.TempDir(), "bad.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))
	_, err = New("http://127.0.0.1:8000", WithCACertFile(notPEM))
	require.ErrorContains(t, err, "no PEM certificate")
	_, err = New("https://127.0.0.1:8000", WithCACertFile(notPEM), WithHTTPClient(http.DefaultClient))
	require.Error(t, err)
}

func TestDefaultRetryDelays(t *testing.T) {
	want := []time.Duration{1 * time.Second, 3 * time.Second, 5 * time.Second}
	require.Equal(t, want, DefaultRetryDelays)
	c, err := New("http://127.0.0.1:8000")
	require.NoError(t, err)
	require.Equal(t, want, c.retryDelays)
}

type captured struct {
	method, path string
	header       http.Header
	body         []byte
}

func capturingBackend(t *testing.T, got chan<- captured) *backend {
	return newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- captured{r.Method, r.URL.Path, r.Header.Clone(), body}
		serveSSE([]byte(plainTurn))(w, r)
	})
}

var requestIDPattern = regexp.MustCompile(`^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestRequestIsExactlyWhatKubeQSends(t *testing.T) {
	got := make(chan captured, 1)
	b := capturingBackend(t, got)
	c := newClient(t, b.URL, WithAPIKey("ki-op-123"))

	evs, err := collect(testCtx(t), c, Turn{Question: "why is <checkout> & co crashing?", Namespace: "shop"})
	require.NoError(t, err)
	req := <-got
	require.Equal(t, http.MethodPost, req.method)
	require.Equal(t, "/v1/chat/completions", req.path)
	require.Equal(t, `{"model":"kubeintellect-v2","messages":[{"role":"user","content":"[context: namespace=shop] why is <checkout> & co crashing?"}],"stream":true,"user":"mcp-user","stream_options":{"include_usage":true}}`,
		string(req.body))
	require.Equal(t, "application/json", req.header.Get("Content-Type"))
	require.Equal(t, "text/event-stream", req.header.Get("Accept"))
	require.Equal(t, "Bearer ki-op-123", req.header.Get("Authorization"))
	require.Regexp(t, requestIDPattern, req.header.Get("X-Request-ID"))
	require.Empty(t, req.header.Get("X-User-ID"))

	end := evs[len(evs)-1].(End)
	conv := req.header.Get("X-Session-ID")
	require.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, conv, "a generated UUID")
	require.Equal(t, conv, end.Conversation, "End reports the generated conversation")
	require.Equal(t, req.header.Get("X-Request-ID"), end.RequestID)
}

func TestRequestWithoutKeyAndWithTurnUser(t *testing.T) {
	got := make(chan captured, 1)
	b := capturingBackend(t, got)
	c := newClient(t, b.URL, WithModel("m1"), WithUser("u-default"))
	_, err := collect(testCtx(t), c, Turn{Question: "approve", Conversation: "mcp-5c1d2e", User: "alice"})
	require.NoError(t, err)
	req := <-got
	_, hasAuth := req.header["Authorization"]
	require.False(t, hasAuth, "no Authorization header without a key")
	require.Equal(t, "mcp-5c1d2e", req.header.Get("X-Session-ID"))
	require.Equal(t, `{"model":"m1","messages":[{"role":"user","content":"approve"}],"stream":true,"user":"alice","stream_options":{"include_usage":true}}`,
		string(req.body), "an approval is sent bare, never with auto_approve")
}

func TestInvalidTurnsSendNothing(t *testing.T) {
	b := newBackend(t, serveSSE([]byte(plainTurn)))
	c := newClient(t, b.URL)
	for name, turn := range map[string]Turn{
		"empty question":    {Question: "  \n"},
		"newline in conv":   {Question: "q", Conversation: "a\nX-Injected: 1"},
		"CR in conv":        {Question: "q", Conversation: "a\rb"},
		"NUL in conv":       {Question: "q", Conversation: "a\x00b"},
		"non-ASCII conv":    {Question: "q", Conversation: "caf\u00e9"},
		"leading space":     {Question: "q", Conversation: " a"},
		"conv too long":     {Question: "q", Conversation: strings.Repeat("a", MaxConversationLen+1)},
		"DEL char in conv":  {Question: "q", Conversation: "a\x7fb"},
		"tab in conv":       {Question: "q", Conversation: "a\tb"},
		"trailing space":    {Question: "q", Conversation: "a "},
		"unicode line sep.": {Question: "q", Conversation: "a\u2028b"},
	} {
		_, err := collect(testCtx(t), c, turn)
		require.ErrorIs(t, err, ErrInvalidTurn, name)
		res, err := c.Query(testCtx(t), turn)
		require.ErrorIs(t, err, ErrInvalidTurn, name)
		require.NotNil(t, res)
	}
	require.Zero(t, b.hits.Load())
	_, err := collect(testCtx(t), c, Turn{Question: "q", Conversation: strings.Repeat("a", MaxConversationLen)})
	require.NoError(t, err, "the longest allowed id")
}

func TestCACertFile(t *testing.T) {
	srv := httptest.NewTLSServer(serveSSE([]byte(plainTurn)))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))

	c := newClient(t, srv.URL, WithCACertFile(caFile))
	_, err := collect(testCtx(t), c, Turn{Question: "q"})
	require.NoError(t, err, "the bundle's roots are trusted")
	require.True(t, c.Health(testCtx(t)).OK)

	// Without the bundle the server's certificate is unknown: not retried
	// (it would fail the same way), and the message points at the CA setting.
	plain := newClient(t, srv.URL, WithRetryDelays(time.Hour))
	_, err = collect(testCtx(t), plain, Turn{Question: "q"})
	var te *TransportError
	require.ErrorAs(t, err, &te)
	require.Equal(t, 1, te.Attempts)
	var unknownCA x509.UnknownAuthorityError
	require.True(t, errors.As(err, &unknownCA), "err = %v", err)
	require.Contains(t, err.Error(), "KUBE_Q_CA_CERT")
}

// Both ways of building the backend transport close idle connections after
// idleConnTimeout rather than net/http's 90 s.
func TestBackendConnectionsCloseWhenIdle(t *testing.T) {
	srv := httptest.NewTLSServer(serveSSE([]byte(plainTurn)))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))

	for name, c := range map[string]*Client{
		"default": newClient(t, "http://127.0.0.1:8000"),
		"CA file": newClient(t, srv.URL, WithCACertFile(caFile)),
	} {
		tr, ok := c.hc.Transport.(*http.Transport)
		require.True(t, ok, name)
		require.Equal(t, idleConnTimeout, tr.IdleConnTimeout, name)
	}
}
