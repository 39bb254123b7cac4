package celery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/watermill-kombu/watermill-kombu/internal/pywire"
)

// ParseTime reads the times Celery writes for eta and expires: ISO-8601 with or
// without fractional seconds, with an offset, "Z", or none. A time without an offset is
// naive: it is read as UTC when utc is true (Celery's enable_utc, the default), else as
// local time.
func ParseTime(s string, utc bool) (time.Time, error) {
	t, err := pywire.ParseTime(s, utc)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %w", ErrInvalidTask, err)
	}
	return t, nil
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
	b = pywire.AppendString(b, pywire.FormatTime(d.Time))
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
			return errors.New("celery: a DateTime needs a Kombu datetime or date, got __type__ " + typed.Type)
		}
		s = typed.Value
	} else if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	t, err := ParseTime(s, true)
	if err != nil {
		return err
	}
	d.Time = t
	return nil
}
