package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
)

// Reading a tasks/* request strictly: its member names, its params' types,
// its inputResponses, and over HTTP the headers of the 2026 era, checked
// as mcp-go checks them on its own methods.

// The member names of a tasks/* request's envelope and params.
var (
	envelopeMembers   = []string{"jsonrpc", "id", "method", "params"}
	taskParamsMembers = []string{"_meta", "taskId", "inputResponses"}
)

// strictMembers refuses an object with a member of defined twice, or one
// that differs from a defined name only by case or Unicode folding:
// encoding/json matches those to the same field and keeps the last (or,
// for a map, merges them), so the message could be read two ways. Other
// members, and anything that is not an object, pass.
func strictMembers(obj []byte, defined []string) error {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil // bad JSON is the decoder's to report
		}
		key, _ := tok.(string)
		for _, name := range defined {
			switch {
			case key == name && seen[key]:
				return fmt.Errorf("duplicate member %q", key)
			case key == name:
				seen[key] = true
			case strings.EqualFold(key, name):
				return fmt.Errorf("member %s is not the defined name %q", headerForLog(key), name)
			}
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return nil
		}
	}
	return nil
}

// decodeTaskParams reads taskId and inputResponses into req.
func decodeTaskParams(raw json.RawMessage, req *rpcRequest) error {
	var p struct {
		TaskID         string          `json:"taskId"`
		InputResponses json.RawMessage `json:"inputResponses"`
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &p); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) && te.Field != "" {
				return fmt.Errorf("params.%s is a JSON %s, not a %s", te.Field, te.Value, te.Type)
			}
			return errors.New("params must be an object")
		}
	}
	req.Params.TaskID = p.TaskID
	if len(p.InputResponses) > 0 && string(p.InputResponses) != "null" {
		m, _, err := inputResponsesOf(p.InputResponses)
		if err != nil {
			return err
		}
		req.Params.InputResponses = m
	}
	return nil
}

// ambiguousAnswer stands for an answer that could be read two ways: an
// accepted form with no valid field, which approval.Judge denies.
var ambiguousAnswer = json.RawMessage(`{"action":"accept","content":{"kubeq-mcp":"ambiguous answer refused"}}`)

// inputResponsesOf reads an inputResponses object by key. A key given
// twice is an ambiguous answer, whichever value a decoder would keep (Go's
// keeps the last): it becomes ambiguousAnswer, and repeated is true.
func inputResponsesOf(raw json.RawMessage) (m map[string]json.RawMessage, repeated bool, err error) {
	errShape := errors.New("params.inputResponses must be an object of answers by key")
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false, errShape
	}
	m = map[string]json.RawMessage{}
	twice := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false, errShape
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false, errShape
		}
		if _, ok := m[key]; ok {
			twice[key] = true
		}
		m[key] = v
	}
	for key := range twice {
		m[key] = ambiguousAnswer
	}
	return m, len(twice) > 0, nil
}

// checkTaskHeaders checks a tasks/* request's HTTP headers against its
// body (version, the protocol version in its _meta): Last-Event-ID absent,
// Mcp-Protocol-Version present and equal, Mcp-Method equal to the method.
func checkTaskHeaders(h http.Header, version, method string) error {
	if h.Get(mcp.HeaderLastEventID) != "" {
		return mcp.HeaderMismatchError{Header: mcp.HeaderLastEventID,
			Reason: "not supported in protocol version " + mcp.ProtocolVersion20260728 + ": streams are not resumable"}
	}
	switch hv := h.Get(mcp.HeaderProtocolVersion); {
	case hv == "":
		return mcp.HeaderMismatchError{Header: mcp.HeaderProtocolVersion,
			Reason: "required for requests carrying " + mcp.MetaKeyProtocolVersion}
	case hv != version:
		return mcp.HeaderMismatchError{Header: mcp.HeaderProtocolVersion,
			Reason: fmt.Sprintf("header value %s does not match the request's %s", headerForLog(hv), mcp.MetaKeyProtocolVersion)}
	}
	return mcp.ValidateStandardHeadersFunc(h.Get, version, mcp.MCPMethod(method), func() (string, bool) { return "", false })
}

// checkTaskName checks that Mcp-Name names the task of params.taskId, as
// the extension requires of tasks/get, tasks/update and tasks/cancel: a
// load balancer routes on it.
func checkTaskName(h http.Header, taskID string) error {
	v := h.Get(mcp.HeaderName)
	if v == "" {
		return mcp.HeaderMismatchError{Header: mcp.HeaderName, Reason: "missing required header for a tasks/* request: it must be params.taskId"}
	}
	name, ok := mcp.DecodeHeaderValue(v)
	if !ok {
		return mcp.HeaderMismatchError{Header: mcp.HeaderName, Reason: "invalid Base64 encoding"}
	}
	if name != taskID {
		return mcp.HeaderMismatchError{Header: mcp.HeaderName, Reason: "header value does not match params.taskId"}
	}
	return nil
}

// httpStatusOf is the HTTP status of a 2026-era reply: an error's status
// is the one mcp-go v1.6.0 gives its own errors of that code.
func httpStatusOf(reply []byte) int {
	if len(reply) > 64<<10 || !bytes.Contains(reply, []byte(`"error"`)) {
		return http.StatusOK // a result: errors are short
	}
	var m struct {
		Error *struct {
			Code int `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(reply, &m) != nil || m.Error == nil {
		return http.StatusOK
	}
	switch m.Error.Code {
	case mcp.METHOD_NOT_FOUND:
		return http.StatusNotFound
	case mcp.HEADER_MISMATCH, mcp.MISSING_REQUIRED_CLIENT_CAPABILITY, mcp.UNSUPPORTED_PROTOCOL_VERSION,
		mcp.INVALID_REQUEST, mcp.INVALID_PARAMS, mcp.PARSE_ERROR:
		return http.StatusBadRequest
	}
	return http.StatusOK
}
