package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// Issue 19, item 9: form answers are read strictly. Sent raw over stdio
// (an SDK client cannot send a member twice): a member named twice, or a
// name in another case, denies; the exact answer approves.
func TestBinaryStrictFormAnswers(t *testing.T) {
	backend := kubeqtest.NewServer(kubeqtest.WithHeartbeat(20 * time.Millisecond))
	t.Cleanup(backend.Close)
	answers := []struct {
		name, content, decision, reason string
		result                          string // the whole result, when not {"action":"accept","content":content}
	}{
		{"duplicate", `{"decision":"deny","decision":"approve","confirm":"web-1"}`, "denied", "error", ""},
		{"duplicate-confirm", `{"decision":"approve","confirm":"x","confirm":"web-1"}`, "denied", "error", ""},
		{"case-folded", `{"DECISION":"approve","Confirm":"web-1"}`, "denied", "error", ""},
		// mcp-go decodes a form's result without case, keeping the last of
		// two spellings: two spellings are two answers.
		{"content-twice", "", "denied", "error",
			`{"action":"accept","content":{"decision":"deny"},"Content":{"decision":"approve","confirm":"web-1"}}`},
		{"action-twice", "", "denied", "error",
			`{"action":"decline","ACTION":"accept","content":{"decision":"approve","confirm":"web-1"}}`},
		{"exact", `{"decision":"approve","confirm":"web-1"}`, "approved", "user_approved", ""},
	}
	for _, a := range answers {
		backend.Handle("delete web-1 "+a.name, kubeqtest.Script{kubeqtest.Gate{Command: "kubectl delete pod web-1 -n shop",
			ActionID: a.name, Risk: "high", OnApprove: kubeqtest.Script{kubeqtest.Tokens("deleted")},
			OnDeny: kubeqtest.Script{kubeqtest.Tokens("left")}}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubeqMCPBinary(t), "--url", backend.URL, "--retry-delays", "10ms")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	lines := make(chan map[string]json.RawMessage, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			var m map[string]json.RawMessage
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				lines <- m
			}
		}
		close(lines)
	}()
	send := func(s string) { _, err := stdin.Write([]byte(s + "\n")); require.NoError(t, err) }
	// next reads until a message with method (a server request) or the
	// response to id.
	next := func(id int) map[string]json.RawMessage {
		for {
			select {
			case m, ok := <-lines:
				require.True(t, ok, "stdout closed; stderr:\n%s", stderr.String())
				var method string
				_ = json.Unmarshal(m["method"], &method)
				switch method {
				case "ping":
					send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{}}`, m["id"]))
				case "elicitation/create":
					return m
				case "":
					if string(m["id"]) == fmt.Sprint(id) {
						return m
					}
				}
			case <-ctx.Done():
				t.Fatalf("timed out; stderr:\n%s", stderr.String())
			}
		}
	}
	send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"elicitation":{"form":{}}},"clientInfo":{"name":"raw","version":"1"}}}`)
	next(1)
	send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	for i, a := range answers {
		id := 10 + i
		send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"kube_query","arguments":{"question":"delete web-1 %s"}}}`, id, a.name))
		req := next(id)
		require.Contains(t, req, "method", "%s: the form is asked first", a.name)
		result := a.result
		if result == "" {
			result = fmt.Sprintf(`{"action":"accept","content":%s}`, a.content)
		}
		send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":%s}`, req["id"], result))
		res := next(id)
		var r struct {
			StructuredContent struct {
				Approvals []map[string]any `json:"approvals"`
			} `json:"structuredContent"`
		}
		require.NoError(t, json.Unmarshal(res["result"], &r), "%s: %s", a.name, res["error"])
		require.Len(t, r.StructuredContent.Approvals, 1, a.name)
		assert.Equal(t, a.decision, r.StructuredContent.Approvals[0]["decision"], a.name)
		assert.Equal(t, a.reason, r.StructuredContent.Approvals[0]["reason"], a.name)
	}
	for _, d := range backend.Decisions() {
		assert.Equal(t, d.ActionID == "exact", d.Approved, "%s", d.ActionID)
	}
	assert.Equal(t, 1, backend.Received("approve"))
}
