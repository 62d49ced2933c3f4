package main

import (
	"bytes"
	"errors"
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/approval/page"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigFlagsOverrideEnvironment(t *testing.T) {
	env := envOf(map[string]string{
		"KUBE_Q_URL": "http://env:8000", "KUBE_Q_API_KEY": "env-key", "KUBE_Q_TIMEOUT": "30s",
		"KUBEQ_MCP_HTTP_TOKEN": "env-token", "KUBE_Q_RETRY_DELAYS": "2s",
	})
	c, err := parseConfig(nil, env, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, "http://env:8000", c.URL)
	assert.Equal(t, "env-key", c.APIKey)
	assert.Equal(t, "env-token", c.HTTPToken)
	assert.Equal(t, 30*time.Second, c.Timeout)
	assert.Equal(t, []time.Duration{2 * time.Second}, c.RetryDelays)

	c, err = parseConfig([]string{"--url", "https://flag:9", "--api-key", "flag-key", "--http-token", "flag-token"}, env, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, "https://flag:9", c.URL)
	assert.Equal(t, "flag-key", c.APIKey)
	assert.Equal(t, "flag-token", c.HTTPToken)
}

func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig(nil, envOf(nil), &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, "stdio", c.Transport)
	assert.Equal(t, "127.0.0.1:8080", c.Addr)
	assert.Equal(t, "http://localhost:8000", c.URL)
	assert.Equal(t, 120*time.Second, c.Timeout)
	assert.Equal(t, "kubeintellect-v2", c.Model)
	assert.Equal(t, "mcp-user", c.UserID)
	assert.Equal(t, []time.Duration{time.Second, 3 * time.Second, 5 * time.Second}, c.RetryDelays)
	assert.Equal(t, 10*time.Minute, c.ApprovalTimeout)
	assert.Equal(t, "name", c.ConfirmHighRisk)
	assert.Nil(t, c.StateKey)
}

// --help prints each flag's default; secrets from the environment must not
// be among them.
func TestHelpDoesNotPrintSecrets(t *testing.T) {
	var out bytes.Buffer
	env := envOf(map[string]string{
		"KUBE_Q_API_KEY": "sk-secret-1", "KUBEQ_MCP_HTTP_TOKEN": "tok-secret-2",
		"KUBEQ_MCP_STATE_KEY": "c2VjcmV0LXN0YXRlLWtleS0zLXBhZGRlZC10by0zMiE=",
	})
	_, err := parseConfig([]string{"--help"}, env, &out)
	require.True(t, errors.Is(err, flag.ErrHelp))
	for _, secret := range []string{"sk-secret-1", "tok-secret-2", "c2VjcmV0"} {
		assert.NotContains(t, out.String(), secret)
	}
	assert.Contains(t, out.String(), "KUBE_Q_API_KEY", "the help still names the variable")
}

// A refused --url is quoted with what may be a secret in it masked: a
// password or a user name alone (often a token) and query values, as the
// backend client masks them. url.Parse takes "u:pw@host" as a scheme and
// an opaque part, so a mistyped URL holds its password there.
func TestBadURLMessagesMaskSecrets(t *testing.T) {
	for _, raw := range []string{
		"ftp://user:s3cret@kubeintellect.example/",
		"user:s3cret@kubeintellect.example:8000",
		"kubeintellect.example?api_key=s3cret",
		"http://s3cret@kubeintellect.example:8000 ",
		"http://kubeintellect.example:8000/?token=s3cret ",
	} {
		_, err := parseConfig([]string{"--url", raw}, envOf(nil), &bytes.Buffer{})
		require.Error(t, err, raw)
		assert.Contains(t, err.Error(), "--url", raw)
		assert.NotContains(t, err.Error(), "s3cret", raw)
	}
}

// The Origin check reads an allowed origin without its trailing slashes,
// so "*/" allows every origin as "*" does: it must be refused without a
// token as "*" is, not start with every page let in.
func TestEveryOriginSpelledWithASlashNeedsAToken(t *testing.T) {
	for _, o := range []string{"*", "*/", " */ ", "https://a.example,*//"} {
		_, err := parseConfig([]string{"--transport", "http", "--allowed-origins", o}, envOf(nil), &bytes.Buffer{})
		require.Error(t, err, o)
		assert.Contains(t, err.Error(), "--allowed-origins '*' lets any web page call this server", o)
	}
	c, err := parseConfig([]string{"--transport", "http", "--allowed-origins", "https://a.example/"}, envOf(nil), &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, []string{"https://a.example"}, c.AllowedOrigins)
}

