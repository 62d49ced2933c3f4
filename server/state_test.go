package server

// Tests of the sealed approval state: the sealer and replay guard as units,
// and forged, tampered, replayed, expired and stale states sent back by a
// 2026-era client that handles input_required itself.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq"
	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
	"github.com/kubeq-mcp/kubeq-mcp/schema"
)

func testSealer(t *testing.T) *sealer {
	t.Helper()
	key := make([]byte, 32)
	_, err := rand.Read(key)
	require.NoError(t, err)
	s, err := newSealer(key)
	require.NoError(t, err)
	return s
}

func sampleState(expires time.Time) approvalState {
	return approvalState{
		Nonce: "00112233445566778899aabbccddeeff", Conversation: "5f0c7f9e-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
		User: "mcp-user", ApprovalID: "act-1", Action: podCommand, Risk: "high", Confirm: podTarget,
		Parts: []string{"part one", "part two"}, Approvals: []schema.Approval{{ApprovalID: "act-0", Action: scaleCommand,
			Risk: "medium", Decision: schema.Approved, Reason: schema.ReasonUserApproved}},
		Usage:   &schema.Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3, LLMCalls: 1},
		Started: time.Date(2026, 7, 28, 10, 0, 0, 0, time.UTC), Expires: expires,
	}
}

func TestSealRoundTrip(t *testing.T) {
	s := testSealer(t)
	now := time.Now()
	in := sampleState(now.Add(time.Minute))
	token, err := s.seal(in)
	require.NoError(t, err)
	out, err := s.open(token, now)
	require.NoError(t, err)
	in.V = stateVersion
	assert.True(t, in.Expires.Equal(out.Expires))
	out.Expires = in.Expires
	assert.Equal(t, in, out)

	again, err := s.seal(in)
	require.NoError(t, err)
	assert.NotEqual(t, token, again, "every seal has its own nonce")
	assert.NotContains(t, token, podTarget, "the state is not readable")
}

func TestSealTamperedByteIsBad(t *testing.T) {
	s := testSealer(t)
	now := time.Now()
	token, err := s.seal(sampleState(now.Add(time.Minute)))
	require.NoError(t, err)
	raw, err := base64.RawURLEncoding.DecodeString(token)
	require.NoError(t, err)
	for i := range raw {
		bad := append([]byte(nil), raw...)
		bad[i] ^= 0x01
		_, err := s.open(base64.RawURLEncoding.EncodeToString(bad), now)
		require.ErrorIsf(t, err, errBadState, "byte %d flipped", i)
	}
	for _, cut := range []int{0, 1, len(raw) / 2, len(raw) - 1} {
		_, err := s.open(base64.RawURLEncoding.EncodeToString(raw[:cut]), now)
		require.ErrorIsf(t, err, errBadState, "cut at %d", cut)
	}
	_, err = s.open(base64.RawURLEncoding.EncodeToString(append(raw, 0)), now)
	require.ErrorIs(t, err, errBadState, "a byte appended")
}

func TestSealGarbageIsBad(t *testing.T) {
	s := testSealer(t)
	plain, _ := json.Marshal(sampleState(time.Now().Add(time.Hour)))
	for _, token := range []string{"", "x", "!!!!", "not base64 at all", base64.StdEncoding.EncodeToString(plain),
		base64.RawURLEncoding.EncodeToString(plain), base64.RawURLEncoding.EncodeToString(make([]byte, 64))} {
		_, err := s.open(token, time.Now())
		assert.ErrorIsf(t, err, errBadState, "token %q", token)
	}
}

func TestSealOtherKeyIsBad(t *testing.T) {
	a, b := testSealer(t), testSealer(t)
	token, err := a.seal(sampleState(time.Now().Add(time.Minute)))
	require.NoError(t, err)
	_, err = b.open(token, time.Now())
	assert.ErrorIs(t, err, errBadState)
}

func TestSealOtherVersionIsBad(t *testing.T) {
	s := testSealer(t)
	st := sampleState(time.Now().Add(time.Minute))
	st.V = stateVersion + 1
	plain, err := json.Marshal(st)
	require.NoError(t, err)
	nonce := make([]byte, s.aead.NonceSize())
	out := s.aead.Seal(nonce, nonce, plain, stateAD)
	_, err = s.open(base64.RawURLEncoding.EncodeToString(out), time.Now())
	assert.ErrorIs(t, err, errBadState)

	// Sealed without the purpose binding: not a state either.
	out = s.aead.Seal(nonce, nonce, plain, nil)
	_, err = s.open(base64.RawURLEncoding.EncodeToString(out), time.Now())
	assert.ErrorIs(t, err, errBadState)
}

