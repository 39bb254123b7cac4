package pywire

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ArgsReprMaxLevels is Celery's default task_repr_maxlevels: containers nested deeper are
// shown as [...], {...} or (...).
const ArgsReprMaxLevels = 3

// ArgsRepr renders task arguments given as JSON the way Celery's client writes the argsrepr
// and kwargsrepr headers: celery.utils.saferepr.saferepr(value, 1024, maxlevels=3) of the
// value Kombu's JSON decoder gives. A list is shown as the args tuple when asTuple. As
// saferepr: strings in single quotes with only ' escaped, numbers with Python's str, Kombu's
// typed values (datetime, date, time, decimal, uuid, bytes) with their Python repr, objects
// in the order given, and the text cut after about maxLen characters, closing brackets kept.
// Text that is not valid JSON is returned as it is.
func ArgsRepr(js []byte, asTuple bool) string {
	return SafeRepr(js, asTuple, ReprMaxSize, ArgsReprMaxLevels)
}

// SafeRepr is ArgsRepr with saferepr's maxlen and maxlevels (0: no limit).
func SafeRepr(js []byte, asTuple bool, maxLen, maxLevels int) string {
	if repr, ok := flatRepr(js, asTuple, maxLen); ok {
		return repr
	}
	return treeRepr(js, asTuple, maxLen, maxLevels)
}

// treeRepr is SafeRepr for any value: it decodes the value into a tree, then writes it.
func treeRepr(js []byte, asTuple bool, maxLen, maxLevels int) string {
	d := json.NewDecoder(bytes.NewReader(js))
	d.UseNumber()
	v, err := readNode(d, 0)
	if err != nil {
		return string(js)
	}
	if _, err := d.Token(); err == nil {
		return string(js) // more than one value
	}
	if asTuple && v.kind == nodeList {
		v.kind = nodeTuple
	}
	var toks []reprToken
	toks = flattenRepr(toks, v, 0, maxLevels)
	return streamRepr(toks, maxLen)
}

type nodeKind int

const (
	nodeText  nodeKind = iota // a value shown as text: numbers, True, None, typed values
	nodeStr                   // a Python str
	nodeBytes                 // a Python bytes
	nodeList
	nodeTuple
	nodeDict
)

type reprNode struct {
	kind  nodeKind
	text  string // nodeText, nodeStr, nodeBytes
	items []reprNode
	keys  []string // nodeDict
}

var errReprSyntax = errors.New("not a JSON value")

func readNode(d *json.Decoder, depth int) (reprNode, error) {
	if depth > maxJSONDepth {
		return reprNode{}, errReprSyntax
	}
	tok, err := d.Token()
	if err != nil {
		return reprNode{}, err
	}
	switch x := tok.(type) {
	case json.Delim:
		switch x {
		case '[':
			n := reprNode{kind: nodeList}
			for d.More() {
				item, err := readNode(d, depth+1)
				if err != nil {
					return reprNode{}, err
				}
				n.items = append(n.items, item)
			}
			_, err := d.Token()
			return n, err
		case '{':
			n := reprNode{kind: nodeDict}
			for d.More() {
				kt, err := d.Token()
				if err != nil {
					return reprNode{}, err
				}
				k, _ := kt.(string)
				item, err := readNode(d, depth+1)
				if err != nil {
					return reprNode{}, err
				}
				n.keys = append(n.keys, k)
				n.items = append(n.items, item)
			}
			if _, err := d.Token(); err != nil {
				return reprNode{}, err
			}
			if typed, ok := kombuTyped(n); ok {
				return typed, nil
			}
			return n, nil
		}
		return reprNode{}, errReprSyntax
	case string:
		return reprNode{kind: nodeStr, text: x}, nil
	case json.Number:
		return reprNode{kind: nodeText, text: pyNumber(string(x))}, nil
	case bool:
		if x {
			return reprNode{kind: nodeText, text: "True"}, nil
		}
		return reprNode{kind: nodeText, text: "False"}, nil
	case nil:
		return reprNode{kind: nodeText, text: "None"}, nil
	}
	return reprNode{}, errReprSyntax
}

