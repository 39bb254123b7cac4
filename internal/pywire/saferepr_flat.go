package pywire

// flatRepr is SafeRepr for the arguments most tasks get: a JSON array or object whose
// items are integers, plain ASCII strings, booleans and nulls, with a repr shorter than
// maxLen, so that nothing is cut. It writes the repr in one pass over the text, where
// SafeRepr builds a tree of the decoded value first. ok is false for anything else (nested
// containers, floats, escapes, non-ASCII text, quotes, Kombu's typed values, invalid JSON,
// a repr to cut), which SafeRepr then renders.
func flatRepr(js []byte, asTuple bool, maxLen int) (repr string, ok bool) {
	out := make([]byte, 1, len(js)+8) // out[0]: the opening bracket, once known
	items := 0
	kind, ok := FlatValue(js, func(key, raw []byte) bool {
		if items > 0 {
			out = append(out, ", "...)
		}
		items++
		if key != nil {
			// Kombu's typed values ({"__type__": ..., "__value__": ...}) have reprs of
			// their own.
			if !reprPlain(key) || string(key) == "__type__" || string(key) == "__value__" {
				return false
			}
			out = append(appendQuoted(out, key), ": "...)
		}
		var ok bool
		out, ok = appendFlatScalar(out, raw)
		return ok
	})
	if !ok {
		return "", false
	}
	switch {
	case kind == '{':
		out[0] = '{'
		out = append(out, '}')
	case kind != '[':
		return "", false // a scalar: not an argument list
	case !asTuple:
		out[0] = '['
		out = append(out, ']')
	case items == 1:
		out[0] = '('
		out = append(out, ",)"...)
	default:
		out[0] = '('
		out = append(out, ')')
	}
	// ASCII only: the length counts characters. A repr as long as maxLen is cut by saferepr.
	if maxLen > 0 && len(out) >= maxLen {
		return "", false
	}
	return string(out), true
}

// appendFlatScalar appends the Python repr of raw, the text of a JSON scalar; ok is false
// for a float and for a string that is not reprPlain.
func appendFlatScalar(out, raw []byte) ([]byte, bool) {
	switch c := raw[0]; {
	case c == '"':
		text := raw[1 : len(raw)-1]
		if !reprPlain(text) {
			return out, false
		}
		return appendQuoted(out, text), true
	case c == '-' || (c >= '0' && c <= '9'):
		for _, d := range raw[1:] {
			if d < '0' || d > '9' {
				return out, false // a float: Python's repr of it is pyFloat's business
			}
		}
		if string(raw) == "-0" {
			raw = raw[1:] // -0 is the int 0
		}
		return append(out, raw...), true
	}
	switch string(raw) {
	case "true":
		return append(out, "True"...), true
	case "false":
		return append(out, "False"...), true
	}
	return append(out, "None"...), true
}

// reprPlain reports whether the raw text of a JSON string is printable ASCII without escapes
// or single quotes, whose repr is the text in single quotes.
func reprPlain(text []byte) bool {
	for _, c := range text {
		if c < 0x20 || c >= 0x7f || c == '\\' || c == '\'' {
			return false
		}
	}
	return true
}

func appendQuoted(out, text []byte) []byte {
	out = append(out, '\'')
	out = append(out, text...)
	return append(out, '\'')
}