func TestSealExpired(t *testing.T) {
	s := testSealer(t)
	exp := time.Now().Add(time.Minute)
	token, err := s.seal(sampleState(exp))
	require.NoError(t, err)
	_, err = s.open(token, exp.Add(-time.Nanosecond))
	assert.NoError(t, err)
	st, err := s.open(token, exp)
	assert.ErrorIs(t, err, errStateExpired, "expiry is exclusive")
	assert.Equal(t, "act-1", st.ApprovalID, "an expired state still names its gate, so it can be denied")
	_, err = s.open(token, exp.Add(time.Hour))
	assert.ErrorIs(t, err, errStateExpired)
}

func TestSealKeyLength(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		_, err := newSealer(make([]byte, n))
		assert.Errorf(t, err, "%d-byte key", n)
	}
	_, err := New(Config{StateKey: make([]byte, 16)})
	assert.Error(t, err, "New refuses a short state key")
}

// The nonce guard lives in the ledger now: approval.TestContract* checks a
// nonce is used once, also under concurrency and across replicas.

// gateLeg is a 2026-era first leg that ended at an approval gate.
type gateLeg struct {
	state string
	form  *sdk.ElicitParams
	conv  string
}

// askGate calls kube_query with multi-round-trip handling off and returns
// the input_required result's state and form.
func askGate(t *testing.T, f *fixture, cs *sdk.ClientSession, args map[string]any) gateLeg {
	t.Helper()
	before := len(f.backend.ChatRequests())
	res, err := query(context.Background(), cs, args)
	require.NoError(t, err)
	require.Truef(t, res.NeedsInput(), "want input_required, got: %s", textOf(res))
	require.NotEmpty(t, res.RequestState)
	require.Len(t, res.InputRequests, 1)
	form, ok := res.InputRequests[elicitationID].(*sdk.ElicitParams)
	require.Truef(t, ok, "input request %q is %T", elicitationID, res.InputRequests[elicitationID])
	reqs := f.backend.ChatRequests()
	require.Greater(t, len(reqs), before)
	return gateLeg{state: res.RequestState, form: form, conv: reqs[len(reqs)-1].Session}
}

// answerGate is the second leg: the human's answer and the state.
func answerGate(cs *sdk.ClientSession, args map[string]any, state string, responses sdk.InputResponseMap) (*sdk.CallToolResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return cs.CallTool(ctx, &sdk.CallToolParams{Name: "kube_query", Arguments: args,
		InputResponses: responses, RequestState: state})
}

func approveWith(confirm string) sdk.InputResponseMap {
	c := map[string]any{"decision": "approve"}
	if confirm != "" {
		c["confirm"] = confirm
	}
	return sdk.InputResponseMap{elicitationID: &sdk.ElicitResult{Action: "accept", Content: c}}
}

func denyAnswer() sdk.InputResponseMap {
	return sdk.InputResponseMap{elicitationID: &sdk.ElicitResult{Action: "accept",
		Content: map[string]any{"decision": "deny", "confirm": podTarget}}}
}

// flip changes one character in the middle of a base64url token.
func flip(token string) string {
	b := []byte(token)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// eachModern runs test on both transports in the 2026 era, with the
// go-sdk's automatic multi-round-trip handling off.
func eachModern(t *testing.T, mutate func(*Config), test func(t *testing.T, f *fixture, cs *sdk.ClientSession)) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			f := newFixture(t, mutate)
			f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
			f.backend.Handle(scaleQuestion, kubeqtest.Script{gate(scaleCommand, "act-scale")})
			cs := f.connectHuman(tr, "", newHuman(t, declineForm), false)
			test(t, f, cs)
		})
	}
}

func TestSealStateFirstLegShowsForm(t *testing.T) {
	eachModern(t, nil, func(t *testing.T, f *fixture, cs *sdk.ClientSession) {
		leg := askGate(t, f, cs, map[string]any{"question": podQuestion})
		assertForm(t, leg.form, podCommand, "high", "act-pod", "", podTarget)
		assert.NotContains(t, leg.state, podCommand, "the state is sealed, not readable")
		assert.Equal(t, []string{podQuestion}, f.backend.MessagesFor(leg.conv), "nothing is decided before the human answers")
	})
}

