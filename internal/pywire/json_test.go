package pywire

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// Valid must agree with encoding/json's Valid, whatever the input.
func TestValidMatchesEncodingJSON(t *testing.T) {
	seeds := []string{
		`[[2, 3], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]`,
		`{"a": "\u00e9\ud800", "b": [1.5e-3, -0, 0.0, true, false, null], "c": "\/\b\f\n\r\t"}`,
		`"x"`, `01`, `-`, `1.`, `1e`, `.5`, `[1,]`, `{"a" 1}`, `{"a":1,}`, "\"\x01\"", "\"\xff\xfe\"",
		` 7 `, "", " ", `nul`, `truex`, `[`, `"\u12g4"`, `"\x"`, `{"a":{"b":[{}]}}`,
	}
	check := func(s string) {
		if got, want := Valid([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", s, got, want)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	chars := []byte(" \t\n\"\\/{}[]:,.-+eE0123456789tfnulrsaxu\x01\xc3\xa9\xff")
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
