package pywire

import (
	"testing"
	"time"
)

func TestTimes(t *testing.T) {
	want := time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)
	for _, s := range []string{"2025-03-14T15:09:26.535897+00:00", "2025-03-14T15:09:26.535897Z", "2025-03-14T15:09:26.535897",
		"2025-03-14 15:09:26.535897", "2025-03-14T16:09:26.535897+01:00"} {
		got, err := ParseTime(s, true)
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: %v %v", s, got, err)
		}
	}
	if got, err := ParseTime("2025-03-14T15:09:26", false); err != nil || !got.Equal(time.Date(2025, 3, 14, 15, 9, 26, 0, time.Local)) {
		t.Errorf("naive local time: %v %v", got, err)
	}
	if _, err := ParseTime("soon", true); err == nil {
		t.Error("ParseTime(soon) did not fail")
	}
	if s := FormatTime(want); s != "2025-03-14T15:09:26.535897+00:00" {
		t.Errorf("format %s", s)
	}
	if s := FormatTime(want.Truncate(time.Second)); s != "2025-03-14T15:09:26+00:00" {
		t.Errorf("format %s", s)
	}

	// Python writes an offset that is not whole minutes with its seconds, and reads it back.
	lmt := time.Date(1930, 1, 2, 3, 4, 5, 0, time.FixedZone("LMT", 19*60+32))
	if s := FormatTime(lmt); s != "1930-01-02T03:04:05+00:19:32" {
		t.Errorf("format %s", s)
	}
	if got, err := ParseTime("1930-01-02T03:04:05.000001+00:19:32", true); err != nil || !got.Equal(lmt.Add(time.Microsecond)) {
		t.Errorf("offset with seconds: %v %v", got, err)
	}
}
