package pywire

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ReprMaxSize is Celery's default argsrepr_maxsize / kwargsrepr_maxsize.
const ReprMaxSize = 1024

// Repr renders a JSON value the way Python's repr shows the decoded value (a list as a
// tuple when asTuple), e.g. for the arguments of an exception. Long results are cut to 1024
// characters. Celery's argsrepr and kwargsrepr headers use saferepr instead: see ArgsRepr.
func Repr(js []byte, asTuple bool) string {
	var b strings.Builder
	s := Scanner{b: js}
	if err := s.repr(&b, asTuple, 0); err != nil {
		return string(js)
	}
	out := b.String()
	if len(out) > ReprMaxSize {
		cut := ReprMaxSize - 3
		for cut > 0 && !utf8.RuneStart(out[cut]) {
			cut--
		}
		out = out[:cut] + "..."
	}
	return out
}

func (s *Scanner) repr(b *strings.Builder, asTuple bool, depth int) error {
	if depth > maxJSONDepth {
		return s.syntaxError("nested too deeply")
	}
	switch c := s.Peek(); c {
	case '"':
		v, err := s.Str()
		if err != nil {
			return err
		}
		writePyStrRepr(b, v)
		return nil
	case '[', '{':
		open, closing := byte(c), byte(']')
		if c == '{' {
			closing = '}'
		} else if asTuple {
			open, closing = '(', ')'
		}
		s.i++
		b.WriteByte(open)
		n := 0
		if s.Peek() == closing || (asTuple && s.Peek() == ']') {
			s.i++
			b.WriteByte(closing)
			return nil
		}
		for {
			if n > 0 {
				b.WriteString(", ")
			}
			n++
			if c == '{' {
				k, err := s.Str()
				if err != nil {
					return err
				}
				writePyStrRepr(b, k)
				b.WriteString(": ")
				if s.Peek() != ':' {
					return s.syntaxError("expected ':'")
				}
				s.i++
			}
			if err := s.repr(b, false, depth+1); err != nil {
				return err
			}
			switch s.Peek() {
			case ',':
				s.i++
			case ']', '}':
				s.i++
				if asTuple && n == 1 {
					b.WriteByte(',')
				}
				b.WriteByte(closing)
				return nil
			default:
				return s.syntaxError("expected ',' or a closing bracket")
			}
		}
	default:
		start, end, err := s.value()
		if err != nil {
			return err
		}
		switch lit := string(s.b[start:end]); lit {
		case "true":
			b.WriteString("True")
		case "false":
			b.WriteString("False")
		case "null":
			b.WriteString("None")
		default:
			b.WriteString(lit)
		}
		return nil
	}
}

// writePyStrRepr writes Python's repr of a str: single quotes unless the text has single
// quotes and no double ones, non-printable characters escaped.
func writePyStrRepr(b *strings.Builder, v string) {
	quote := byte('\'')
	if strings.IndexByte(v, '\'') >= 0 && strings.IndexByte(v, '"') < 0 {
		quote = '"'
	}
	b.WriteByte(quote)
	for _, r := range v {
		switch {
		case r == rune(quote) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(b, `\x%02x`, r)
		case r < 0x80 || unicode.IsPrint(r):
			b.WriteRune(r)
		case r <= 0xff:
			fmt.Fprintf(b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			fmt.Fprintf(b, `\U%08x`, r)
		}
	}
	b.WriteByte(quote)
}
