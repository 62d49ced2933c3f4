package kubeq_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// Diagnose against the fake: the key is checked with one authenticated
// read, readiness and degraded features are reported, and servers without
// those routes still get an answer.

func TestDiagnoseAcceptedKeyReportsRole(t *testing.T) {
	srv := fake(t, kubeqtest.WithAPIKeys("good-key-1"), kubeqtest.WithRole("operator"), kubeqtest.WithVersion("4.3.1"))
	res := client(t, srv, kubeq.WithAPIKey("good-key-1")).Diagnose(ctx(t))
	require.True(t, res.OK, res.Reason)
	assert.Equal(t, kubeq.KeyAccepted, res.Key)
	assert.Equal(t, "operator", res.Role)
	assert.Equal(t, "4.3.1", res.Version)
	assert.Equal(t, "v4", res.Era())
	require.NotNil(t, res.Ready)
	assert.True(t, *res.Ready)
	assert.Empty(t, res.Degraded)
	assert.Empty(t, res.Checks)
	var whoami []kubeqtest.Request
	for _, r := range srv.Requests() {
		if r.Path == "/v1/auth/whoami" {
			whoami = append(whoami, r)
		}
	}
	require.Len(t, whoami, 1, "one cheap authenticated read")
	assert.Equal(t, "Bearer good-key-1", whoami[0].Header.Get("Authorization"))
}

func TestDiagnoseWrongKey(t *testing.T) {
	srv := fake(t, kubeqtest.WithAPIKeys("good-key-1"))
	res := client(t, srv, kubeq.WithAPIKey("wrong-key-2")).Diagnose(ctx(t))
	require.False(t, res.OK, "kube_query cannot work with this key, so the backend is not healthy for us")
	assert.Equal(t, kubeq.KeyRejected, res.Key)
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Equal(t, "the API key was rejected (HTTP 401 from "+srv.URL+"/v1/auth/whoami): check the value of KUBE_Q_API_KEY or --api-key", res.Reason)
	assert.NotContains(t, res.Reason, "wrong-key-2")
}

func TestDiagnoseNoKey(t *testing.T) {
	srv := fake(t, kubeqtest.WithAPIKeys("good-key-1"))
	res := client(t, srv).Diagnose(ctx(t))
	require.False(t, res.OK)
	assert.Equal(t, kubeq.KeyMissing, res.Key)
	assert.True(t, strings.HasPrefix(res.Reason, "no API key set, and KubeIntellect requires one (HTTP 401 from "+srv.URL+"/v1/auth/whoami)"), res.Reason)
	assert.Contains(t, res.Reason, "set KUBE_Q_API_KEY or --api-key")
}

func TestDiagnoseOpenServerNeedsNoKey(t *testing.T) {
	srv := fake(t)
	res := client(t, srv).Diagnose(ctx(t))
	require.True(t, res.OK, res.Reason)
	assert.Equal(t, kubeq.KeyAccepted, res.Key)
	assert.Equal(t, "admin", res.Role, "open mode: every caller is admin")
}

func TestDiagnoseV2Body(t *testing.T) {
	// V2 checks the key on chat only and has neither /readyz nor whoami:
	// healthy, with the key unchecked and said so.
	srv := fake(t, kubeqtest.WithV2(), kubeqtest.WithAPIKeys("good-key-1"))
	res := client(t, srv, kubeq.WithAPIKey("wrong-key-2")).Diagnose(ctx(t))
	require.True(t, res.OK, res.Reason)
	assert.Equal(t, "2.0.0", res.Version)
	assert.Equal(t, "v2", res.Era())
	assert.Nil(t, res.Ready, "V2 has no /readyz")
	assert.Equal(t, kubeq.KeyUnchecked, res.Key)
	assert.Empty(t, res.Role)
	require.Len(t, res.Checks, 2)
	assert.Contains(t, res.Checks[1], "API key not checked: HTTP 404")
}

func TestDiagnoseV4DegradedFeatures(t *testing.T) {
	srv := fake(t)
	srv.SetDegradedFlags("MEMORY_HIERARCHY_ENABLED", "MEMORY_RECALL")
	res := client(t, srv).Diagnose(ctx(t))
	require.True(t, res.OK, "a degraded feature never makes the server unhealthy")
	assert.Equal(t, []string{"MEMORY_HIERARCHY_ENABLED", "MEMORY_RECALL"}, res.Degraded)
}

func TestDiagnoseNotReady(t *testing.T) {
	srv := fake(t)
	srv.SetReady(false)
	res := client(t, srv).Diagnose(ctx(t))
	require.False(t, res.OK)
	require.NotNil(t, res.Ready)
	assert.False(t, *res.Ready)
	assert.Equal(t, `KubeIntellect is not ready (HTTP 503 "draining" from `+srv.URL+`/readyz): it is shutting down or starting; try again in a moment`, res.Reason)
}

// When /healthz fails nothing else is asked: its reason is the answer.
func TestDiagnoseStopsAtAFailedHealthCheck(t *testing.T) {
	srv := fake(t, kubeqtest.WithAPIKeys("good-key-1"))
	srv.SetHealth(http.StatusBadGateway, false)
	res := client(t, srv, kubeq.WithAPIKey("wrong-key-2")).Diagnose(ctx(t))
	require.False(t, res.OK)
	assert.Equal(t, "HTTP 502 from "+srv.URL+"/healthz", res.Reason)
	assert.Empty(t, string(res.Key))
	for _, r := range srv.Requests() {
		assert.Equal(t, "/healthz", r.Path)
	}
}
