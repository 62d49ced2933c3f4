package server

// Tests of the shortcuts the hot path takes: each is held to the slow
// path it skips.

import (
	"encoding/json"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMayMention(t *testing.T) {
	for _, c := range []struct {
		msg  string
		want bool
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"kube_query"}}`, false},
		{`{"jsonrpc":"2.0","id":1,"result":{}}`, true},
		{`{"jsonrpc":"2.0","id":1,"RESULT":{}}`, true},          // member names match in any case
		{`{"jsonrpc":"2.0","id":1,"re\u0073ult":{}}`, true},     // an escape may spell it
		{`{"jsonrpc":"2.0","id":1,"reſult":{}}`, true},          // so may Unicode folding (ſ is s)
		{`{"jsonrpc":"2.0","id":1,"method":"Tasks/get"}`, true}, // found whatever the case
	} {
		got := mayMention([]byte(c.msg), "result", "tasks/")
		assert.Equal(t, c.want, got, c.msg)
	}
	var m struct {
		Result json.RawMessage `json:"result"`
	}
	require.NoError(t, json.Unmarshal([]byte(`{"reſult":{}}`), &m))
	assert.NotEmpty(t, m.Result, "encoding/json folds ſ to s, which is why non-ASCII bodies are always decoded")
}

// FuzzMayMentionHidesNothing: whatever encoding/json finds in a message,
// mayMention says the message may mention it.
func FuzzMayMentionHidesNothing(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"result":{"action":"accept"}}`,
		`{"jsonrpc":"2.0","id":1,"ERROR":{"code":1}}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`,
		`{"jsonrpc":"2.0","id":2,"method":"ta\u0073ks/get"}`,
		`{"jsonrpc":"2.0","id":3,"method":"initialize","params":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		var m struct {
			Method string          `json:"method"`
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		_ = json.Unmarshal(msg, &m) // what it decoded, even with an error elsewhere
		if len(m.Result) > 0 {
			require.True(t, mayMention(msg, "result"))
		}
		if len(m.Error) > 0 {
			require.True(t, mayMention(msg, "error"))
		}
		if ascii(m.Method) {
			require.True(t, mayMention(msg, strings.ToLower(m.Method)))
		}
	})
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// folded says a line needs no folding only when folding would not change
// it.
func FuzzFoldedMeansUnchanged(f *testing.F) {
	for _, s := range []string{"", " ", "a b", "a  b", " a", "a ", "a\tb", "a\u00a0b", "a\u2003b", "\xff b", "running: kubectl get pods"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		joined := strings.Join(strings.Fields(s), " ")
		if folded(s) {
			require.Equal(t, joined, s)
		} else {
			require.NotEqual(t, joined, s)
		}
	})
}

// containsFoldASCII finds a lower-case ASCII word in any letter case, as
// lower-casing the text and searching would.
func FuzzContainsFoldASCII(f *testing.F) {
	f.Add([]byte(`{"METHOD":"Notifications/Cancelled"}`), "notifications/cancelled")
	f.Add([]byte("nnnnN initializE"), "initialize")
	f.Fuzz(func(t *testing.T, b []byte, w string) {
		if !ascii(string(b)) || !ascii(w) || strings.ToLower(w) != w {
			return
		}
		require.Equal(t, strings.Contains(strings.ToLower(string(b)), w), containsFoldASCII(b, w))
	})
}

// maxPhraseRunes bounds every phrase, so no phrase is ever skipped.
func TestMaxPhraseRunesBoundsThePhrases(t *testing.T) {
	for _, set := range [][]string{approvalPhrases, denialPhrases, autoApprovePhrases} {
		for _, p := range set {
			n := 0
			for _, r := range "/" + p {
				if r != ' ' {
					n++
				}
			}
			assert.LessOrEqual(t, n, maxPhraseRunes, p)
			assert.Equal(t, phraseKind(p) != "", true, p)
			assert.False(t, longerThanAnyPhrase("  /"+strings.ToUpper(p)+" !!! ?? .. "), p)
		}
	}
	assert.True(t, longerThanAnyPhrase("why is checkout crashing?"))
}

// plainConversationID accepts nothing the schema's pattern refuses.
func FuzzPlainConversationIDIsInThePattern(f *testing.F) {
	for _, s := range []string{"a", "-a", "f7572f3f-b221-4a6a-bf23-b76f524615f7", strings.Repeat("a", 128), strings.Repeat("a", 129), "a\n", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if plainConversationID(s) {
			require.True(t, conversationIDRe.MatchString(s), "%q", s)
		}
	})
}

// readAtMost reads a body whole, whether it is as long as declared, longer
// (read on to the limit), shorter, or of unknown length.
func TestReadAtMost(t *testing.T) {
	body := strings.Repeat("x", 300)
	for _, c := range []struct {
		name     string
		declared int64
		limit    int64
		want     string
		tooLarge bool
	}{
		{"as declared", 300, 1000, body, false},
		{"unknown length", -1, 1000, body, false},
		{"longer than declared", 100, 1000, body, false},
		{"shorter than declared", 500, 1000, body, false},
		{"over the limit", 300, 299, "", true},
		{"over the limit, declared under it", 200, 299, "", true},
		{"exactly the limit", 300, 300, body, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := readAtMost(iotest.OneByteReader(strings.NewReader(body)), c.limit, c.declared)
			if c.tooLarge {
				require.ErrorIs(t, err, errBodyTooLarge)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, string(got))
		})
	}
	_, err := readAtMost(iotest.TimeoutReader(strings.NewReader(body)), 1000, 300)
	assert.ErrorIs(t, err, iotest.ErrTimeout, "a read error is not an end")
}
