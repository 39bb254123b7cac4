package pywire

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds the small JSON reader and writer behind the Kombu envelope codec and the
// Celery task encoder. The envelope has a fixed, shallow shape, and reading it with a hand-written scanner keeps decoding to a
// few allocations (encoding/json would allocate per header and scan every byte twice).
// The writer produces the same bytes as Python's json.dumps with its defaults
// (separators ", " and ": ", ensure_ascii), which is what Kombu and Celery send.

// maxJSONDepth bounds nesting so that a hostile body cannot exhaust the stack.
const maxJSONDepth = 512

var errJSONSyntax = errors.New("invalid JSON")

// Scanner reads one JSON text. It expects the text to be valid UTF-8.
type Scanner struct {
	b []byte
	i int
	// With useMasks, the masks of b[wlo:whi], a window of whole 64-byte blocks of b: bit k of
	// masks[j] is set when byte wlo+64j+k is a quote, a backslash or a control character, or
	// past the end of b. Finding a string's end is then a shift and a count of zeros.
	wlo, whi int
	masks    [maskWindow / 64]uint64
}

// maskWindow is how many bytes of the text the masks cover at once.
const maskWindow = 256 // four words: masks are indexed with &3

// NewScanner returns a Scanner positioned at the start of text.
func NewScanner(text []byte) Scanner { return Scanner{b: text} }

func (s *Scanner) ws() {
	// Python's layout puts at most one space between tokens: the common cases return at once.
	if s.i < len(s.b) && s.b[s.i] > ' ' {
		return
	}
	s.wsSlow()
}

func (s *Scanner) wsSlow() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// sep consumes a separator (',' or ':') and the single space Python's layout puts after it,
// so that the next Peek finds its byte at once.
func (s *Scanner) sep() {
	s.i++
	if s.i < len(s.b) && s.b[s.i] == ' ' {
		s.i++
	}
}

// Peek returns the next non-space byte without consuming it, or 0 at the end.
func (s *Scanner) Peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *Scanner) syntaxError(what string) error {
	return &jsonSyntaxError{offset: s.i, what: what}
}

type jsonSyntaxError struct {
	offset int
	what   string
}

func (e *jsonSyntaxError) Error() string {
	return "invalid JSON at offset " + strconv.Itoa(e.offset) + ": " + e.what
}

func (e *jsonSyntaxError) Unwrap() error { return errJSONSyntax }

// RawString consumes a string and returns its bytes between the quotes (still escaped) and
// whether it contains escapes.
func (s *Scanner) RawString() (raw []byte, escaped bool, err error) {
	if s.Peek() != '"' {
		return nil, false, s.syntaxError("expected a string")
	}
	return s.str()
}

// str is RawString at the opening quote.
func (s *Scanner) str() (raw []byte, escaped bool, err error) {
	start := s.i + 1
	// specialIndex, with its common case written out here: a call per string costs as much
	// as the search.
	var end int
	if off := uint(start - s.wlo); off < uint(s.whi-s.wlo) && s.masks[off>>6&3]>>(off&63) != 0 {
		end = start + bits.TrailingZeros64(s.masks[off>>6&3]>>(off&63))
	} else {
		end = s.specialIndexSlow(start)
	}
	if end < len(s.b) && s.b[end] == '"' {
		s.i = end + 1
		return s.b[start:end], false, nil
	}
	s.i = end
	return s.strSlow(start)
}

// strSlow is str from a string's first escape or control character (or the end of the
// text), at s.i.
func (s *Scanner) strSlow(start int) (raw []byte, escaped bool, err error) {
	for {
		if s.i >= len(s.b) {
			return nil, false, s.syntaxError("unterminated string")
		}
		switch s.b[s.i] {
		case '"':
			raw = s.b[start:s.i]
			s.i++
			return raw, escaped, nil
		case '\\':
			escaped = true
			if s.i+1 >= len(s.b) {
				return nil, false, s.syntaxError("unterminated string")
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return nil, false, s.syntaxError("short \\u escape")
				}
				for _, h := range s.b[s.i+2 : s.i+6] {
					if unhex(h) < 0 {
						return nil, false, s.syntaxError("bad \\u escape")
					}
				}
				s.i += 6
			default:
				return nil, false, s.syntaxError("bad escape")
			}
		default:
			return nil, false, s.syntaxError("control character in string")
		}
		s.i = s.specialIndex(s.i)
	}
}

