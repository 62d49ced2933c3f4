package kubeq

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHealthOK(t *testing.T) {
	auth := make(chan string, 1)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/healthz", r.URL.Path)
		require.Equal(t, http.MethodGet, r.Method)
		auth <- r.Header.Get("Authorization")
		_, _ = io.WriteString(w, `{"status":"ok","version":"2.0.0"}`)
	})
	res := newClient(t, b.URL, WithAPIKey("k1")).Health(testCtx(t))
	require.Equal(t, HealthResult{OK: true, URL: b.URL + "/healthz", StatusCode: 200, Latency: res.Latency, Version: "2.0.0"}, res)
	require.Positive(t, res.Latency)
	require.Equal(t, "Bearer k1", <-auth)
}

func TestHealthConnectionRefused(t *testing.T) {
	url := refusedURL(t)
	res := newClient(t, url).Health(testCtx(t))
	require.False(t, res.OK)
	require.Zero(t, res.StatusCode)
	require.Equal(t, "connection refused at "+url+": is KubeIntellect running? check KUBE_Q_URL / --url", res.Reason)
}

func TestHealthDNSFailure(t *testing.T) {
	// The resolver's answer is injected: tests use no network, and a real
	// lookup offline may time out instead of failing.
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}}
	}}
	t.Cleanup(tr.CloseIdleConnections)
	c := newClient(t, "http://kubeintellect.invalid:8000", WithHTTPClient(&http.Client{Transport: tr}))
	res := c.Health(testCtx(t))
	require.False(t, res.OK)
	require.Equal(t, `cannot resolve host "kubeintellect.invalid" (DNS: no such host): check KUBE_Q_URL / --url`, res.Reason)
}

// A health read against a server that never answers gives up after the
// documented 5 s, measured from outside (no private field): at least the
// bound, within a generous multiple of it. The caller's shorter deadline
// applies too.
func TestHealthTimeout(t *testing.T) {
	t.Parallel() // waits the real 5 s bound
	const bound = 5 * time.Second
	silent := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(6 * bound): // never before the client gives up
		}
	})
	c := newClient(t, silent.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 6*bound)
	defer cancel()
	res := c.Health(ctx)
	require.False(t, res.OK)
	require.Contains(t, res.Reason, "timed out: no answer from "+silent.URL)
	require.GreaterOrEqual(t, res.Latency, bound)
	require.Less(t, res.Latency, 3*bound)

	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res = c.Health(short)
	require.Contains(t, res.Reason, "timed out")
	require.Less(t, res.Latency, bound, "the caller's deadline, not the 5 s bound, ended it")
}

func TestHealthHTTPStatus(t *testing.T) {
	for code, want := range map[int]string{
		401: "no API key set, and KubeIntellect requires one (HTTP 401 from %s/healthz): set KUBE_Q_API_KEY or --api-key",
		503: "HTTP 503 from %s/healthz",
		404: "HTTP 404 from %s/healthz",
	} {
		b := newBackend(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) })
		res := newClient(t, b.URL).Health(testCtx(t))
		require.False(t, res.OK)
		require.Equal(t, code, res.StatusCode)
		require.Equal(t, fmt.Sprintf(want, b.URL), res.Reason)
	}
}

// The era (arm, version) decides how approvals are answered, so it must not
// hang on the shape of a field that is there for people to read: a
// degraded-features list this client cannot read costs that list only.
func TestHealthEraSurvivesAnUnreadableDegradedList(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"status":"ok","arm":"v4","version":"4.9.0",`+
			`"degraded_experimental_flags":[{"flag":"MEMORY_HIERARCHY_ENABLED","reason":"pool down"}]}`)
	})
	res := newClient(t, b.URL).Health(testCtx(t))
	require.True(t, res.OK)
	require.Equal(t, "v4", res.Arm)
	require.Equal(t, "4.9.0", res.Version)
	require.Equal(t, "v4", res.Era())
	require.Empty(t, res.Degraded)
}
