package pywire

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// Reading JSON strings: finding where they end, and decoding their escapes.

// RawString consumes a string and returns its bytes between the quotes (still escaped) and
// whether it contains escapes.
func (s *Scanner) RawString() (raw []byte, escaped bool, err error) {
	i := skipSpace(s.b, s.i)
	if i >= len(s.b) || s.b[i] != '"' {
		s.i = i
		return nil, false, errorAt(i, "expected a string")
	}
	end, escaped, err := s.strEnd(i)
	s.i = end
	if err != nil {
		return nil, false, err
	}
	return s.b[i+1 : end-1], escaped, nil
}

// strEnd reads the string whose opening quote is at i and returns the position after its
// closing quote, or where the error is; s.i changes only on the slow path (see skip).
func (s *Scanner) strEnd(i int) (end int, escaped bool, err error) {
	start := i + 1
	// specialIndex, with fromMasks inlined here: a call per string costs as much as the search.
	e, ok := s.fromMasks(start)
	if !ok {
		e = s.specialIndexSlow(start)
	}
	if e < len(s.b) && s.b[e] == '"' {
		return e + 1, false, nil
	}
	s.i = e
	_, escaped, err = s.strSlow(start)
	return s.i, escaped, err
}

// strSlow is strEnd from a string's first escape or control character (or the end of the
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
	if end, ok := s.fromMasks(i); ok {
		return end
	}
	return s.specialIndexSlow(i)
}

// fromMasks returns the first special byte at or after i in i's block of the window or the
// block after it; ok is false when i is outside the window or neither block has one.
func (s *Scanner) fromMasks(i int) (end int, ok bool) {
	off := uint(i - s.wlo)
	if off >= uint(s.whi-s.wlo) {
		return 0, false
	}
	if w := s.masks[off>>6&3] >> (off & 63); w != 0 {
		return i + bits.TrailingZeros64(w), true
	}
	// The next block, when the window holds it: strings often cross a block's end.
	next := (off | 63) + 1
	if next >= uint(s.whi-s.wlo) {
		return 0, false
	}
	w := s.masks[next>>6&3]
	return s.wlo + int(next) + bits.TrailingZeros64(w), w != 0
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
		if uint(i-s.wlo) >= uint(s.whi-s.wlo) {
			s.fillMasks(i &^ 63)
		}
		if end, ok := s.fromMasks(i); ok {
			return min(end, len(s.b))
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