// specialIndex returns the index of the first quote, backslash or control character of s.b
// at or after i, or len(s.b).
func (s *Scanner) specialIndex(i int) int {
	if off := uint(i - s.wlo); off < uint(s.whi-s.wlo) {
		if w := s.masks[off>>6&3] >> (off & 63); w != 0 {
			return i + bits.TrailingZeros64(w)
		}
	}
	return s.specialIndexSlow(i)
}

// specialIndexSlow is specialIndex past the end of the window's block holding i, or outside
// the window; without AVX2, it searches eight bytes at a time.
func (s *Scanner) specialIndexSlow(i int) int {
	if !useMasks {
		return specialIndex(s.b, i)
	}
	for {
		if i >= len(s.b) {
			return len(s.b)
		}
		off := uint(i - s.wlo)
		if off >= uint(s.whi-s.wlo) {
			s.fillMasks(i &^ 63)
			off = uint(i - s.wlo)
		}
		if w := s.masks[off>>6&3] >> (off & 63); w != 0 {
			return min(i+bits.TrailingZeros64(w), len(s.b))
		}
		i = (i | 63) + 1
	}
}

// fillMasks moves the window to the blocks from lo, a multiple of 64 below len(s.b).
func (s *Scanner) fillMasks(lo int) {
	n := min(len(s.b)-lo, maskWindow)
	full := n &^ 63
	if full > 0 {
		specialMasks(&s.b[lo], full, &s.masks[0])
	}
	if full < n {
		var tail [64]byte
		copy(tail[:], s.b[lo+full:lo+n])
		specialMasks(&tail[0], len(tail), &s.masks[full>>6])
		s.masks[full>>6] |= ^uint64(0) << (n - full)
	}
	s.wlo, s.whi = lo, lo+(n+63)&^63
}

