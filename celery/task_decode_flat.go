package celery

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/watermill-kombu/watermill-kombu/internal/pywire"
)

// decodeFlat is decodeJSONNumbers of what most arguments, stamps and extra headers are,
// without a decoder: a string without escapes, a number, true, false or null, or a list or
// object of those, into a nil interface, slice or map. It reports whether it did; anything
// else (nesting, escapes, text that is not UTF-8, invalid JSON, a value already there) is
// left to encoding/json.
func decodeFlat(b []byte, v any) bool {
	p := flatParser{b: b}
	switch d := v.(type) {
	case *any:
		if *d != nil {
			return false
		}
		x, ok := p.value(true)
		if ok && p.end() {
			*d = x
			return true
		}
	case *[]any:
		if *d != nil || p.peek() != '[' {
			return false
		}
		x, ok := p.value(true)
		if ok && p.end() {
			*d = x.([]any)
			return true
		}
	case *map[string]any:
		if *d != nil || p.peek() != '{' {
			return false
		}
		x, ok := p.value(true)
		if ok && p.end() {
			*d = x.(map[string]any)
			return true
		}
	}
	return false
}

// flatParser reads a flat JSON value, as encoding/json with UseNumber decodes it.
type flatParser struct {
	b []byte
	i int
}

func (p *flatParser) ws() { p.i = pywire.SkipSpace(p.b, p.i) }

func (p *flatParser) peek() byte {
	if p.ws(); p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

// end reports whether nothing but white space is left.
func (p *flatParser) end() bool {
	p.ws()
	return p.i == len(p.b)
}

// value reads a scalar, or a list or object of scalars when container is set.
func (p *flatParser) value(container bool) (any, bool) {
	switch c := p.peek(); {
	case c == '"':
		return p.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == '[' && container:
		p.i++
		items := []any{}
		if p.peek() == ']' {
			p.i++
			return items, true
		}
		for {
			x, ok := p.value(false)
			if !ok {
				return nil, false
			}
			items = append(items, x)
			switch p.peek() {
			case ',':
				p.i++
			case ']':
				p.i++
				return items, true
			default:
				return nil, false
			}
		}
	case c == '{' && container:
		p.i++
		m := map[string]any{}
		if p.peek() == '}' {
			p.i++
			return m, true
		}
		for {
			if p.peek() != '"' {
				return nil, false
			}
			k, ok := p.str()
			if !ok || p.peek() != ':' {
				return nil, false
			}
			p.i++
			x, ok := p.value(false)
			if !ok {
				return nil, false
			}
			m[k.(string)] = x
			switch p.peek() {
			case ',':
				p.i++
			case '}':
				p.i++
				return m, true
			default:
				return nil, false
			}
		}
	}
	for _, lit := range [...]struct {
		text string
		v    any
	}{{"true", true}, {"false", false}, {"null", nil}} {
		if len(p.b)-p.i >= len(lit.text) && string(p.b[p.i:p.i+len(lit.text)]) == lit.text {
			p.i += len(lit.text)
			return lit.v, true
		}
	}
	return nil, false
}

// str reads a string without escapes or control characters, in UTF-8.
func (p *flatParser) str() (any, bool) {
	start := p.i + 1
	for j := start; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			if !utf8.Valid(p.b[start:j]) {
				return nil, false
			}
			p.i = j + 1
			return string(p.b[start:j]), true
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// number reads a JSON number as a json.Number holding its text.
func (p *flatParser) number() (any, bool) {
	b, start := p.b, p.i
	i := start
	if b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if digits() == 0 {
		return nil, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return nil, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	p.i = i
	return json.Number(b[start:i]), true
}
