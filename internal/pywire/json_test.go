package pywire

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"unicode/utf16"
)

// Valid must agree with encoding/json's Valid, whatever the input.
func TestValidMatchesEncodingJSON(t *testing.T) {
	seeds := []string{
		`[[2, 3], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]`,
		`{"a": "\u00e9\ud800", "b": [1.5e-3, -0, 0.0, true, false, null], "c": "\/\b\f\n\r\t"}`,
		`"x"`, "0\x00", "{}\x00", `01`, `-`, `1.`, `1e`, `.5`, `[1,]`, `{"a" 1}`, `{"a":1,}`, "\"\x01\"", "\"\xff\xfe\"",
		`{"body": "W1syLCAzXSwge30sIHsiY2FsbGJhY2tzIjogbnVsbCwgImVycmJhY2tzIjogbnVsbH1d", "id": "3b0c5a8e-2f6b-4f5e\n-9d59-1c7e4e2b8c11"}`,
		` 7 `, "", " ", `nul`, `truex`, `[`, `"\u12g4"`, `"\x"`, `{"a":{"b":[{}]}}`,
	}
	check := func(s string) {
		if got, want := Valid([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", s, got, want)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	chars := []byte(" \t\n\"\\/{}[]:,.-+eE0123456789tfnulrsaxu\x00\x01\xc3\xa9\xff")
	for _, s := range seeds {
		check(s)
		for i := 0; i < 3000; i++ {
			b := []byte(s)
			for k := 1 + rng.IntN(3); k > 0; k-- {
				switch pos := rng.IntN(len(b) + 1); rng.IntN(3) {
				case 0: // insert
					b = append(b[:pos], append([]byte{chars[rng.IntN(len(chars))]}, b[pos:]...)...)
				case 1: // delete
					if pos < len(b) {
						b = append(b[:pos], b[pos+1:]...)
					}
				default: // replace
					if pos < len(b) {
						b[pos] = chars[rng.IntN(len(chars))]
					}
				}
			}
			check(string(b))
		}
	}
}

// AppendString must write what Python's json.dumps writes (ensure_ascii), for any text.
func TestAppendStringMatchesPython(t *testing.T) {
	// reference escapes rune by rune, as Python's encoder does.
	reference := func(s string) string {
		out := []byte{'"'}
		for _, r := range s { // invalid UTF-8 reads as U+FFFD, one byte at a time
			switch {
			case r == '"' || r == '\\':
				out = append(out, '\\', byte(r))
			case r == '\n':
				out = append(out, `\n`...)
			case r == '\r':
				out = append(out, `\r`...)
			case r == '\t':
				out = append(out, `\t`...)
			case r == '\b':
				out = append(out, `\b`...)
			case r == '\f':
				out = append(out, `\f`...)
			case r < 0x20 || (r >= 0x80 && r <= 0xFFFF):
				out = fmt.Appendf(out, `\u%04x`, r)
			case r > 0xFFFF:
				r1, r2 := utf16.EncodeRune(r)
				out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
			default:
				out = append(out, byte(r))
			}
		}
		return string(append(out, '"'))
	}
	rng := rand.New(rand.NewPCG(5, 6))
	pieces := []string{"a", "task-id-0123456789", "\"", "\\", "\n", "\x01", "\x7f", "é", "€", "😀", "\xff", "\xc3", " ", "/"}
	for i := 0; i < 20000; i++ {
		var s string
		for k := rng.IntN(12); k > 0; k-- {
			s += pieces[rng.IntN(len(pieces))]
		}
		if got, want := string(AppendString(nil, s)), reference(s); got != want {
			t.Fatalf("AppendString(%q) = %s, want %s", s, got, want)
		}
	}
}
