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
	start = skipSpace(s.b, s.i)
	end, err = s.skipAt(start, 0)
	s.i = end
	return start, end, err
}

// skip consumes any JSON value. skipAt keeps the position in a local variable and skip writes
// it back once: s.i lives in memory, and storing and reloading it around every token costs
// more than the work on the token.
func (s *Scanner) skip(depth int) error {
	i, err := s.skipAt(s.i, depth)
	s.i = i
	return err
}

// skipAt is skip from i: it returns the position after the value, or where the error is.
func (s *Scanner) skipAt(i, depth int) (int, error) {
	if depth > maxJSONDepth {
		return i, errorAt(i, "nested too deeply")
	}
	b := s.b
	if i = skipSpace(b, i); i >= len(b) {
		return i, errorAt(i, "expected a value")
	}
	var err error
	switch c := b[i]; {
	case c == '"':
		i, _, err = s.strEnd(i)
		return i, err
	case c == '{':
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == '}' {
			return i + 1, nil
		}
		for {
			if i >= len(b) || b[i] != '"' {
				return i, errorAt(i, "expected a string")
			}
			if i, _, err = s.strEnd(i); err != nil {
				return i, err
			}
			if i = skipSpace(b, i); i >= len(b) || b[i] != ':' {
				return i, errorAt(i, "expected ':'")
			}
			if i, err = s.skipAt(afterSep(b, i), depth+1); err != nil {
				return i, err
			}
			if i = skipSpace(b, i); i < len(b) {
				switch b[i] {
				case ',':
					i = skipSpace(b, afterSep(b, i))
					continue
				case '}':
					return i + 1, nil
				}
			}
			return i, errorAt(i, "expected ',' or '}'")
		}
	case c == '[':
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, nil
		}
		for {
			if i, err = s.skipAt(i, depth+1); err != nil {
				return i, err
			}
			if i = skipSpace(b, i); i < len(b) {
				switch b[i] {
				case ',':
					i = afterSep(b, i)
					continue
				case ']':
					return i + 1, nil
				}
			}
			return i, errorAt(i, "expected ',' or ']'")
		}
	case c == 't':
		return literalAt(b, i, "true")
	case c == 'f':
		return literalAt(b, i, "false")
	case c == 'n':
		return literalAt(b, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return numberAt(b, i)
	}
	return i, errorAt(i, "expected a value")
}

// skipSpace returns the position of the first byte at or after i that is not JSON white
// space.
func skipSpace(b []byte, i int) int {
	// Python's layout puts at most one space between tokens: the common cases return at once.
	if i < len(b) && b[i] > ' ' {
		return i
	}
	return skipSpaceSlow(b, i)
}

func skipSpaceSlow(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// afterSep returns the position after the separator (',' or ':') at i and the single space
// Python's layout puts after it, so that the next token is found at once.
func afterSep(b []byte, i int) int {
	i++
	if i < len(b) && b[i] == ' ' {
		i++
	}
	return i
}

// literalAt is Literal at i.
func literalAt(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, errorAt(i, "bad literal")
	}
	return i + len(lit), nil
}

func errorAt(i int, what string) error {
	return &jsonSyntaxError{offset: i, what: what}
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

// digitsAt returns the position after the decimal digits from i.
func digitsAt(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// numberAt consumes the number at i.
func numberAt(b []byte, i int) (int, error) {
	if b[i] == '-' {
		i++
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if j := digitsAt(b, i); j == i {
		return i, errorAt(i, "bad number")
	} else {
		i = j
	}
	if i < len(b) && b[i] == '.' {
		i++
		j := digitsAt(b, i)
		if j == i {
			return i, errorAt(i, "bad number")
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digitsAt(b, i)
		if j == i {
			return i, errorAt(i, "bad number")
		}
		i = j
	}
	return i, nil
}

// ObjectText is Object that also returns the object's text, a slice of the scanned text.
func (s *Scanner) ObjectText(member func(key []byte, escaped bool) error) (raw []byte, err error) {
	s.ws()
	start := s.i
	err = s.Object(member)
	return s.b[start:s.i], err
}

// Object consumes an object, calling member for each key with the scanner positioned at the
// member's value; member must consume that value. Between members, the position is kept in a
// local variable (see skip).
func (s *Scanner) Object(member func(key []byte, escaped bool) error) error {
	b := s.b
	i := skipSpace(b, s.i)
	if i >= len(b) || b[i] != '{' {
		s.i = i
		return errorAt(i, "expected an object")
	}
	if i = skipSpace(b, i+1); i < len(b) && b[i] == '}' {
		s.i = i + 1
		return nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			s.i = i
			return errorAt(i, "expected a string")
		}
		end, escaped, err := s.strEnd(i)
		if err != nil {
			s.i = end
			return err
		}
		key := b[i+1 : end-1]
		if i = skipSpace(b, end); i >= len(b) || b[i] != ':' {
			s.i = i
			return errorAt(i, "expected ':'")
		}
		s.i = afterSep(b, i)
		if err := member(key, escaped); err != nil {
			return err
		}
		var more bool
		if i, more = s.next(); !more {
			return s.closed(i, '}')
		}
	}
}

// next finds what follows a container's member or element: after a comma, the position of
// the next one and true; else the position of the closing bracket, or of what stands there
// instead, and false.
func (s *Scanner) next() (int, bool) {
	b := s.b
	i := skipSpace(b, s.i)
	if i < len(b) && b[i] == ',' {
		return skipSpace(b, afterSep(b, i)), true
	}
	return i, false
}

// closed ends a container at i, where next found no comma: at its closing bracket, or with
// an error.
func (s *Scanner) closed(i int, closer byte) error {
	if i < len(s.b) && s.b[i] == closer {
		s.i = i + 1
		return nil
	}
	s.i = i
	return errorAt(i, "expected ',' or '"+string(closer)+"'")
}

// Array consumes an array, calling item with the scanner positioned at each element; item
// must consume it.
func (s *Scanner) Array(item func() error) error {
	b := s.b
	i := skipSpace(b, s.i)
	if i >= len(b) || b[i] != '[' {
		s.i = i
		return errorAt(i, "expected an array")
	}
	if i = skipSpace(b, i+1); i < len(b) && b[i] == ']' {
		s.i = i + 1
		return nil
	}
	for {
		s.i = i
		if err := item(); err != nil {
			return err
		}
		var more bool
		if i, more = s.next(); !more {
			return s.closed(i, ']')
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
