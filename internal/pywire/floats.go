package pywire

import "bytes"

// Python's json module writes the floats JSON has no number for as the bare words NaN,
// Infinity and -Infinity (json.dumps's allow_nan, on by default, and so Kombu's serializer):
// a Celery client sends float('nan') that way. encoding/json rejects them. HideFloats turns
// each into a placeholder string, which encoding/json reads, and ShowFloats turns the
// placeholders back, so that such a text can be taken apart with encoding/json and its parts
// kept as Python wrote them. A placeholder is a string starting with a NUL character: a text
// already holding a string that starts so is left alone.

// floatWords are the words, longest first where one starts another, and their placeholders.
var floatWords = [...]struct{ word, placeholder string }{
	{"NaN", `"\u0000NaN"`},
	{"Infinity", `"\u0000Infinity"`},
	{"-Infinity", `"\u0000-Infinity"`},
}

// placeholderStart begins every placeholder.
var placeholderStart = []byte(`"\u0000`)

// HideFloats returns text with Python's NaN, Infinity and -Infinity outside strings replaced
// by placeholder strings, and whether it replaced any. It returns text itself when there is
// none, or when text holds a string that starts like a placeholder.
func HideFloats(text []byte) (out []byte, replaced bool) {
	if bytes.IndexByte(text, 'N') < 0 && bytes.IndexByte(text, 'I') < 0 {
		return text, false
	}
	if bytes.Contains(text, placeholderStart) {
		return text, false
	}
	last := 0
	inString, escaped := false, false
	for i := 0; i < len(text); i++ {
		c := text[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		if c == '"' {
			inString = true
			continue
		}
		if c != 'N' && c != 'I' && c != '-' {
			continue
		}
		for _, f := range floatWords {
			if bytes.HasPrefix(text[i:], []byte(f.word)) {
				out = append(append(out, text[last:i]...), f.placeholder...)
				i += len(f.word) - 1
				last = i + 1
				break
			}
		}
	}
	if out == nil {
		return text, false
	}
	return append(out, text[last:]...), true
}

// ShowFloats turns the placeholders of HideFloats back into Python's words.
func ShowFloats(text []byte) []byte {
	if !bytes.Contains(text, placeholderStart) {
		return text
	}
	for _, f := range floatWords {
		text = bytes.ReplaceAll(text, []byte(f.placeholder), []byte(f.word))
	}
	return text
}

// FloatWord returns the float a placeholder string (decoded) stands for.
func FloatWord(s string) (word string, ok bool) {
	if len(s) < 2 || s[0] != 0 {
		return "", false
	}
	for _, f := range floatWords {
		if s[1:] == f.word {
			return f.word, true
		}
	}
	return "", false
}

// ValidPython reports whether text is one JSON value as Python's json.loads reads it: JSON,
// or JSON with NaN, Infinity and -Infinity, as Kombu's serializer writes float('nan') and
// the infinities.
func ValidPython(text []byte) bool {
	if Valid(text) {
		return true
	}
	hidden, replaced := HideFloats(text)
	return replaced && Valid(hidden)
}