// specialIndex returns the index of the first quote, backslash or control character of b at
// or after i, or len(b), eight bytes at a time (the lowest flag of stringSpecials is exact),
// and sixteen a round once past the first eight: most strings are short keys and values,
// some long (base64 bodies, UUIDs).
func specialIndex(b []byte, i int) int {
	if i+8 <= len(b) {
		if m := stringSpecials(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
		i += 8
		for i+16 <= len(b) {
			lo := stringSpecials(binary.LittleEndian.Uint64(b[i:]))
			hi := stringSpecials(binary.LittleEndian.Uint64(b[i+8:]))
			if lo|hi != 0 {
				if lo != 0 {
					return i + bits.TrailingZeros64(lo)>>3
				}
				return i + 8 + bits.TrailingZeros64(hi)>>3
			}
			i += 16
		}
		if i+8 <= len(b) {
			if m := stringSpecials(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				return i + bits.TrailingZeros64(m)>>3
			}
			i += 8
		}
	}
	for i < len(b) && !isStringSpecial(b[i]) {
		i++
	}
	return i
}

const (
	swarOnes = 0x0101010101010101
	swarHigh = 0x8080808080808080
)

// stringSpecials flags the bytes of x (little-endian) that are '"', '\\' or below 0x20: the
// lowest flag is exact (higher ones may be false alarms, which the byte loop sorts out).
func stringSpecials(x uint64) uint64 {
	lt20 := (x - swarOnes*0x20) &^ x
	quote := x ^ (swarOnes * '"')
	quote = (quote - swarOnes) &^ quote
	bslash := x ^ (swarOnes * '\\')
	bslash = (bslash - swarOnes) &^ bslash
	return (lt20 | quote | bslash) & swarHigh
}

// load64 is the eight bytes of s from i, little-endian.
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func isStringSpecial(c byte) bool { return c == '"' || c == '\\' || c < 0x20 }

// Str consumes a string and returns it decoded.
func (s *Scanner) Str() (string, error) {
	raw, escaped, err := s.RawString()
	if err != nil {
		return "", err
	}
	if !escaped {
		return string(raw), nil
	}
	return string(Unescape(nil, raw)), nil
}

func unhex(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

func hex4(b []byte) rune {
	return unhex(b[0])<<12 | unhex(b[1])<<8 | unhex(b[2])<<4 | unhex(b[3])
}

// Unescape appends the decoded form of raw, the validated inside of a JSON string.
// Lone surrogates become U+FFFD, as encoding/json does.
func Unescape(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(raw[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if r2 := utf16.DecodeRune(r, hex4(raw[i+2:])); r2 != utf8.RuneError {
						dst = utf8.AppendRune(dst, r2)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, raw[i+1])
		}
		i += 2
	}
	return dst
}

// Value consumes any JSON value and returns its text, a slice of the scanned text.
func (s *Scanner) Value() (raw []byte, err error) {
	start, end, err := s.value()
	return s.b[start:end], err
}

// value consumes any JSON value and returns where it starts and ends in s.b.
func (s *Scanner) value() (start, end int, err error) {
	s.ws()
	start = s.i
	err = s.skip(0)
	return start, s.i, err
}

func (s *Scanner) skip(depth int) error {
	if depth > maxJSONDepth {
		return s.syntaxError("nested too deeply")
	}
	switch c := s.Peek(); {
	case c == '"':
		_, _, err := s.str()
		return err
	case c == '{':
		s.i++
		if s.Peek() == '}' {
			s.i++
			return nil
		}
		for {
			if _, _, err := s.RawString(); err != nil {
				return err
			}
			if s.Peek() != ':' {
				return s.syntaxError("expected ':'")
			}
			s.sep()
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			switch s.Peek() {
			case ',':
				s.sep()
			case '}':
				s.i++
				return nil
			default:
				return s.syntaxError("expected ',' or '}'")
			}
		}
	case c == '[':
		s.i++
		if s.Peek() == ']' {
			s.i++
			return nil
		}
		for {
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			switch s.Peek() {
			case ',':
				s.sep()
			case ']':
				s.i++
				return nil
			default:
				return s.syntaxError("expected ',' or ']'")
			}
		}
	case c == 't':
		return s.Literal("true")
	case c == 'f':
		return s.Literal("false")
	case c == 'n':
		return s.Literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	default:
		return s.syntaxError("expected a value")
	}
}

// Valid reports whether b is one JSON value, as encoding/json's Valid does, but faster: a
// text the scanner rejects is checked again by encoding/json, so the two always agree.
func Valid(b []byte) bool {
	s := NewScanner(b)
	if _, _, err := s.value(); err == nil && s.End() == nil {
		return true
	}
	return json.Valid(b)
}

// Literal consumes the literal lit (true, false or null).
func (s *Scanner) Literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return s.syntaxError("bad literal")
	}
	s.i += len(lit)
	return nil
}

func (s *Scanner) digits() int {
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

func (s *Scanner) number() error {
	if s.b[s.i] == '-' {
		s.i++
	}
	if s.i < len(s.b) && s.b[s.i] == '0' {
		s.i++
	} else if s.digits() == 0 {
		return s.syntaxError("bad number")
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return s.syntaxError("bad number")
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return s.syntaxError("bad number")
		}
	}
	return nil
}

// ObjectText is Object that also returns the object's text, a slice of the scanned text.
func (s *Scanner) ObjectText(member func(key []byte, escaped bool) error) (raw []byte, err error) {
	s.ws()
	start := s.i
	err = s.Object(member)
	return s.b[start:s.i], err
}

// Object consumes an object, calling member for each key with the scanner positioned at the
// member's value; member must consume that value.
func (s *Scanner) Object(member func(key []byte, escaped bool) error) error {
	if s.Peek() != '{' {
		return s.syntaxError("expected an object")
	}
	s.i++
	if s.Peek() == '}' {
		s.i++
		return nil
	}
	for {
		key, escaped, err := s.RawString()
		if err != nil {
			return err
		}
		if s.Peek() != ':' {
			return s.syntaxError("expected ':'")
		}
		s.sep()
		if err := member(key, escaped); err != nil {
			return err
		}
		switch s.Peek() {
		case ',':
			s.sep()
		case '}':
			s.i++
			return nil
		default:
			return s.syntaxError("expected ',' or '}'")
		}
	}
}

// End checks that nothing but spaces follows the value read.
func (s *Scanner) End() error {
	if s.ws(); s.i < len(s.b) { // not Peek: a NUL byte is data too
		return s.syntaxError("data after the value")
	}
	return nil
}

