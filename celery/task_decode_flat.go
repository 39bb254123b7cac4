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
	var one any
	items := []any{}
	var m map[string]any
	kind, ok := pywire.FlatValue(b, func(key, raw []byte) bool {
		x, ok := flatScalar(raw)
		switch {
		case !ok:
			return false
		case key != nil:
			if !utf8.Valid(key) {
				return false
			}
			if m == nil {
				m = map[string]any{}
			}
			m[string(key)] = x
		default:
			items = append(items, x)
			one = x
		}
		return true
	})
	if !ok {
		return false
	}
	var x any
	switch kind {
	case '[':
		x = items
	case '{':
		if m == nil {
			m = map[string]any{}
		}
		x = m
	default:
		x = one
	}
	switch d := v.(type) {
	case *any:
		if *d == nil {
			*d = x
			return true
		}
	case *[]any:
		if *d == nil && kind == '[' {
			*d = items
			return true
		}
	case *map[string]any:
		if *d == nil && kind == '{' {
			*d = m
			return true
		}
	}
	return false
}

// flatScalar is the value encoding/json, with UseNumber, decodes from raw, the text of a
// JSON scalar; ok is false for a string with escapes or that is not UTF-8.
func flatScalar(raw []byte) (any, bool) {
	switch c := raw[0]; {
	case c == '"':
		return pywire.PlainString(raw)
	case c == '-' || (c >= '0' && c <= '9'):
		return json.Number(raw), true
	}
	switch string(raw) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return nil, true
}
