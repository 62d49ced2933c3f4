package kubeq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"
)

// HealthResult is the outcome of Health.
type HealthResult struct {
	OK         bool
	URL        string // the URL probed (base + /healthz)
	StatusCode int    // 0 when no HTTP answer came
	Latency    time.Duration
	Reason     string // empty when OK; otherwise what a person should do

	// From a 200 body, when it says: the server's version, and its "arm"
	// ("v4" on current servers; absent on V2 servers).
	Version string
	Arm     string
	// Degraded lists the experimental features the server has switched on
	// but cannot run (degraded_experimental_flags: the subsystem behind
	// them is down). A degraded feature never makes the server unhealthy.
	Degraded []string

	// Filled by Diagnose only.
	Ready  *bool     // from /readyz; nil when the server has none (V2, older V4)
	Key    KeyStatus // what /v1/auth/whoami said of the API key
	Role   string    // the role the key holds, when accepted
	Checks []string  // notes on what could not be checked, for a person
}

// Era is the backend generation the health body shows: its "arm" ("v4"),
// or "v2" for a JSON body without one (the April 2026 server, whose
// approval gates take any reply but a denial as approval); empty when the
// body said nothing.
func (h HealthResult) Era() string {
	switch {
	case h.Arm != "":
		return h.Arm
	case h.Version != "":
		return "v2"
	}
	return ""
}

// Health probes GET /healthz with a 5 s bound (and ctx's). Like kube-q it
// reads only the status code.
func (c *Client) Health(ctx context.Context) HealthResult {
	res := HealthResult{URL: c.redactedBase() + healthPath}
	ctx, cancel := context.WithTimeout(ctx, c.healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+healthPath, nil)
	if err != nil {
		res.Reason = fmt.Sprintf("cannot build a request for %s: %v", res.URL, err)
		return res
	}
	c.authorize(req)
	start := time.Now()
	resp, err := c.hc.Do(req)
	res.Latency = time.Since(start)
	if err != nil {
		res.Reason = c.healthFailure(ctx, err, res.Latency)
		return res
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody)) // lets the connection be reused
	resp.Body.Close()
	res.StatusCode = resp.StatusCode
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		res.OK = true
		var v struct {
			Version string `json:"version"`
			Arm     string `json:"arm"`
		}
		if json.Unmarshal(body, &v) == nil {
			res.Version, res.Arm = c.redact.str(v.Version), c.redact.str(v.Arm)
		}
		// Read on its own: the era above decides how approvals are
		// answered, and must not be lost to a list in another shape.
		var d struct {
			Degraded []string `json:"degraded_experimental_flags"`
		}
		if json.Unmarshal(body, &d) == nil {
			for _, f := range d.Degraded {
				res.Degraded = append(res.Degraded, c.redact.str(f))
			}
		}
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		// Not followed: the service it points to is not the one configured.
		res.Reason = (&StatusError{URL: res.URL, StatusCode: resp.StatusCode, Redirect: c.redirectTarget(resp)}).Error()
	case resp.StatusCode == http.StatusUnauthorized:
		res.Reason = c.unauthorized(res.URL)
	default:
		res.Reason = fmt.Sprintf("HTTP %d from %s", resp.StatusCode, res.URL)
	}
	return res
}

func (c *Client) healthFailure(ctx context.Context, err error, waited time.Duration) string {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("connection refused at %s: is KubeIntellect running? check KUBE_Q_URL / --url", c.redactedBase())
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("cannot resolve host %q (DNS: %s): check KUBE_Q_URL / --url", dnsErr.Name, dnsErr.Err)
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || isTimeout(err):
		return fmt.Sprintf("timed out: no answer from %s after %s: is it reachable? check KUBE_Q_URL / --url",
			c.redactedBase(), waited.Round(time.Millisecond))
	case errors.Is(ctx.Err(), context.Canceled):
		return "health check cancelled"
	default:
		return fmt.Sprintf("cannot reach %s: %v (%s)", c.redactedBase(), innerError(c.redactErr(err)), transportHint(err))
	}
}
