package pywire

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// scanBoth reads one value of text with the block masks and with the eight-byte search, and
// fails when they disagree on the verdict or on where the value ends.
func scanBoth(t *testing.T, text []byte) (ok bool) {
	t.Helper()
	run := func(masks bool) (int, bool) {
		saved := useMasks
		useMasks = masks
		defer func() { useMasks = saved }()
		s := NewScanner(text)
		_, end, err := s.value()
		if err == nil {
			err = s.End()
		}
		return end, err == nil
	}
	end, ok := run(false)
	if !useMasks {
		return ok
	}
	if mEnd, mOK := run(true); mOK != ok || (ok && mEnd != end) {
		t.Fatalf("masks: ok %v end %d, eight-byte search: ok %v end %d, for %q", mOK, mEnd, ok, end, text)
	}
	return ok
}

// The scanner's own verdict, with either string search, is encoding/json's for UTF-8 text:
// strings that cross 64-byte blocks and 256-byte windows, escapes and control characters at
// block edges, texts ending inside and at the end of a block.
func TestScannerStringSearch(t *testing.T) {
	if !useMasks {
		t.Log("no AVX2 here: only the eight-byte search is checked")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	pieces := []string{`"`, `\"`, `\\`, `\u00e9`, `\n`, "\x01", "\x1f", " ", "a", "é", `\`, "0123456789abcdef0123456789abcdef"}
	for n := 0; n < 4000; n++ {
		var b strings.Builder
		b.WriteString(`{"k": [`)
		for k := rng.IntN(12); k > 0; k-- {
			b.WriteString(`"`)
			for j := rng.IntN(40); j > 0; j-- {
				p := pieces[rng.IntN(len(pieces))]
				if p == `"` || p == `\` || p == "\x01" || p == "\x1f" {
					if rng.IntN(8) != 0 { // mostly valid strings
						p = "x"
					}
				}
				b.WriteString(p)
			}
			b.WriteString(`", `)
		}
		b.WriteString(`null]}`)
		text := []byte(b.String())
		if cut := rng.IntN(4); cut == 0 && len(text) > 1 {
			text = text[:rng.IntN(len(text))]
		}
		ok := scanBoth(t, text)
		if utf8.Valid(text) && ok != json.Valid(text) {
			t.Fatalf("scanner says %v, encoding/json %v, for %q", ok, json.Valid(text), text)
		}
	}
	// Every length around the block and window edges, ending in a string.
	for n := 1; n < 600; n++ {
		text := []byte(`"` + strings.Repeat("x", n) + `"`)
		if !scanBoth(t, text) {
			t.Fatalf("string of %d bytes rejected", n)
		}
		text[len(text)-1] = '\\'
		if scanBoth(t, text) {
			t.Fatalf("unterminated string of %d bytes accepted", n)
		}
	}
}

// FuzzScanner checks that both string searches agree, and agree with encoding/json.
func FuzzScanner(f *testing.F) {
	f.Add([]byte(`{"body": "W1syLCAzXSwge30=", "headers": {"id": "x\u00e9", "n": [1, null]}}`))
	f.Add([]byte(`"` + strings.Repeat("a", 70) + `\"` + strings.Repeat("b", 200) + `"`))
	f.Fuzz(func(t *testing.T, text []byte) {
		ok := scanBoth(t, text)
		if utf8.Valid(text) && ok != json.Valid(text) {
			t.Fatalf("scanner says %v, encoding/json %v, for %q", ok, json.Valid(text), text)
		}
	})
}
