package kubeqtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode/utf8"
)

// Obj is a JSON object whose keys keep the order they were given in, the way
// a Python dict does. Go maps have no order, so the fake never uses them for
// anything it writes.
type Obj []KV

// KV is one key of an Obj.
type KV struct {
	Key string
	Val any
}

// PyJSON encodes v the way Python's json.dumps does with default settings:
// ", " and ": " separators and ensure_ascii (every non-ASCII character as a
// lowercase \uXXXX escape, characters beyond the BMP as a surrogate pair).
// Supported values: nil, bool, int, int64, float64, string, json.Number,
// json.RawMessage (copied verbatim), Obj, []any, []string, []Obj.
func PyJSON(v any) string {
	var b bytes.Buffer
	encodePy(&b, v, pyStyle{itemSep: ", ", keySep: ": ", ascii: true})
	return b.String()
}

// compactJSON encodes v like Starlette's JSONResponse, which FastAPI uses for
// error bodies: separators (",", ":") and ensure_ascii=False.
func compactJSON(v any) string {
	var b bytes.Buffer
	encodePy(&b, v, pyStyle{itemSep: ",", keySep: ":", ascii: false})
	return b.String()
}

type pyStyle struct {
	itemSep, keySep string
	ascii           bool
}

func encodePy(b *bytes.Buffer, v any, st pyStyle) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case int:
		b.WriteString(strconv.Itoa(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		b.WriteString(pyFloat(x))
	case json.Number:
		b.WriteString(string(x))
	case json.RawMessage:
		b.Write(x)
	case string:
		writePyString(b, x, st.ascii)
	case Obj:
		b.WriteByte('{')
		for i, kv := range x {
			if i > 0 {
				b.WriteString(st.itemSep)
			}
			writePyString(b, kv.Key, st.ascii)
			b.WriteString(st.keySep)
			encodePy(b, kv.Val, st)
		}
		b.WriteByte('}')
	case []any:
		writePyList(b, len(x), func(i int) any { return x[i] }, st)
	case []string:
		writePyList(b, len(x), func(i int) any { return x[i] }, st)
	case []Obj:
		writePyList(b, len(x), func(i int) any { return x[i] }, st)
	default:
		panic(fmt.Sprintf("kubeqtest: PyJSON cannot encode %T", v))
	}
}

func writePyList(b *bytes.Buffer, n int, at func(int) any, st pyStyle) {
	b.WriteByte('[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(st.itemSep)
		}
		encodePy(b, at(i), st)
	}
	b.WriteByte(']')
}

// pyFloat mirrors Python's float repr: shortest round-trip digits, positional
// notation between 1e-4 and 1e16, and always a ".0" on integral values.
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	abs := math.Abs(f)
	if abs != 0 && (abs < 1e-4 || abs >= 1e16) {
		s := strconv.FormatFloat(f, 'e', -1, 64)
		// Go writes 1e-05 as "1e-05" like Python; only the mantissa differs
		// when it is integral, and Python keeps it bare ("1e+16").
		return s
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !bytes.ContainsAny([]byte(s), ".") {
		s += ".0"
	}
	return s
}

const hexDigits = "0123456789abcdef"

// writePyString quotes s with Python's escapes. With ascii, every rune outside
// printable ASCII (0x20-0x7e) becomes \uXXXX; without it only quotes,
// backslashes and control characters are escaped.
func writePyString(b *bytes.Buffer, s string, ascii bool) {
	b.WriteByte('"')
	for i := 0; i < len(s); {
		// Copy a run of printable ASCII that needs no escape in one go.
		j := i
		for j < len(s) && s[j] >= 0x20 && s[j] < 0x7f && s[j] != '"' && s[j] != '\\' {
			j++
		}
		b.WriteString(s[i:j])
		if i = j; i == len(s) {
			break
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			switch {
			case r < 0x20:
				writeU(b, r)
			case r < 0x7f:
				b.WriteByte(byte(r))
			case !ascii:
				b.WriteRune(r)
			case r > 0xffff:
				r -= 0x10000
				writeU(b, 0xd800+(r>>10))
				writeU(b, 0xdc00+(r&0x3ff))
			default:
				writeU(b, r)
			}
		}
	}
	b.WriteByte('"')
}

func writeU(b *bytes.Buffer, r rune) {
	b.WriteString(`\u`)
	b.WriteByte(hexDigits[r>>12&0xf])
	b.WriteByte(hexDigits[r>>8&0xf])
	b.WriteByte(hexDigits[r>>4&0xf])
	b.WriteByte(hexDigits[r&0xf])
}

// decodeOrdered parses JSON keeping object key order (objects become Obj,
// numbers json.Number), so the fake can echo a body back the way Python
// would, e.g. in FastAPI's 422 "input" field.
func decodeOrdered(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("trailing data after JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			var o Obj
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, _ := kt.(string)
				val, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				o = append(o, KV{key, val})
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			if o == nil {
				o = Obj{}
			}
			return o, nil
		case '[':
			list := []any{}
			for dec.More() {
				val, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				list = append(list, val)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return list, nil
		}
		return nil, fmt.Errorf("unexpected delimiter %v", t)
	default:
		return t, nil // string, bool, nil, json.Number
	}
}