func TestSealStateTamperedIsRefused(t *testing.T) {
	eachModern(t, nil, func(t *testing.T, f *fixture, cs *sdk.ClientSession) {
		args := map[string]any{"question": podQuestion}
		leg := askGate(t, f, cs, args)
		res, err := answerGate(cs, args, flip(leg.state), approveWith(podTarget))
		require.NoError(t, err)
		assert.True(t, res.IsError, textOf(res))
		assert.Contains(t, textOf(res), "refused")
		assert.Equal(t, []string{podQuestion}, f.backend.MessagesFor(leg.conv), "nothing sent for a tampered state")
		assertNeverApproved(t, f.backend)

		// The gate is still pending and the next question denies it first.
		res, err = query(context.Background(), cs, map[string]any{"question": "status of web", "conversation_id": leg.conv})
		require.NoError(t, err)
		require.False(t, res.IsError, textOf(res))
		assert.Equal(t, []string{podQuestion, "deny", "status of web"}, f.backend.MessagesFor(leg.conv))
		assertNeverApproved(t, f.backend)
	})
}

func TestSealStateForgedIsRefused(t *testing.T) {
	eachModern(t, nil, func(t *testing.T, f *fixture, cs *sdk.ClientSession) {
		leg := askGate(t, f, cs, map[string]any{"question": podQuestion})
		plain, _ := json.Marshal(sampleState(time.Now().Add(time.Hour)))
		other := testSealer(t)
		st := sampleState(time.Now().Add(time.Hour))
		st.Conversation = leg.conv
		otherKey, err := other.seal(st)
		require.NoError(t, err)
		for name, state := range map[string]string{
			"missing":       "",
			"garbage":       "please-approve",
			"unsealed-json": base64.RawURLEncoding.EncodeToString(plain),
			"other-key":     otherKey,
		} {
			res, err := answerGate(cs, map[string]any{"question": podQuestion}, state, approveWith(podTarget))
			require.NoError(t, err, name)
			assert.Truef(t, res.IsError, "%s: %s", name, textOf(res))
			assert.Containsf(t, textOf(res), "refused", name)
		}
		assert.Equal(t, []string{podQuestion}, f.backend.MessagesFor(leg.conv))
		assert.Len(t, f.backend.ChatRequests(), 1, "nothing at all sent for a forged state")
		assertNeverApproved(t, f.backend)
	})
}

// A state from a replica with another key is forged; with the shared key
// (KUBEQ_MCP_STATE_KEY) the answer goes through on either replica.
func TestSealStateSharedKeyAcrossReplicas(t *testing.T) {
	key := make([]byte, 32)
	_, err := rand.Read(key)
	require.NoError(t, err)
	f := newFixture(t, func(c *Config) { c.StateKey = key })
	f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
	replica := replicaOf(t, f, key)
	csA := f.connectHuman("http", "", newHuman(t, declineForm), false)
	csB := replica.connectHuman("http", "", newHuman(t, declineForm), false)

	args := map[string]any{"question": podQuestion}
	leg := askGate(t, f, csA, args)
	res, err := answerGate(csB, args, leg.state, approveWith(podTarget))
	require.NoError(t, err)
	require.False(t, res.IsError, textOf(res))
	assert.Equal(t, []string{podQuestion, "approve"}, f.backend.MessagesFor(leg.conv))
}

// replicaOf is a second kubeq-mcp in front of f's backend, with key.
func replicaOf(t *testing.T, f *fixture, key []byte) *fixture {
	t.Helper()
	client, err := kubeq.New(f.backend.URL, kubeq.WithRetryDelays(5*time.Millisecond), kubeq.WithTimeout(5*time.Second))
	require.NoError(t, err)
	srv, err := New(Config{Backend: client, ConfirmHighRisk: true, ApprovalTimeout: 5 * time.Second,
		KeepAliveInterval: time.Hour, StateKey: key})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	return &fixture{t: t, backend: f.backend, srv: srv}
}

func TestSealStateReplayIsRefused(t *testing.T) {
	eachModern(t, nil, func(t *testing.T, f *fixture, cs *sdk.ClientSession) {
		args := map[string]any{"question": podQuestion}
		leg := askGate(t, f, cs, args)
		res, err := answerGate(cs, args, leg.state, approveWith(podTarget))
		require.NoError(t, err)
		require.False(t, res.IsError, textOf(res))
		assert.Equal(t, 1, f.backend.Received("approve"))

		res, err = answerGate(cs, args, leg.state, approveWith(podTarget))
		require.NoError(t, err)
		assert.True(t, res.IsError, textOf(res))
		assert.Contains(t, textOf(res), "refused")
		assert.Equal(t, 1, f.backend.Received("approve"), "a replayed approval is not sent again")
		assert.Equal(t, []string{podQuestion, "approve"}, f.backend.MessagesFor(leg.conv))
	})
}

