package server

import (
	"encoding/json"
	"net/http"

	"github.com/mark3labs/mcp-go/mcp"
)

// maxCancelMessage bounds the POSTs looked at to tell whether one is
// a cancellation: one is a few hundred bytes.
const maxCancelMessage = 64 << 10

// dropModernCancels answers a 2026-era notifications/cancelled over HTTP
// with 202 and does not pass it on.
//
// mcp-go (v1.6.0 included) keys calls in flight by session id and request
// id. A 2026-era request has no session, and clients number their requests
// from 1, so every such call sits under ("", id): one client's
// notifications/cancelled cancelled whichever other client's call had the
// same id, and the newer call's entry hid the older one's. Nothing in a
// 2026-era notification says which client sent it, and its POST need not
// come on the connection of the call it names. The 2026-07-28 transport
// cancels a call by closing its response stream, which mcp-go turns into
// the cancellation of that request's context and nothing else: that is the
// one way left. Over stdio each process has one client, and there the
// notification still works.
func (s *Server) dropModernCancels(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Body == nil {
			next.ServeHTTP(w, r)
			return
		}
		head, err := requestBody(r)
		if err != nil {
			http.Error(w, "cannot read request body", http.StatusBadRequest)
			return
		}
		if len(head) <= maxCancelMessage && isModernCancel(r.Header, head) {
			s.log.Debug("ignored a 2026-era notifications/cancelled over HTTP: such a call is cancelled by closing its response stream")
			w.WriteHeader(http.StatusAccepted)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isModernCancel: body is a notifications/cancelled (no id) of protocol
// 2026-07-28 or later, by its header or its _meta.
func isModernCancel(h http.Header, body []byte) bool {
	if !mayMention(body, string(mcp.MethodNotificationCancelled)) {
		return false
	}
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			Meta map[string]any `json:"_meta"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &m) != nil || m.Method != string(mcp.MethodNotificationCancelled) || len(m.ID) > 0 {
		return false
	}
	meta, _ := m.Params.Meta[mcp.MetaKeyProtocolVersion].(string)
	return mcp.IsModernProtocol(h.Get(mcp.HeaderProtocolVersion)) || mcp.IsModernProtocol(meta)
}
