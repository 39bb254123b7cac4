package pywire

import (
	"bytes"
	"errors"
	"unicode/utf8"
)

// errNotFlat ends a FlatValue walk over a value it does not take.
var errNotFlat = errors.New("not a flat value")

// FlatValue reads js, one JSON value that is a scalar or an array or object of scalars, and
// calls scalar with each scalar's text: with its key (without escapes) in an object, with a
// nil key otherwise. kind is the value's first byte: '[', '{', or the scalar's. ok is false
// for anything else (nesting, an escaped key, invalid JSON, data after the value), and when
// scalar returns false.
func FlatValue(js []byte, scalar func(key, raw []byte) bool) (kind byte, ok bool) {
	s := NewScanner(js)
	kind = s.Peek()
	take := func(key []byte) error {
		raw, err := s.Value()
		if err != nil {
			return err
		}
		if raw[0] == '[' || raw[0] == '{' || !scalar(key, raw) {
			return errNotFlat
		}
		return nil
	}
	var err error
	switch kind {
	case '[':
		err = s.Array(func() error { return take(nil) })
	case '{':
		err = s.Object(func(key []byte, escaped bool) error {
			if escaped {
				return errNotFlat
			}
			return take(key)
		})
	default:
		err = take(nil)
	}
	if err == nil {
		err = s.End()
	}
	return kind, err == nil
}

// PlainString is the text of raw, a JSON string, when it has no escapes and is UTF-8: the
// string it stands for.
func PlainString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	text := raw[1 : len(raw)-1]
	if bytes.IndexByte(text, '\\') >= 0 || !utf8.Valid(text) {
		return "", false
	}
	return string(text), true
}
