package kubeq

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
