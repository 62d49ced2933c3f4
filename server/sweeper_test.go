package server

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// A 2026-era client that is sent the approval form and never calls back:
// when the approval timeout has passed, the gate is denied on the backend
// without waiting for another question, and the client's late answer is
// refused.
func TestExpiredApprovalIsDeniedWithoutANewQuestion(t *testing.T) {
	audit := &syncBuffer{}
	f := newFixture(t, func(c *Config) {
		c.ApprovalTimeout = 200 * time.Millisecond
		c.AuditLog = audit
	})
	f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
	cs := f.connectHuman("http", "", newHuman(t, declineForm), false)
	leg := askGate(t, f, cs, map[string]any{"question": podQuestion})

	waitFor(t, "the backend to receive deny", func() bool { return f.backend.Received("deny") == 1 })
	assert.Equal(t, []string{podQuestion, "deny"}, f.backend.MessagesFor(leg.conv))
	decisions := f.backend.Decisions()
	require.Len(t, decisions, 1)
	assert.False(t, decisions[0].Approved)
	waitFor(t, "the audit line", func() bool { return len(audit.lines()) == 1 })
	assert.Contains(t, audit.lines()[0], `"reason":"timed_out"`)
	assert.Contains(t, audit.lines()[0], `"transport":"http"`, "the sweeper audits on behalf of the client that asked")
	assert.Contains(t, audit.lines()[0], `"client_name":"kubeq-mcp-approval-test"`)

	// The human answers approve far too late: told it timed out, nothing sent.
	res, err := answerGate(cs, map[string]any{"question": podQuestion}, leg.state, approveWith(podTarget))
	require.NoError(t, err)
	require.False(t, res.IsError, textOf(res))
	approvals := structured(t, res)["approvals"].([]any)
	require.Len(t, approvals, 1)
	assert.Equal(t, "timed_out", approvals[0].(map[string]any)["reason"])
	assert.Equal(t, "denied", approvals[0].(map[string]any)["decision"])
	assertNeverApproved(t, f.backend)
	assert.Equal(t, []string{podQuestion, "deny"}, f.backend.MessagesFor(leg.conv))

	// Nothing is left pending: a new question on the conversation goes out
	// as it is, with no second deny in front of it.
	f.backend.Handle("and now?", kubeqtest.Script{kubeqtest.Tokens("all quiet")})
	res = call(t, cs, map[string]any{"question": "and now?", "conversation_id": leg.conv})
	require.False(t, res.IsError, textOf(res))
	assert.Equal(t, []string{podQuestion, "deny", "and now?"}, f.backend.MessagesFor(leg.conv))
	assert.Equal(t, 1, f.backend.Received("deny"))
}

// After a restart of both sides, an older (V2) backend keeps a gate but not
// its history. An authentic approval state for it cannot be checked
// against the backend, and a V2 backend would apply "approve" to whatever
// gate is pending: it is refused.
func TestApprovalStateWithoutHistoryOnV2IsRefused(t *testing.T) {
	f := newFixture(t, nil, kubeqtest.WithV2())
	conv := "conv-after-restart"
	f.backend.OpenGate(conv, gate(podCommand, "act-newer"))
	token, err := f.srv.sealer.seal(approvalState{
		Nonce: "n-1", Conversation: conv, ApprovalID: "act-older", Action: podCommand, Risk: "high",
		Confirm: podTarget, Started: time.Now(), Expires: time.Now().Add(time.Minute),
	})
	require.NoError(t, err)
	cs := f.connectHuman("http", "", newHuman(t, declineForm), false)
	res, err := answerGate(cs, map[string]any{"question": podQuestion}, token, approveWith(podTarget))
	require.NoError(t, err)
	assert.True(t, res.IsError, textOf(res))
	assertNeverApproved(t, f.backend)
	assert.Empty(t, f.backend.MessagesFor(conv))
}
