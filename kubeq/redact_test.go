package kubeq

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubeq-mcp/kubeq-mcp/kubeq/kubeqtest"
)

// Answer text split at every possible place, even one byte per chunk,
// never lets a secret through, and loses nothing else.
func TestTokenRedactorAcrossChunks(t *testing.T) {
	u, err := url.Parse("http://admin:p%40ss-word@host")
	require.NoError(t, err)
	r := newRedactor("kq-key-0123456789", u)
	text := "key kq-key-0123456789, kq-key- alone, p@ss-word and p%40ss-word; kq-k"
	want := "key [redacted], kq-key- alone, [redacted] and [redacted]; kq-k"
	for size := 1; size <= len(text); size++ {
		tr := &tokenRedactor{r: r}
		var out strings.Builder
		for i := 0; i < len(text); i += size {
			out.WriteString(tr.token(text[i:min(i+size, len(text))]))
		}
		out.WriteString(tr.flush())
		assert.Equal(t, want, out.String(), "chunks of %d", size)
	}
}

// A secret too short to tell from ordinary words is left alone.
func TestRedactorSkipsShortSecrets(t *testing.T) {
	r := newRedactor("abc", nil)
	assert.Equal(t, "abc def", r.str("abc def"))
	assert.Equal(t, "x", (&tokenRedactor{r: r}).token("x"))
}

// cutKey is a 37-byte key; its first 8 bytes run past the public "kq-live-".
const cutKey = "kq-live-4b1d9e07c2a85f36e19d04b7a2c5f"

// Text that may have been cut short loses a start of a secret at its end
// once that start is too long to be chance, and keeps a shorter one.
func TestRedactorCutTail(t *testing.T) {
	require.Len(t, cutKey, 37)
	r := newRedactor(cutKey, nil)
	for in, want := range map[string]string{
		"out: " + cutKey[:35]:                "out: [redacted]",
		"out: " + cutKey[:8]:                 "out: [redacted]", // 8 bytes, the least for a long key
		"out: " + cutKey[:7]:                 "out: " + cutKey[:7],
		"out: " + cutKey:                     "out: [redacted]",
		"out: " + cutKey + " " + cutKey[:20]: "out: [redacted] [redacted]",
		cutKey[:20] + " in the middle":       cutKey[:20] + " in the middle", // not at an end that may be cut
		"":                                   "",
	} {
		assert.Equal(t, want, r.cut(in), "cut(%q)", in)
	}
	// str alone leaves the end of uncut text, but not a start of a secret
	// right before the backend's cut marker.
	assert.Equal(t, "a "+cutKey[:10], r.str("a "+cutKey[:10]))
	assert.Equal(t, "a [redacted]\n... [truncated]\n```\nb [redacted]\n... [truncated]",
		r.str("a "+cutKey[:10]+"\n... [truncated]\n```\nb "+cutKey[:30]+"\n... [truncated]"))

	// A short secret: half of it is enough, but never under minRedactLen.
	short := newRedactor("pw-abcde", nil)
	assert.Equal(t, "x [redacted]", short.cut("x pw-a"))
	assert.Equal(t, "x pw-", short.cut("x pw-"))
	tiny := newRedactor("abcdef", nil) // half is 3, under minRedactLen
	assert.Equal(t, "x abc", tiny.cut("x abc"))
	assert.Equal(t, "x [redacted]", tiny.cut("x abcd"))
}

// The tail held back at the end of the answer goes as the marker when it
// is a long enough start of the key, and as it came when shorter.
func TestTokenRedactorFlushesCutKey(t *testing.T) {
	r := newRedactor(cutKey, nil)
	tr := &tokenRedactor{r: r}
	assert.Equal(t, "the key is ", tr.token("the key is "+cutKey[:20]))
	assert.Equal(t, "[redacted]", tr.flush())
	assert.Equal(t, "", tr.flush())
	assert.Equal(t, "ends in ", tr.token("ends in "+cutKey[:7]))
	assert.Equal(t, cutKey[:7], tr.flush())
}