// kombuTyped turns Kombu's {"__type__": ..., "__value__": ...} into the Python value's repr.
func kombuTyped(n reprNode) (reprNode, bool) {
	if len(n.keys) != 2 {
		return reprNode{}, false
	}
	var typ, val *reprNode
	for i, k := range n.keys {
		switch k {
		case "__type__":
			typ = &n.items[i]
		case "__value__":
			val = &n.items[i]
		}
	}
	if typ == nil || val == nil || typ.kind != nodeStr {
		return reprNode{}, false
	}
	if typ.text == "uuid" && val.kind == nodeDict && len(val.keys) == 1 && val.keys[0] == "hex" && val.items[0].kind == nodeStr {
		h := strings.ReplaceAll(strings.ToLower(val.items[0].text), "-", "")
		if len(h) == 32 {
			return reprNode{kind: nodeText, text: "UUID('" + h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:] + "')"}, true
		}
		return reprNode{}, false
	}
	if val.kind != nodeStr {
		return reprNode{}, false
	}
	s := val.text
	switch typ.text {
	case "datetime":
		if t, err := ParseTime(s, true); err == nil {
			return reprNode{kind: nodeText, text: datetimeRepr(t, hasOffset(s))}, true
		}
	case "date":
		if t, err := ParseTime(s, true); err == nil {
			return reprNode{kind: nodeText, text: fmt.Sprintf("datetime.date(%d, %d, %d)", t.Year(), int(t.Month()), t.Day())}, true
		}
	case "time":
		if r, ok := timeRepr(s); ok {
			return reprNode{kind: nodeText, text: r}, true
		}
	case "decimal":
		return reprNode{kind: nodeText, text: "Decimal('" + s + "')"}, true
	case "bytes":
		return reprNode{kind: nodeBytes, text: s}, true
	case "base64":
		if b, err := base64.StdEncoding.DecodeString(s); err == nil {
			return reprNode{kind: nodeBytes, text: string(b)}, true
		}
	}
	return reprNode{}, false
}

// hasOffset tells whether an ISO-8601 time names its offset (an aware datetime).
func hasOffset(s string) bool {
	if strings.HasSuffix(s, "Z") {
		return true
	}
	if i := strings.IndexAny(s, "T "); i >= 0 {
		return strings.ContainsAny(s[i:], "+-")
	}
	return false
}

// datetimeRepr is Python's repr of a datetime: trailing zero microseconds, then seconds,
// left out; the tzinfo of an aware one as datetime.timezone.
func datetimeRepr(t time.Time, aware bool) string {
	parts := []int{t.Year(), int(t.Month()), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond() / 1000}
	if parts[6] == 0 {
		parts = parts[:6]
		if parts[5] == 0 {
			parts = parts[:5]
		}
	}
	var b strings.Builder
	b.WriteString("datetime.datetime(")
	for i, p := range parts {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(p))
	}
	if aware {
		b.WriteString(", tzinfo=")
		b.WriteString(timezoneRepr(t))
	}
	b.WriteByte(')')
	return b.String()
}

func timezoneRepr(t time.Time) string {
	_, off := t.Zone()
	if off == 0 {
		return "datetime.timezone.utc"
	}
	// timedelta keeps days and non-negative seconds: -1 h is days=-1, seconds=82800.
	days, secs := off/86400, off%86400
	if secs < 0 {
		days, secs = days-1, secs+86400
	}
	switch {
	case days != 0 && secs != 0:
		return fmt.Sprintf("datetime.timezone(datetime.timedelta(days=%d, seconds=%d))", days, secs)
	case days != 0:
		return fmt.Sprintf("datetime.timezone(datetime.timedelta(days=%d))", days)
	}
	return fmt.Sprintf("datetime.timezone(datetime.timedelta(seconds=%d))", secs)
}

// timeRepr is Python's repr of a time read by time.fromisoformat.
func timeRepr(s string) (string, bool) {
	var offset string
	aware := false
	if i := strings.IndexAny(s, "+-Z"); i >= 0 {
		offset, s, aware = s[i:], s[:i], true
	}
	t, err := time.Parse("15:04:05.999999", s)
	if err != nil {
		if t, err = time.Parse("15:04", s); err != nil {
			return "", false
		}
	}
	r := fmt.Sprintf("datetime.time(%d, %d", t.Hour(), t.Minute())
	if us := t.Nanosecond() / 1000; us != 0 {
		r += fmt.Sprintf(", %d, %d", t.Second(), us)
	} else if t.Second() != 0 {
		r += fmt.Sprintf(", %d", t.Second())
	}
	if aware {
		zone, err := time.Parse("Z07:00", offset)
		if err != nil {
			return "", false
		}
		r += ", tzinfo=" + timezoneRepr(zone)
	}
	return r + ")", true
}

// pyNumber is Python's str of the int or float json.loads makes of a JSON number.
func pyNumber(lit string) string {
	if !strings.ContainsAny(lit, ".eE") {
		if n, ok := new(big.Int).SetString(lit, 10); ok {
			return n.String() // "-0" is 0 in Python
		}
		return lit
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			if f > 0 {
				return "inf"
			}
			if f < 0 {
				return "-inf"
			}
		}
		return lit
	}
	return pyFloat(f)
}

