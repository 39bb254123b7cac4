package kombu

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// formatCeleryTime writes t as Python's datetime.isoformat() of an aware datetime does:
// microseconds only when not zero, and a ±hh:mm offset ("+00:00" for UTC).
func formatCeleryTime(t time.Time) string {
	t = t.Truncate(time.Microsecond)
	if t.Nanosecond() == 0 {
		return t.Format("2006-01-02T15:04:05-07:00")
	}
	return t.Format("2006-01-02T15:04:05.000000-07:00")
}

var celeryTimeLayouts = []string{
	time.RFC3339Nano, // also reads "Z", offsets and no fraction
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02",
}

// ParseCeleryTime reads the times Celery writes for eta and expires: ISO-8601 with or
// without fractional seconds, with an offset, "Z", or none. A time without an offset is
// naive: it is read as UTC when utc is true (Celery's enable_utc, the default), else as
// local time.
func ParseCeleryTime(s string, utc bool) (time.Time, error) {
	loc := time.UTC
	if !utc {
		loc = time.Local
	}
	for _, layout := range celeryTimeLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: %q is not an ISO-8601 time", ErrInvalidTask, s)
}

// DateTime is a time that travels as a Python datetime through Kombu's JSON serializer: it
// is written as {"__type__": "datetime", "__value__": "<isoformat>"}, which Kombu turns into
// a datetime, and read from that form, from Kombu's "date" form, or from an ISO-8601 string.
type DateTime struct {
	time.Time
}

// MarshalJSON writes Kombu's typed datetime.
func (d DateTime) MarshalJSON() ([]byte, error) {
	b := []byte(`{"__type__": "datetime", "__value__": `)
	b = appendPyString(b, formatCeleryTime(d.Time))
	return append(b, '}'), nil
}

// UnmarshalJSON reads Kombu's typed datetime or date, or an ISO-8601 string. null leaves d
// unchanged.
func (d *DateTime) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	var s string
	if len(b) > 0 && b[0] == '{' {
		var typed struct {
			Type  string `json:"__type__"`
			Value string `json:"__value__"`
		}
		if err := json.Unmarshal(b, &typed); err != nil {
			return err
		}
		if typed.Type != "datetime" && typed.Type != "date" {
			return errors.New("kombu: a DateTime needs a Kombu datetime or date, got __type__ " + typed.Type)
		}
		s = typed.Value
	} else if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	t, err := ParseCeleryTime(s, true)
	if err != nil {
		return err
	}
	d.Time = t
	return nil
}