// Browsers send "Origin: null" from sandboxed frames and opaque origins,
// which any web site can make, so allowing "null" lets every page in as
// "*" does: it needs the token too.
func TestNullOriginNeedsAToken(t *testing.T) {
	for _, o := range []string{"null", "NULL", "https://a.example,null"} {
		_, err := parseConfig([]string{"--transport", "http", "--allowed-origins", o}, envOf(nil), &bytes.Buffer{})
		require.Error(t, err, o)
		assert.Contains(t, err.Error(), "--allowed-origins 'null' lets any web page call this server", o)
		assert.Contains(t, err.Error(), "--http-token", o)
	}
	_, err := parseConfig([]string{"--transport", "http", "--allowed-origins", "null", "--http-token", "a-long-enough-token-123"},
		envOf(nil), &bytes.Buffer{})
	require.NoError(t, err)
}

func TestConfigLimits(t *testing.T) {
	c, err := parseConfig(nil, envOf(nil), &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, int64(1<<20), c.MaxRequestBytes)
	assert.Equal(t, 10000, c.MaxSessions)
	assert.Equal(t, 8, c.MaxCallsPerSession)
	assert.Equal(t, 1000, c.MaxCalls)
	assert.Equal(t, int64(8<<20), c.MaxAnswerBytes)
	assert.Equal(t, 30*time.Second, c.RequestReadTimeout)
	assert.Equal(t, 60*time.Second, c.IdleTimeout)
	assert.Equal(t, 2*time.Minute, c.WriteTimeout)

	env := envOf(map[string]string{
		"KUBEQ_MCP_MAX_REQUEST_BYTES": "512KiB", "KUBEQ_MCP_MAX_SESSIONS": "5",
		"KUBEQ_MCP_MAX_CALLS_PER_SESSION": "2", "KUBEQ_MCP_MAX_CALLS": "7",
		"KUBEQ_MCP_MAX_ANSWER_BYTES": "1048576", "KUBEQ_MCP_REQUEST_READ_TIMEOUT": "5s",
		"KUBEQ_MCP_IDLE_TIMEOUT": "2m", "KUBEQ_MCP_WRITE_TIMEOUT": "45s",
	})
	c, err = parseConfig(nil, env, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, int64(512<<10), c.MaxRequestBytes)
	assert.Equal(t, 5, c.MaxSessions)
	assert.Equal(t, 2, c.MaxCallsPerSession)
	assert.Equal(t, 7, c.MaxCalls)
	assert.Equal(t, int64(1<<20), c.MaxAnswerBytes)
	assert.Equal(t, 5*time.Second, c.RequestReadTimeout)
	assert.Equal(t, 2*time.Minute, c.IdleTimeout)
	assert.Equal(t, 45*time.Second, c.WriteTimeout)

	c, err = parseConfig([]string{"--max-request-bytes", "2MiB", "--max-calls", "9"}, env, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, int64(2<<20), c.MaxRequestBytes, "a flag overrides the environment")
	assert.Equal(t, 9, c.MaxCalls)

	for _, args := range [][]string{
		{"--max-request-bytes", "0"}, {"--max-request-bytes", "1MB"}, {"--max-answer-bytes", "-1"},
		{"--max-sessions", "0"}, {"--max-calls-per-session", "x"}, {"--max-calls", "1.5"},
		{"--request-read-timeout", "0s"}, {"--idle-timeout", "soon"}, {"--write-timeout", "-1s"}, {"--max-answer-bytes", "9999999999GiB"},
	} {
		_, err := parseConfig(args, envOf(nil), &bytes.Buffer{})
		assert.ErrorContains(t, err, args[0], "%v", args)
	}
}

func TestConfigApprovalBrowser(t *testing.T) {
	c, err := parseConfig(nil, envOf(nil), &bytes.Buffer{})
	require.NoError(t, err)
	assert.Empty(t, c.ApprovalBrowser, "the OS opener by default")
	env := envOf(map[string]string{"KUBEQ_MCP_APPROVAL_BROWSER": "none"})
	c, err = parseConfig(nil, env, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, "none", c.ApprovalBrowser)
	c, err = parseConfig([]string{"--approval-browser", "firefox --new-window"}, env, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, "firefox --new-window", c.ApprovalBrowser, "the flag overrides the environment")
}

// The approval page's browser command starts without kubeq-mcp's secrets:
// its list names every secret flag's variable.
func TestOpenerEnvListsEverySecret(t *testing.T) {
	for flagName, env := range secretEnv {
		assert.Containsf(t, page.SecretEnv(), env, "--%s", flagName)
	}
}