// pyFloat is Python's repr of a float: the shortest digits, in exponent form when the
// exponent is below -4 or at least 16.
func pyFloat(f float64) string {
	e := strconv.FormatFloat(f, 'e', -1, 64) // -d.ddde±xx
	sign := ""
	if e[0] == '-' {
		sign, e = "-", e[1:]
	}
	mant, exp, _ := strings.Cut(e, "e")
	x, _ := strconv.Atoi(exp)
	digits := strings.Replace(mant, ".", "", 1)
	decpt := x + 1
	if decpt > 16 || decpt < -3 {
		m := digits[:1]
		if len(digits) > 1 {
			m += "." + digits[1:]
		}
		es := "+"
		if x < 0 {
			es, x = "-", -x
		}
		return fmt.Sprintf("%s%se%s%02d", sign, m, es, x)
	}
	switch {
	case decpt <= 0:
		return sign + "0." + strings.Repeat("0", -decpt) + digits
	case decpt >= len(digits):
		return sign + digits + strings.Repeat("0", decpt-len(digits)) + ".0"
	}
	return sign + digits[:decpt] + "." + digits[decpt:]
}

// reprToken is one token of saferepr's stream.
type reprToken struct {
	kind  tokenKind
	text  string
	trunc bool // a literal that may be cut (separators)
	dir   int  // a literal's effect on the nesting: +1 opens, -1 closes
}

type tokenKind int

const (
	tokLiteral tokenKind = iota
	tokKey
	tokQuoted
	tokBytes
	tokText
)

var (
	litSep   = reprToken{kind: tokLiteral, text: ", ", trunc: true}
	litKVSep = reprToken{kind: tokLiteral, text: ": ", trunc: true}
)

// flattenRepr appends n's tokens in saferepr's order; containers nested maxLevels deep are
// one literal, e.g. [...].
func flattenRepr(toks []reprToken, n reprNode, level, maxLevels int) []reprToken {
	var start, end string
	switch n.kind {
	case nodeText:
		return append(toks, reprToken{kind: tokText, text: n.text})
	case nodeStr:
		return append(toks, reprToken{kind: tokQuoted, text: n.text})
	case nodeBytes:
		return append(toks, reprToken{kind: tokBytes, text: n.text})
	case nodeList:
		start, end = "[", "]"
	case nodeTuple:
		start, end = "(", ")"
		if len(n.items) == 1 {
			end = ",)"
		}
	case nodeDict:
		start, end = "{", "}"
	}
	if maxLevels > 0 && level >= maxLevels {
		return append(toks, reprToken{kind: tokLiteral, text: start + "..." + end})
	}
	toks = append(toks, reprToken{kind: tokLiteral, text: start, dir: +1})
	for i, item := range n.items {
		if i > 0 {
			toks = append(toks, litSep)
		}
		if n.kind == nodeDict {
			toks = append(toks, reprToken{kind: tokKey, text: n.keys[i]}, litKVSep)
		}
		toks = flattenRepr(toks, item, level+1, maxLevels)
	}
	return append(toks, reprToken{kind: tokLiteral, text: end, dir: -1})
}

// streamRepr writes the tokens as saferepr does with maxlen: each token is cut to what is
// left; once nothing is left, ", ..." and the brackets that close what was shown.
func streamRepr(toks []reprToken, maxLen int) string {
	var b strings.Builder
	left := maxLen
	for i, tok := range toks {
		if maxLen > 0 && left <= 0 {
			if tok.kind == tokLiteral && tok.dir < 0 {
				b.WriteString(tok.text)
				continue
			}
			b.WriteString(", ...")
			depth := 0
			for _, r := range toks[i:] {
				if r.kind == tokLiteral && !r.trunc {
					depth += r.dir
					if depth < 0 {
						depth = 0
						b.WriteString(r.text)
					}
				}
			}
			break
		}
		limit := 0
		if maxLen > 0 {
			limit = left
		}
		var val string
		switch tok.kind {
		case tokLiteral:
			val = tok.text
		case tokKey, tokQuoted:
			val = "'" + strings.ReplaceAll(truncateText(tok.text, limit), "'", `\'`) + "'"
		case tokBytes:
			val = bytesRepr(tok.text, limit)
		default:
			val = truncateText(tok.text, limit)
		}
		b.WriteString(val)
		left -= utf8.RuneCountInString(val)
	}
	return b.String()
}

// truncateText is celery.utils.text.truncate: text of maxLen characters or more is cut
// there, back to its last space, and "..." added.
func truncateText(s string, maxLen int) string {
	if maxLen <= 0 || utf8.RuneCountInString(s) < maxLen {
		return s
	}
	cut := s
	for i := range s {
		if maxLen == 0 {
			cut = s[:i]
			break
		}
		maxLen--
	}
	if sp := strings.LastIndexByte(cut, ' '); sp >= 0 {
		cut = cut[:sp]
	}
	return cut + "..."
}

// bytesRepr is saferepr's form of bytes: b'<utf-8 text or hex>', cut after maxLen bytes.
func bytesRepr(s string, maxLen int) string {
	suffix := ""
	if maxLen > 0 && len(s) > maxLen {
		s, suffix = s[:maxLen], "..."
	}
	if utf8.ValidString(s) {
		return "b'" + s + suffix + "'"
	}
	return "b'" + hex.EncodeToString([]byte(s)) + suffix + "'"
}
