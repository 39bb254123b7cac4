package pywire

import (
	"fmt"
	"time"
)

// FormatTime writes t as Python's datetime.isoformat() of an aware datetime does:
// microseconds only when not zero, and a ±hh:mm offset ("+00:00" for UTC).
// An offset that is not whole minutes (local mean times before the 1900s) gets its seconds,
// as Python writes them: dropping them would move the time.
func FormatTime(t time.Time) string {
	t = t.Truncate(time.Microsecond)
	layout := "2006-01-02T15:04:05.000000-07:00"
	if t.Nanosecond() == 0 {
		layout = "2006-01-02T15:04:05-07:00"
	}
	if _, offset := t.Zone(); offset%60 != 0 {
		layout += ":00"
	}
	return t.Format(layout)
}

var timeLayouts = []string{
	time.RFC3339Nano, // also reads "Z", offsets and no fraction
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999Z07:00:00", // Python's isoformat of an offset with seconds
	"2006-01-02",
}

// ParseTime reads the times Celery writes for eta and expires: ISO-8601 with or without
// fractional seconds, with an offset, "Z", or none. A time without an offset is naive: it is
// read as UTC when utc is true (Celery's enable_utc, the default), else as local time.
func ParseTime(s string, utc bool) (time.Time, error) {
	loc := time.UTC
	if !utc {
		loc = time.Local
	}
	for _, layout := range timeLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO-8601 time", s)
}