// KeyIs compares a raw key with name, decoding it only when it has escapes.
func KeyIs(key []byte, escaped bool, name string) bool {
	if !escaped {
		return string(key) == name
	}
	return string(Unescape(nil, key)) == name
}

// ParseInt reads a JSON integer that fits an int; ok is false for anything else.
func ParseInt(b []byte) (n int, ok bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// MetaText turns a raw JSON value into a metadata string: a string's decoded text, null as
// absent (ok false), anything else as compact JSON text.
func MetaText(raw []byte) (text string, ok bool) {
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return "", false
	case raw[0] == '"':
		inner := raw[1 : len(raw)-1]
		for _, c := range inner {
			if c == '\\' {
				return string(Unescape(nil, inner)), true
			}
		}
		return string(inner), true
	default:
		return string(compact(make([]byte, 0, len(raw)), raw)), true
	}
}

// compact appends valid JSON raw without the spaces between tokens.
func compact(dst, raw []byte) []byte {
	inString := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if inString {
			dst = append(dst, c)
			switch c {
			case '\\':
				i++
				dst = append(dst, raw[i])
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r':
		case '"':
			inString = true
			dst = append(dst, c)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

const lowerHex = "0123456789abcdef"

// AppendString appends s as a JSON string escaped the way Python's json.dumps does with
// ensure_ascii: every non-ASCII character as \uXXXX (surrogate pairs above U+FFFF).
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Jump eight bytes at a time over bytes written as they are.
		if i+8 <= len(s) {
			x := load64(s, i)
			if m := stringSpecials(x) | x&swarHigh; m == 0 {
				i += 8
				continue
			} else if n := bits.TrailingZeros64(m) >> 3; n > 0 {
				i += n
				continue
			}
		}
		c := s[i]
		if c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' {
			i++
			continue
		}
		dst = append(dst, s[start:i]...)
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = appendU4(dst, rune(c))
			}
			i++
		} else {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r > 0xFFFF {
				r1, r2 := utf16.EncodeRune(r)
				dst = appendU4(appendU4(dst, r1), r2)
			} else {
				dst = appendU4(dst, r)
			}
			i += size
		}
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendNullableString appends s as AppendString does, or null when s is empty.
func AppendNullableString(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, "null"...)
	}
	return AppendString(dst, s)
}

func appendU4(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u', lowerHex[r>>12&0xF], lowerHex[r>>8&0xF], lowerHex[r>>4&0xF], lowerHex[r&0xF])
}

// AppendJSON appends the valid JSON value src re-written in Python's json.dumps layout:
// ", " and ": " separators, no other spaces, strings with ensure_ascii escapes.
func AppendJSON(dst, src []byte) ([]byte, error) {
	s := Scanner{b: src}
	dst, err := s.reformat(dst, 0)
	if err != nil {
		return nil, err
	}
	return dst, s.End()
}

func (s *Scanner) reformat(dst []byte, depth int) ([]byte, error) {
	if depth > maxJSONDepth {
		return nil, s.syntaxError("nested too deeply")
	}
	switch c := s.Peek(); c {
	case '"':
		raw, escaped, err := s.RawString()
		if err != nil {
			return nil, err
		}
		if escaped {
			raw = Unescape(nil, raw)
		}
		return AppendString(dst, string(raw)), nil
	case '{', '[':
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		s.i++
		dst = append(dst, c)
		if s.Peek() == closing {
			s.i++
			return append(dst, closing), nil
		}
		for first := true; ; first = false {
			if !first {
				dst = append(dst, ',', ' ')
			}
			if c == '{' {
				raw, escaped, err := s.RawString()
				if err != nil {
					return nil, err
				}
				if escaped {
					raw = Unescape(nil, raw)
				}
				dst = append(AppendString(dst, string(raw)), ':', ' ')
				if s.Peek() != ':' {
					return nil, s.syntaxError("expected ':'")
				}
				s.i++
			}
			var err error
			if dst, err = s.reformat(dst, depth+1); err != nil {
				return nil, err
			}
			switch s.Peek() {
			case ',':
				s.i++
			case closing:
				s.i++
				return append(dst, closing), nil
			default:
				return nil, s.syntaxError("expected ',' or a closing bracket")
			}
		}
	default:
		start, end, err := s.value()
		if err != nil {
			return nil, err
		}
		return append(dst, s.b[start:end]...), nil
	}
}
