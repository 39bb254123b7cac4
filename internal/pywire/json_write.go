package pywire

import (
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// The JSON writer: the same bytes as Python's json.dumps with its defaults (separators ", "
// and ": ", ensure_ascii), which is what Kombu and Celery send.

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
		} else if len(s) >= 8 {
			// The last bytes at once, from the eight that end s (some of them read already):
			// when none needs escaping, the rest is written as it is.
			if x := load64(s, len(s)-8); stringSpecials(x)|x&swarHigh == 0 {
				break
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
