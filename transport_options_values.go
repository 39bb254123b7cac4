package kombu

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// optionParser collects every problem found, so that all are reported at once.
type optionParser struct {
	errs     []error
	noEffect []string
	// exchanges are the predefined_exchanges read, applied once supports_fanout is known.
	exchanges map[string]Exchange
}

func (p *optionParser) fail(key, format string, args ...any) {
	p.errs = append(p.errs, &ConfigError{Field: key, Reason: fmt.Sprintf(format, args...)})
}

// kind names a value's type in the words of JSON and Python, never showing the value.
func kind(v any) string {
	if v == nil {
		return "null"
	}
	switch v.(type) {
	case json.Number:
		return "a number"
	case time.Duration:
		return "a duration"
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map:
		return "a mapping"
	}
	return fmt.Sprintf("a %T", v)
}

func (p *optionParser) str(key string, v any) (string, bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.String {
		p.fail(key, "must be a string, got %s", kind(v))
		return "", false
	}
	return rv.String(), true
}

// credential is str for a value that must never be shown.
func (p *optionParser) credential(key string, v any) (string, bool) {
	return p.str(key, v)
}

func (p *optionParser) boolean(key string, v any) (bool, bool) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Bool:
		return rv.Bool(), true
	case reflect.String:
		switch strings.ToLower(strings.TrimSpace(rv.String())) {
		case "true", "yes", "on", "1":
			return true, true
		case "false", "no", "off", "0":
			return false, true
		}
	default:
		if f, ok := number(v); ok && (f == 0 || f == 1) {
			return f == 1, true
		}
	}
	p.fail(key, "must be true or false, got %s", kind(v))
	return false, false
}

// number reads a number the way Python's float() does: Go numbers, json.Number, and strings
// holding a number. It rejects booleans, NaN and infinities.
func number(v any) (float64, bool) {
	var f float64
	switch x := v.(type) {
	case json.Number:
		g, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return 0, false
		}
		f = g
	default:
		rv := reflect.ValueOf(v)
		switch rv.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			f = float64(rv.Int())
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			f = float64(rv.Uint())
		case reflect.Float32, reflect.Float64:
			f = rv.Float()
		case reflect.String:
			g, err := strconv.ParseFloat(strings.TrimSpace(rv.String()), 64)
			if err != nil {
				return 0, false
			}
			f = g
		default:
			return 0, false
		}
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// integer reads a whole number as int(float(v)), within [min, max].
func (p *optionParser) integer(key string, v any, min, max int) (int, bool) {
	f, ok := number(v)
	if !ok {
		p.fail(key, "must be a number from %d to %d, got %s", min, max, kind(v))
		return 0, false
	}
	f = math.Trunc(f)
	if f < float64(min) || f > float64(max) {
		p.fail(key, "must be from %d to %d, got %v", min, max, f)
		return 0, false
	}
	return int(f), true
}

// seconds reads a number of seconds (or a time.Duration) within [min, max]; whole truncates to
// whole seconds as Kombu's int(float(v)) does.
func (p *optionParser) seconds(key string, v any, whole bool, min, max time.Duration, note string) (time.Duration, bool) {
	rangeText := fmt.Sprintf("from %s to %s", secondsText(min), secondsText(max))
	if note != "" {
		rangeText += " " + note
	}
	var d time.Duration
	if x, ok := v.(time.Duration); ok {
		d = x
	} else {
		f, ok := number(v)
		if !ok {
			p.fail(key, "must be a number of seconds %s, got %s", rangeText, kind(v))
			return 0, false
		}
		if whole {
			f = math.Trunc(f)
		}
		if f < min.Seconds() || f > max.Seconds() {
			p.fail(key, "must be %s, got %v s", rangeText, f)
			return 0, false
		}
		d = time.Duration(f * float64(time.Second))
	}
	if whole {
		d = d.Truncate(time.Second)
	}
	if d < min || d > max {
		p.fail(key, "must be %s, got %s", rangeText, secondsText(d))
		return 0, false
	}
	return d, true
}

// duration reads a number of seconds (or a time.Duration) without checking its range, which
// is Config.Validate's; whole truncates to whole seconds as Kombu's int(float(v)) does.
func (p *optionParser) duration(key string, v any, whole bool) (time.Duration, bool) {
	if d, ok := v.(time.Duration); ok {
		if whole {
			d = d.Truncate(time.Second)
		}
		return d, true
	}
	f, ok := number(v)
	if !ok {
		p.fail(key, "must be a number of seconds, got %s", kind(v))
		return 0, false
	}
	if whole {
		f = math.Trunc(f)
	}
	if math.Abs(f) > float64(math.MaxInt64/int64(time.Second)) {
		p.fail(key, "must be a number of seconds that fits a time.Duration, got %v s", f)
		return 0, false
	}
	return time.Duration(f * float64(time.Second)), true
}

// validated adds the *ConfigErrors of Config.Validate (or SubscriberConfig.Validate) under
// the names of the options they come from; errors about fields no option sets keep their Go
// names.
func (p *optionParser) validated(err error) {
	if err == nil {
		return
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			p.validated(e)
		}
		return
	}
	var ce *ConfigError
	if !errors.As(err, &ce) {
		p.errs = append(p.errs, err)
		return
	}
	if credentialFields[ce.Field] {
		return // the keys may come later, with the broker URL; the constructors check them
	}
	name := optionName(ce.Field)
	reason := ce.Reason
	if name != ce.Field {
		// The reason may name other fields, which the user wrote as options too.
		reason = optionReasonNames.Replace(reason)
	}
	p.errs = append(p.errs, &ConfigError{Field: name, Reason: reason})
}

