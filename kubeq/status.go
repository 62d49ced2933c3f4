package kubeq

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxErrorBody caps how much of an error body is read.
const maxErrorBody = 64 << 10

// maxDetail caps the detail kept in a StatusError message.
const maxDetail = 500

// statusError reads a non-200 answer of the chat endpoint into a
// *StatusError. The URL is the one the client built: resp.Request may be
// nil (a caller's RoundTripper) and its path repeats the base's prefix.
func (c *Client) statusError(resp *http.Response) *StatusError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	detail := truncate(c.redact.str(flattenDetail(body)), maxDetail)
	return &StatusError{
		URL:        c.redactedBase() + chatPath,
		StatusCode: resp.StatusCode,
		Detail:     detail,
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now()),
		KeySent:    c.apiKey != "",
		Redirect:   c.redirectTarget(resp),
	}
}

// maxRedirectShown caps the Location quoted in a message.
const maxRedirectShown = 300

// redirectTarget is the Location of a 3xx answer, safe to show: our
// secrets removed, then any user info or query masked, then capped; ""
// for other answers. Secrets go first, while they are whole: masking or
// the cap could leave the start of one that no longer matches.
func (c *Client) redirectTarget(resp *http.Response) string {
	if resp.StatusCode < 300 || resp.StatusCode >= 400 {
		return ""
	}
	return truncate(maskPassword(c.redact.str(resp.Header.Get("Location"))), maxRedirectShown)
}

// eventStream: the answer is SSE, or does not say (lenient on a missing
// Content-Type, as kube-q is on everything).
func eventStream(contentType string) bool {
	if contentType == "" || contentType == "text/event-stream" || contentType == "text/event-stream; charset=utf-8" {
		return true // the usual ones, without parsing (and its allocations)
	}
	// A malformed parameter (say "charset=") still comes with the media
	// type, and only the media type matters here.
	media, _, err := mime.ParseMediaType(contentType)
	if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
		return false
	}
	return media == "text/event-stream"
}

// notAStreamError is a 200 answer of the chat endpoint that is not an
// event stream.
func (c *Client) notAStreamError(resp *http.Response) *StatusError {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	return &StatusError{
		URL:        c.redactedBase() + chatPath,
		StatusCode: resp.StatusCode,
		Detail:     "expected an event stream, got " + truncate(c.redact.str(resp.Header.Get("Content-Type")), 100),
	}
}

// flattenDetail reads FastAPI's {"detail": ...}: a string, or the
// validation list whose "msg" values are joined (as kube-q does). Any other
// body is kept as trimmed text.
func flattenDetail(body []byte) string {
	var env struct {
		Detail json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &env) != nil || len(env.Detail) == 0 {
		return strings.Join(strings.Fields(string(body)), " ")
	}
	var s string
	if json.Unmarshal(env.Detail, &s) == nil {
		return s
	}
	var list []struct {
		Msg string `json:"msg"`
	}
	if json.Unmarshal(env.Detail, &list) == nil {
		msgs := make([]string, 0, len(list))
		for _, item := range list {
			if item.Msg != "" {
				msgs = append(msgs, item.Msg)
			}
		}
		return strings.Join(msgs, "; ")
	}
	return string(env.Detail)
}

// retryAfter parses Retry-After: delay seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now).Round(time.Second)
	}
	return 0
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
