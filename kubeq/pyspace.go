package kubeq

import (
	"strings"
	"unicode"
)

// IsPySpace is Python's str.isspace, which the backend's strip() uses: Go's
// unicode.IsSpace plus the information separators U+001C to U+001F. A
// question made only of these is empty to the backend.
func IsPySpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// Blank reports whether s is empty after Python's strip().
func Blank(s string) bool { return strings.TrimFunc(s, IsPySpace) == "" }