// optionReasonNames turns the Go field names that Validate's reasons mention into the options
// they come from.
var optionReasonNames = strings.NewReplacer(
	"AccessKeyID and SecretAccessKey", "access_key_id and secret_access_key",
	"StsTokenTimeout", "sts_token_timeout",
)

// optionFields maps the Config and SubscriberConfig fields set from transport options to the
// options' names.
var optionFields = map[string]string{
	"EndpointURL":        "endpoint_url",
	"VisibilityTimeout":  "visibility_timeout",
	"StsRoleArn":         "sts_role_arn",
	"StsTokenTimeout":    "sts_token_timeout",
	"StsTokenBufferTime": "sts_token_buffer_time",
	"RequestTimeout":     `client-config["read_timeout"]`,
	"RetryMaxAttempts":   `client-config["retries"]`,
	"WaitTimeSeconds":    "wait_time_seconds",
	"PollingInterval":    "polling_interval",
	"BackoffPolicy":      "backoff_policy",
}

// credentialFields are the top-level credentials, which a broker URL given apart from the
// options supplies.
var credentialFields = map[string]bool{"SessionToken": true, "AccessKeyID/SecretAccessKey": true}

// predefinedFields maps the PredefinedQueue fields to the options of a predefined_queues entry.
var predefinedFields = map[string]string{
	"URL": `["url"]`, "AccessKeyID/SecretAccessKey": `["access_key_id"] and ["secret_access_key"]`, "SessionToken": `["session_token"]`,
	"Region": `["region"]`, "BackoffPolicy": `["backoff_policy"]`,
}

// optionName turns a Validate field name into the transport option it comes from.
func optionName(field string) string {
	if name, ok := optionFields[field]; ok {
		return name
	}
	if name := predefinedExchangeOption(field); name != "" {
		return name
	}
	if rest, ok := strings.CutPrefix(field, "PredefinedQueues["); ok {
		if i := strings.LastIndex(rest, "]."); i >= 0 {
			if sub, ok := predefinedFields[rest[i+2:]]; ok {
				return "predefined_queues[" + strconv.Quote(rest[:i]) + "]" + sub
			}
		}
	}
	return field
}

func secondsText(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + " s"
}

type entry struct {
	key   any
	value any
}

// mapping reads any Go map (map[string]any, map[string]string, map[int]int, map[any]any, ...)
// as entries sorted by key, so that errors come in a stable order.
func (p *optionParser) mapping(key string, v any) ([]entry, bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Map {
		p.fail(key, "must be a mapping, got %s", kind(v))
		return nil, false
	}
	entries := make([]entry, 0, rv.Len())
	iter := rv.MapRange()
	for iter.Next() {
		entries = append(entries, entry{key: plain(iter.Key()), value: plain(iter.Value())})
	}
	sort.Slice(entries, func(i, j int) bool { return fmt.Sprint(entries[i].key) < fmt.Sprint(entries[j].key) })
	return entries, true
}

// plain unwraps interface values and turns named string types into strings.
func plain(rv reflect.Value) any {
	for rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return nil
		}
		rv = rv.Elem()
	}
	if !rv.IsValid() {
		return nil
	}
	if rv.Kind() == reflect.String && rv.Type() != reflect.TypeOf("") {
		return rv.String()
	}
	return rv.Interface()
}

func integerKey(k any) (int, bool) {
	if s, ok := k.(string); ok {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		return n, err == nil
	}
	f, ok := number(k)
	if !ok || f != math.Trunc(f) || math.Abs(f) > 1e9 {
		return 0, false
	}
	return int(f), true
}

func (p *optionParser) stringMap(key string, v any) (map[string]string, bool) {
	entries, ok := p.mapping(key, v)
	if !ok {
		return nil, false
	}
	m := make(map[string]string, len(entries))
	good := true
	for _, e := range entries {
		name, ok := e.key.(string)
		if !ok || name == "" {
			p.fail(key, "keys must be non-empty strings")
			good = false
			continue
		}
		ekey := key + "[" + strconv.Quote(name) + "]"
		switch x := e.value.(type) {
		case string:
			m[name] = x
		case bool:
			m[name] = strconv.FormatBool(x)
		default:
			f, ok := number(x)
			if !ok {
				p.fail(ekey, "must be a string, got %s", kind(x))
				good = false
				continue
			}
			m[name] = strconv.FormatFloat(f, 'f', -1, 64)
		}
	}
	return m, good
}

func (p *optionParser) stringList(key string, v any) ([]string, bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		p.fail(key, "must be a list of strings, got %s", kind(v))
		return nil, false
	}
	out := make([]string, 0, rv.Len())
	for i := 0; i < rv.Len(); i++ {
		s, ok := plain(rv.Index(i)).(string)
		if !ok {
			p.fail(fmt.Sprintf("%s[%d]", key, i), "must be a string, got %s", kind(plain(rv.Index(i))))
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}
