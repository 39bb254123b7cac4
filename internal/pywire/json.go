package pywire

import (
	"encoding/json"
	"errors"
	"strconv"
)

// The small JSON reader behind the Kombu envelope codec and the Celery task encoder (its
// strings in json_string.go, the writer in json_write.go). The envelope has a fixed, shallow
// shape, and reading it with a hand-written scanner keeps decoding to a few allocations
// (encoding/json would allocate per header and scan every byte twice).

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
