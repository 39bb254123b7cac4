package celery

import (
	"fmt"
	"math"
	"time"
)

// checkCeleryValues refuses the values a Go Task can hold but a Celery worker cannot read, so
// that NewTask fails instead of sending a task the worker drops.
func (t *Task) checkCeleryValues() error {
	for i, limit := range t.TimeLimit {
		// strconv writes +Inf and NaN, which are not JSON: Kombu could not decode the
		// message at all. Python would write Infinity, which no time limit needs.
		if limit != nil && (math.IsInf(*limit, 0) || math.IsNaN(*limit)) {
			return fmt.Errorf("time limit %v: a time limit must be a finite number of seconds", []string{"hard", "soft"}[i])
		}
	}
	for _, x := range []struct {
		name string
		t    *time.Time
	}{{"eta", t.ETA}, {"expires", t.Expires}} {
		// A Python datetime has years 1 to 9999: the worker rejects any other eta or expires
		// as an invalid task.
		if x.t != nil && (x.t.Year() < 1 || x.t.Year() > 9999) {
			return fmt.Errorf("%s %s: Celery's times have years 1 to 9999", x.name, x.t)
		}
	}
	return nil
}