func TestSealStateReplayAfterDenyIsRefused(t *testing.T) {
	eachModern(t, nil, func(t *testing.T, f *fixture, cs *sdk.ClientSession) {
		args := map[string]any{"question": podQuestion}
		leg := askGate(t, f, cs, args)
		res, err := answerGate(cs, args, leg.state, denyAnswer())
		require.NoError(t, err)
		require.False(t, res.IsError, textOf(res))
		res, err = answerGate(cs, args, leg.state, approveWith(podTarget))
		require.NoError(t, err)
		assert.True(t, res.IsError, textOf(res))
		assert.Equal(t, []string{podQuestion, "deny"}, f.backend.MessagesFor(leg.conv))
		assertNeverApproved(t, f.backend)
	})
}

// Two answers raced with one state: exactly one is sent.
func TestSealStateConcurrentReplay(t *testing.T) {
	eachModern(t, nil, func(t *testing.T, f *fixture, cs *sdk.ClientSession) {
		args := map[string]any{"question": podQuestion}
		leg := askGate(t, f, cs, args)
		var wg sync.WaitGroup
		results := make([]*sdk.CallToolResult, 4)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := answerGate(cs, args, leg.state, approveWith(podTarget))
				if assert.NoError(t, err) {
					results[i] = res
				}
			}()
		}
		wg.Wait()
		ok := 0
		for _, r := range results {
			if r != nil && !r.IsError {
				ok++
			}
		}
		assert.Equal(t, 1, ok, "one answer accepted")
		assert.Equal(t, 1, f.backend.Received("approve"))
		assert.Empty(t, f.backend.ConcurrentTurnViolations())
	})
}

// resealed is leg's state with its expiry moved to exp and, when nonce is
// not "", another nonce: a state as it would be sent back later, made
// without waiting (a sleep would race the sweeper, whose deny wins).
func resealed(t *testing.T, f *fixture, leg gateLeg, exp time.Time, nonce string) string {
	t.Helper()
	st, err := f.srv.sealer.open(leg.state, time.Now())
	require.NoError(t, err)
	st.Expires = exp
	if nonce != "" {
		st.Nonce = nonce
	}
	token, err := f.srv.sealer.seal(st)
	require.NoError(t, err)
	return token
}

// An expired state whose gate is still recorded pending is denied as timed
// out, even when the human approved.
func TestSealStateExpiredIsTimedOut(t *testing.T) {
	eachModern(t, nil, func(t *testing.T, f *fixture, cs *sdk.ClientSession) {
		args := map[string]any{"question": podQuestion}
		leg := askGate(t, f, cs, args)
		state := resealed(t, f, leg, time.Now().Add(-time.Second), "")
		_, pending := f.backend.PendingGate(leg.conv)
		require.True(t, pending)
		require.Equal(t, []string{podQuestion}, f.backend.MessagesFor(leg.conv), "no deny yet: the sweeper has not run")
		res, err := answerGate(cs, args, state, approveWith(podTarget))
		require.NoError(t, err)
		require.False(t, res.IsError, textOf(res))
		assert.Equal(t, []map[string]any{wantApproval("act-pod", podCommand, "high", "denied", "timed_out")},
			approvalsOf(t, res))
		assert.Equal(t, []string{podQuestion, "deny"}, f.backend.MessagesFor(leg.conv))
		assertNeverApproved(t, f.backend)
	})
}

// An expired state replayed once nothing records its gate (its nonce long
// forgotten) sends nothing: a deny would reach KubeIntellect as a new
// question and start a turn.
func TestSealStateExpiredReplaySendsNothing(t *testing.T) {
	eachModern(t, nil, func(t *testing.T, f *fixture, cs *sdk.ClientSession) {
		args := map[string]any{"question": podQuestion}
		leg := askGate(t, f, cs, args)
		_, err := query(context.Background(), cs, map[string]any{"question": "status?", "conversation_id": leg.conv})
		require.NoError(t, err) // the gate is denied before this question
		before := f.backend.MessagesFor(leg.conv)
		require.Equal(t, []string{podQuestion, "deny", "status?"}, before)
		for i := range 3 {
			state := resealed(t, f, leg, time.Now().Add(-time.Second), fmt.Sprintf("forgotten-%d", i))
			res, err := answerGate(cs, args, state, approveWith(podTarget))
			require.NoError(t, err)
			assert.Contains(t, textOf(res), "Nothing was sent")
		}
		assert.Equal(t, before, f.backend.MessagesFor(leg.conv), "an expired replay sent something")
		assertNeverApproved(t, f.backend)
	})
}

