package celery

import (
	"reflect"
	"testing"
)

// flatCases are texts for decodeFlat: what it takes and what it leaves to the decoder.
var flatCases = []string{
	`[1, "two", true, false, null, -0, 1.5e-3, 12345678901234567890123]`, `{"a": 1, "b": "x", "a": 2}`, `"plain"`, `7`,
	`[]`, `{}`, ` [ 1 ,2 ] `, `["caf` + "\xc3\xa9" + `"]`, `null`,
	`[[1]]`, `[{"a": 1}]`, `["a\"b"]`, "[\"\xff\"]", "[\"a\tb\"]", `[01]`, `[1.]`, `[1e]`, `[-]`, `[1,]`, `[1] x`, `{"a" 1}`, `{1: 2}`, ``, `tru`,
}

// TestDecodeFlat: decodeFlat gives what encoding/json gives for what it takes, into each
// kind of target, and takes the common arguments.
func TestDecodeFlat(t *testing.T) {
	for _, c := range flatCases {
		checkDecodeFlat(t, []byte(c))
	}
	for _, c := range []string{`[2, "x"]`, `{"k": "v", "n": 1}`, `"1700000000"`, `{}`, `[]`} {
		var v any
		if !decodeFlat([]byte(c), &v) {
			t.Errorf("%s: left to the decoder", c)
		}
	}
}

// FuzzDecodeFlat: decodeFlat agrees with encoding/json on any text.
func FuzzDecodeFlat(f *testing.F) {
	for _, c := range flatCases {
		f.Add([]byte(c))
	}
	f.Fuzz(checkDecodeFlat)
}

func checkDecodeFlat(t *testing.T, b []byte) {
	targets := []func() any{
		func() any { return new(any) }, func() any { return new([]any) }, func() any { return new(map[string]any) },
	}
	for _, target := range targets {
		got, want := target(), target()
		if !decodeFlat(b, got) {
			continue
		}
		if err := decodeNumbers(b, want); err != nil {
			t.Fatalf("%q into %T: taken as %#v, the decoder fails: %v", b, got, reflect.ValueOf(got).Elem(), err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q into %T: %#v, the decoder: %#v", b, got, reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem())
		}
	}
}
