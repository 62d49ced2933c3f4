package kubeq

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// KeyStatus is what the backend said of the API key.
type KeyStatus string

const (
	KeyAccepted  KeyStatus = "accepted"
	KeyRejected  KeyStatus = "rejected"  // a key was sent and refused with 401
	KeyMissing   KeyStatus = "missing"   // no key was sent, and the server wants one
	KeyUnchecked KeyStatus = "unchecked" // the server has no whoami route, or it could not be asked
)

const (
	readyPath  = "/readyz"
	whoamiPath = "/v1/auth/whoami"
)

// Diagnose is Health and then what a person needs to act on when kube_query
// fails although /healthz answers: whether the server is ready (/readyz),
// and whether it accepts the API key (GET /v1/auth/whoami, the cheapest
// authenticated read current KubeIntellect has; since 2026-08-20 every /v1
// route needs the key, /healthz none). OK is false when the server is
// draining or refuses the key. Servers without these routes (V2, older V4)
// still get a plain Health answer. The whole check is bounded by the health
// timeout.
func (c *Client) Diagnose(ctx context.Context) HealthResult {
	ctx, cancel := context.WithTimeout(ctx, c.healthTimeout)
	defer cancel()
	res := c.Health(ctx)
	if !res.OK {
		if res.StatusCode == http.StatusUnauthorized {
			res.Key = c.refusedKey()
		}
		return res
	}

	code, body, err := c.probe(ctx, readyPath)
	switch {
	case err != nil:
		res.Checks = append(res.Checks, fmt.Sprintf("readiness not checked: %v", innerError(c.redactErr(err))))
	case code == http.StatusOK:
		res.Ready = ptr(true)
	case code == http.StatusServiceUnavailable:
		res.Ready = ptr(false)
		var v struct {
			Status string `json:"status"`
		}
		_ = json.Unmarshal(body, &v)
		v.Status = c.redact.str(v.Status)
		if v.Status == "" {
			v.Status = "not ready"
		}
		res.OK = false
		res.Reason = fmt.Sprintf("KubeIntellect is not ready (HTTP 503 %q from %s): it is shutting down or "+
			"starting; try again in a moment", v.Status, c.redactedBase()+readyPath)
		return res
	default: // 404 and the like: a server without the route
		res.Checks = append(res.Checks, fmt.Sprintf("readiness not checked: HTTP %d from %s", code, c.redactedBase()+readyPath))
	}

	code, body, err = c.probe(ctx, whoamiPath)
	switch {
	case err != nil:
		res.Key = KeyUnchecked
		res.Checks = append(res.Checks, fmt.Sprintf("API key not checked: %v", innerError(c.redactErr(err))))
	case code == http.StatusOK:
		res.Key = KeyAccepted
		var v struct {
			Role string `json:"role"`
		}
		_ = json.Unmarshal(body, &v)
		res.Role = c.redact.str(v.Role)
	case code == http.StatusUnauthorized:
		res.Key = c.refusedKey()
		res.OK = false
		res.StatusCode = code
		res.Reason = c.unauthorized(c.redactedBase() + whoamiPath)
	default:
		res.Key = KeyUnchecked
		res.Checks = append(res.Checks, fmt.Sprintf("API key not checked: HTTP %d from %s (a KubeIntellect "+
			"older than /v1/auth/whoami; kube_query will tell)", code, c.redactedBase()+whoamiPath))
	}
	return res
}

// probe GETs path with the key and returns the status and a bounded body.
func (c *Client) probe(ctx context.Context, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return 0, nil, err
	}
	c.authorize(req)
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	return resp.StatusCode, body, nil
}

func (c *Client) refusedKey() KeyStatus {
	if c.apiKey == "" {
		return KeyMissing
	}
	return KeyRejected
}

// unauthorized says what a 401 from url means: the key that was sent was
// refused, or none was sent. Never the key itself.
func (c *Client) unauthorized(url string) string {
	if c.apiKey == "" {
		return fmt.Sprintf("no API key set, and KubeIntellect requires one (HTTP 401 from %s): "+
			"set KUBE_Q_API_KEY or --api-key", url)
	}
	return fmt.Sprintf("the API key was rejected (HTTP 401 from %s): check the value of KUBE_Q_API_KEY "+
		"or --api-key", url)
}

func ptr[T any](v T) *T { return &v }