// Against the fake backend, which cuts tool outputs at 500 characters and
// HITL YAML at 3000 as the real one does: no start of the key long enough
// to be one comes out in an event, the answer or the gate, whether the
// turn ends with [DONE], breaks off, or pauses at a gate.
func TestCutKeyNeverLeavesTheClient(t *testing.T) {
	srv := kubeqtest.NewServer(kubeqtest.WithAPIKeys(cutKey), kubeqtest.WithTokenChunkSize(7))
	t.Cleanup(srv.Close)
	pad := strings.Repeat("y", 465) // + the key, cut at 500: its first 35 bytes
	srv.Handle("done", kubeqtest.Script{
		kubeqtest.ToolCall("run_kubectl", "kubectl get deploy kubeintellect -o yaml"),
		kubeqtest.ToolResult("run_kubectl", pad+cutKey+"\n  replicas: 1"),
		kubeqtest.Tokens("The deployment's key starts " + cutKey[:35]),
	})
	srv.Handle("broken", kubeqtest.Script{
		kubeqtest.Tokens("The deployment's key starts " + cutKey[:35]),
		kubeqtest.EndWithoutDone(),
	})
	srv.Handle("gate", kubeqtest.Script{kubeqtest.Gate{
		Command: "kubectl apply -f -",
		YAML:    strings.Repeat("x", 2990) + cutKey, // cut at 3000: its first 10 bytes
	}})
	c := newClient(t, srv.URL, WithAPIKey(cutKey), WithRetryDelays())
	leak := cutKey[:minCut(cutKey)]

	evs, err := collect(testCtx(t), c, Turn{Question: "done"})
	require.NoError(t, err)
	var out, answer string
	for _, e := range evs {
		switch e := e.(type) {
		case ToolResult:
			out = e.Output
		case Token:
			answer += e.Content
		}
	}
	assert.Equal(t, pad+"[redacted]", out)
	assert.Equal(t, "The deployment's key starts [redacted]", answer)
	assert.NotContains(t, fmt.Sprintf("%#v", evs), leak)

	res, err := c.Query(testCtx(t), Turn{Question: "done"})
	require.NoError(t, err)
	assert.Equal(t, "The deployment's key starts [redacted]", res.Answer)

	res, err = c.Query(testCtx(t), Turn{Question: "broken"})
	var ie *InterruptedError
	require.ErrorAs(t, err, &ie)
	assert.Equal(t, "The deployment's key starts [redacted]", res.Answer)
	assert.NotContains(t, err.Error(), leak)

	res, err = c.Query(testCtx(t), Turn{Question: "gate"})
	require.NoError(t, err)
	require.NotNil(t, res.Hitl)
	assert.Equal(t, strings.Repeat("x", 2990)+"[redacted]\n... [truncated]", res.Hitl.YAML)
	assert.Contains(t, res.Hitl.Prompt, "[redacted]\n... [truncated]")
	assert.NotContains(t, fmt.Sprintf("%#v %#v", *res, *res.Hitl), leak)
}

// FuzzTokenRedactor: answer text in chunks of any size never lets the key
// through whole, nor ends on a start of it long enough to be one; and
// text that holds no part of the key comes out unchanged.
func FuzzTokenRedactor(f *testing.F) {
	f.Add("the key is "+cutKey+" and its start "+cutKey[:35], 3)
	f.Add("ends "+cutKey[:7], 1)
	f.Add(cutKey[:20]+cutKey+cutKey[:9], 5)
	f.Add("kubectl get deploy kubeintellect -o yaml", 7)
	r := newRedactor(cutKey, nil)
	f.Fuzz(func(t *testing.T, text string, size int) {
		size = 1 + int(uint(size)%uint(len(text)+1))
		tr := &tokenRedactor{r: r}
		var b strings.Builder
		for i := 0; i < len(text); i += size {
			b.WriteString(tr.token(text[i:min(i+size, len(text))]))
		}
		b.WriteString(tr.flush())
		out := b.String()
		require.NotContains(t, out, cutKey)
		for n := minCut(cutKey); n < len(cutKey); n++ {
			require.False(t, strings.HasSuffix(out, cutKey[:n]), "ends on %d bytes of the key: %q", n, out)
		}
		if !strings.Contains(text, cutKey[:1]) {
			require.Equal(t, text, out)
		}
	})
}
