package pywire

// flatRepr is SafeRepr for the arguments most tasks get: a JSON array or object whose
// items are integers, plain ASCII strings, booleans and nulls, with a repr shorter than
// maxLen, so that nothing is cut. It writes the repr in one pass over the text, where
// SafeRepr builds a tree of the decoded value first. ok is false for anything else (nested
// containers, floats, escapes, non-ASCII text, quotes, Kombu's typed values, invalid JSON,
// a repr to cut), which SafeRepr then renders.
func flatRepr(js []byte, asTuple bool, maxLen int) (repr string, ok bool) {
	i := skipSpace(js, 0)
	if i >= len(js) || (js[i] != '[' && js[i] != '{') {
		return "", false
	}
	dict := js[i] == '{'
	closer := byte(']')
	out := make([]byte, 0, len(js)+8)
	switch {
	case dict:
		closer = '}'
		out = append(out, '{')
	case asTuple:
		out = append(out, '(')
	default:
		out = append(out, '[')
	}
	items := 0
	i = skipSpace(js, i+1)
	if i < len(js) && js[i] == closer {
		i++
	} else {
		for {
			if items > 0 {
				out = append(out, ", "...)
			}
			if dict {
				key, next, ok := flatString(js, i)
				// Kombu's typed values ({"__type__": ..., "__value__": ...}) have reprs of
				// their own.
				if !ok || key == "__type__" || key == "__value__" {
					return "", false
				}
				out = appendQuoted(out, key)
				i = skipSpace(js, next)
				if i >= len(js) || js[i] != ':' {
					return "", false
				}
				out = append(out, ": "...)
				i = skipSpace(js, i+1)
			}
			var ok bool
			if out, i, ok = appendFlatScalar(out, js, i); !ok {
				return "", false
			}
			items++
			i = skipSpace(js, i)
			if i >= len(js) {
				return "", false
			}
			if js[i] == closer {
				i++
				break
			}
			if js[i] != ',' {
				return "", false
			}
			i = skipSpace(js, i+1)
		}
	}
	if skipSpace(js, i) != len(js) {
		return "", false // more than one value
	}
	switch {
	case dict:
		out = append(out, '}')
	case !asTuple:
		out = append(out, ']')
	case items == 1:
		out = append(out, ",)"...)
	default:
		out = append(out, ')')
	}
	// ASCII only: the length counts characters. A repr as long as maxLen is cut by saferepr.
	if maxLen > 0 && len(out) >= maxLen {
		return "", false
	}
	return string(out), true
}

// appendFlatScalar appends the Python repr of the scalar at js[i:] and returns the index
// after it; ok is false for a container, a float, an escaped or non-ASCII string, a string
// holding a quote, or invalid JSON.
func appendFlatScalar(out, js []byte, i int) ([]byte, int, bool) {
	if i >= len(js) {
		return out, i, false
	}
	switch c := js[i]; {
	case c == '"':
		s, next, ok := flatString(js, i)
		if !ok {
			return out, i, false
		}
		return appendQuoted(out, s), next, true
	case c == '-' || (c >= '0' && c <= '9'):
		j := i
		if c == '-' {
			j++
		}
		start := j
		for j < len(js) && js[j] >= '0' && js[j] <= '9' {
			j++
		}
		digits := js[start:j]
		if len(digits) == 0 || (digits[0] == '0' && len(digits) > 1) {
			return out, i, false
		}
		if j < len(js) && (js[j] == '.' || js[j] == 'e' || js[j] == 'E') {
			return out, i, false // a float: Python's repr of it is pyFloat's business
		}
		if c == '-' && !(len(digits) == 1 && digits[0] == '0') {
			out = append(out, '-') // -0 is the int 0
		}
		return append(out, digits...), j, true
	}
	for _, lit := range [...]struct{ json, py string }{{"true", "True"}, {"false", "False"}, {"null", "None"}} {
		if len(js)-i >= len(lit.json) && string(js[i:i+len(lit.json)]) == lit.json {
			return append(out, lit.py...), i + len(lit.json), true
		}
	}
	return out, i, false
}

// flatString reads the JSON string at js[i:] when it is printable ASCII without escapes or
// single quotes, whose repr is the text in single quotes; next is the index after it.
func flatString(js []byte, i int) (s string, next int, ok bool) {
	if i >= len(js) || js[i] != '"' {
		return "", i, false
	}
	for j := i + 1; j < len(js); j++ {
		switch c := js[j]; {
		case c == '"':
			return string(js[i+1 : j]), j + 1, true
		case c < 0x20 || c >= 0x7f || c == '\\' || c == '\'':
			return "", i, false
		}
	}
	return "", i, false
}

func appendQuoted(out []byte, s string) []byte {
	out = append(out, '\'')
	out = append(out, s...)
	return append(out, '\'')
}