// Answers the go-sdk's form validation would stop, sent raw: only a
// well-formed approve with the right confirmation approves.
func TestSealStateMalformedAnswersDeny(t *testing.T) {
	cases := map[string]struct {
		responses sdk.InputResponseMap
		reason    string
	}{
		"no-response":        {sdk.InputResponseMap{}, "error"},
		"other-id":           {sdk.InputResponseMap{"other": approveWith(podTarget)[elicitationID]}, "error"},
		"missing-confirm":    {approveWith(""), "confirmation_mismatch"},
		"upper-decision":     {sdk.InputResponseMap{elicitationID: &sdk.ElicitResult{Action: "accept", Content: map[string]any{"decision": "APPROVE", "confirm": podTarget}}}, "error"},
		"yes-decision":       {sdk.InputResponseMap{elicitationID: &sdk.ElicitResult{Action: "accept", Content: map[string]any{"decision": "yes", "confirm": podTarget}}}, "error"},
		"no-content":         {sdk.InputResponseMap{elicitationID: &sdk.ElicitResult{Action: "accept"}}, "error"},
		"decline-with-data":  {sdk.InputResponseMap{elicitationID: &sdk.ElicitResult{Action: "decline", Content: map[string]any{"decision": "approve", "confirm": podTarget}}}, "user_declined"},
		"unknown-action":     {sdk.InputResponseMap{elicitationID: &sdk.ElicitResult{Action: "approve", Content: map[string]any{"decision": "approve", "confirm": podTarget}}}, "error"},
		"confirm-not-string": {sdk.InputResponseMap{elicitationID: &sdk.ElicitResult{Action: "accept", Content: map[string]any{"decision": "approve", "confirm": 1}}}, "error"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, nil)
			f.backend.Handle(podQuestion, kubeqtest.Script{gate(podCommand, "act-pod")})
			cs := f.connectHuman("http", "", newHuman(t, declineForm), false)
			args := map[string]any{"question": podQuestion}
			leg := askGate(t, f, cs, args)
			res, err := answerGate(cs, args, leg.state, c.responses)
			require.NoError(t, err)
			require.False(t, res.IsError, textOf(res))
			assert.Equal(t, []map[string]any{wantApproval("act-pod", podCommand, "high", "denied", c.reason)},
				approvalsOf(t, res))
			assert.Equal(t, []string{podQuestion, "deny"}, f.backend.MessagesFor(leg.conv))
			assertNeverApproved(t, f.backend)
		})
	}
}

// A state whose gate was already resolved as pending, when a newer gate is
// open on the conversation, is refused; the newer state still works.
func TestSealStateStaleAfterNewerGate(t *testing.T) {
	eachModern(t, nil, func(t *testing.T, f *fixture, cs *sdk.ClientSession) {
		first := askGate(t, f, cs, map[string]any{"question": podQuestion})
		second := askGate(t, f, cs, map[string]any{"question": scaleQuestion, "conversation_id": first.conv})
		require.Equal(t, first.conv, second.conv)
		assert.Equal(t, []string{podQuestion, "deny", scaleQuestion}, f.backend.MessagesFor(first.conv))

		res, err := answerGate(cs, map[string]any{"question": podQuestion}, first.state, approveWith(podTarget))
		require.NoError(t, err)
		assert.True(t, res.IsError, "the first gate was denied already: %s", textOf(res))
		assert.Equal(t, []string{podQuestion, "deny", scaleQuestion}, f.backend.MessagesFor(first.conv))
		_, pending := f.backend.PendingGate(first.conv)
		assert.True(t, pending, "the newer gate is untouched")

		res, err = answerGate(cs, map[string]any{"question": scaleQuestion}, second.state, approveWith(""))
		require.NoError(t, err)
		require.False(t, res.IsError, textOf(res))
		assert.Equal(t, []string{podQuestion, "deny", scaleQuestion, "approve"}, f.backend.MessagesFor(first.conv))
		d := f.backend.Decisions()
		require.Len(t, d, 2)
		assert.False(t, d[0].Approved)
		assert.Equal(t, "act-scale", d[1].ActionID)
		assert.True(t, d[1].Approved)
	})
}
