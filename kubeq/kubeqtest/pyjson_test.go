package kubeqtest

import "testing"

// The expectations were produced with Python 3's json.dumps at development
// time.
func TestPyJSONMatchesPython(t *testing.T) {
	cases := []struct {
		in   any
		want string
	}{
		{Obj{{"a", "x/y<z>&"}, {"b", []any{1, 2.5, nil, true, false}}, {"c", Obj{{"d", "é…—🔴"}}}},
			`{"a": "x/y<z>&", "b": [1, 2.5, null, true, false], "c": {"d": "\u00e9\u2026\u2014\ud83d\udd34"}}`},
		{"\x00\x01\x1f\x7f\b\f\n\r\t\"\\ \u2028", `"\u0000\u0001\u001f\u007f\b\f\n\r\t\"\\ \u2028"`},
		{[]any{1767225601.27, 1.0, 0.0001, 0.00001, 1e16, 123456789012345678.0, -0.5, 1e22, 3.14159},
			`[1767225601.27, 1.0, 0.0001, 1e-05, 1e+16, 1.2345678901234568e+17, -0.5, 1e+22, 3.14159]`},
		{Obj{}, `{}`},
		{[]any{}, `[]`},
		{"日本語 𝄞", `"\u65e5\u672c\u8a9e \ud834\udd1e"`},
	}
	for _, c := range cases {
		if got := PyJSON(c.in); got != c.want {
			t.Errorf("PyJSON(%#v)\n got %s\nwant %s", c.in, got, c.want)
		}
	}
	// Starlette's JSONResponse: compact, ensure_ascii=False.
	if got, want := compactJSON(Obj{{"detail", "é — </x>"}, {"n", []any{1, Obj{{"a", nil}}}}}), `{"detail":"é — </x>","n":[1,{"a":null}]}`; got != want {
		t.Errorf("compactJSON = %s, want %s", got, want)
	}
}

func TestDecodeOrderedRoundTrip(t *testing.T) {
	in := `{"z": 1, "a": [true, null, "\u00e9", {"k": 2.50}], "m": {}}`
	v, err := decodeOrdered([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := PyJSON(v); got != in {
		t.Errorf("round trip\n got %s\nwant %s", got, in)
	}
	if _, err := decodeOrdered([]byte(`{"a": 1} x`)); err == nil {
		t.Error("trailing data accepted")
	}
}

func TestSplitTokens(t *testing.T) {
	text := "The checkout pod — crashes because DB_URL is unset 🔴🔴🔴🔴🔴"
	pieces := splitTokens(text, 8)
	joined := ""
	for _, p := range pieces {
		if len(p) > 8+3 {
			t.Errorf("piece %q too long", p)
		}
		joined += p
	}
	if joined != text || len(pieces) < 5 {
		t.Errorf("pieces %q", pieces)
	}
	for _, p := range pieces {
		for i := 0; i < len(p); {
			r := []rune(p[i:])[0]
			if r == '\uFFFD' {
				t.Errorf("piece %q splits a character", p)
			}
			i += len(string(r))
		}
	}
	if n := len(hugeText(1 << 20)); n != 1<<20 {
		t.Errorf("hugeText len %d", n)
	}
}
