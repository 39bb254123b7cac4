package celery

import (
	"errors"
	"math"
	"testing"
	"time"
)

// TestNewTaskRefusesWhatCeleryCannotRead checks that values a Go Task holds but Celery's
// worker cannot read fail NewTask: an infinite time limit (strconv writes +Inf, which is not
// JSON, so Kombu cannot decode the message) and times outside a Python datetime's years 1 to
// 9999 (the worker's maybe_iso8601 raises, and the task is rejected as invalid).
func TestNewTaskRefusesWhatCeleryCannotRead(t *testing.T) {
	nan := math.NaN()
	for name, opts := range map[string][]TaskOption{
		"infinite hard limit": {WithTimeLimit(math.Inf(1), 0)},
		"infinite soft limit": {WithTimeLimit(10, math.Inf(1))},
		"NaN limit":           {func(t *Task, _ *taskBuild) { t.TimeLimit[0] = &nan }},
		"eta after 9999":      {WithETA(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))},
		"expires in year 0":   {WithExpires(time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC))},
		"protocol 1 eta":      {WithProtocol(1), WithETA(time.Date(12025, 1, 1, 0, 0, 0, 0, time.UTC))},
	} {
		if _, err := NewTask("proj.tasks.add", nil, nil, opts...); !errors.Is(err, ErrInvalidTask) {
			t.Errorf("%s: NewTask gave %v, want ErrInvalidTask", name, err)
		}
	}
	// The limits of Python's datetime are themselves fine.
	if _, err := NewTask("proj.tasks.add", nil, nil, WithETA(time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)),
		WithExpires(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)), WithTimeLimit(1e9, 0.001)); err != nil {
		t.Errorf("times in range: %v", err)
	}
}
