package celery

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// WithRateLimit limits how often this worker starts the task, as Celery's rate_limit:
// "10/s", "100/m", "1000/h", or a number alone for per second ("0.5" is one task every 2 s).
// The limit is per task and per worker, a token bucket holding one token as in Celery: tasks
// start at most one interval apart, without bursts. "" or "0" means no limit. A task that
// would wait longer than WorkerConfig.MaxETAWait is Nacked and comes back later. Register
// panics on a rate it cannot read, as Celery refuses to start.
func WithRateLimit(limit string) RegisterOption {
	return func(r *registered) {
		perSecond, err := ParseRateLimit(limit)
		if err != nil {
			panic(err)
		}
		r.limiter = nil
		if perSecond > 0 {
			r.limiter = &rateLimiter{interval: time.Duration(float64(time.Second) / perSecond)}
		}
	}
}

// ParseRateLimit reads a Celery rate limit ("10/s", "100/m", "1000/h", or a number of tasks
// per second) as tasks per second; "" is 0, no limit.
func ParseRateLimit(limit string) (float64, error) {
	s := strings.TrimSpace(limit)
	if s == "" {
		return 0, nil
	}
	ops, unit, _ := strings.Cut(s, "/")
	n, err := strconv.ParseFloat(strings.TrimSpace(ops), 64)
	if err != nil || n < 0 || n != n {
		return 0, fmt.Errorf("kombu: rate limit %q: %q is not a number of tasks", limit, ops)
	}
	switch strings.TrimSpace(unit) {
	case "", "s":
		return n, nil
	case "m":
		return n / 60, nil
	case "h":
		return n / 3600, nil
	}
	return 0, fmt.Errorf("kombu: rate limit %q: the unit must be s, m or h", limit)
}

// rateLimiter is a token bucket of one token: each start reserves the next free slot,
// interval after the previous one.
type rateLimiter struct {
	interval time.Duration

	mu   sync.Mutex
	next time.Time
}

// reserve returns how long to wait for a slot, taking it, unless that is longer than
// maxWait: then it takes nothing and returns false.
func (l *rateLimiter) reserve(now time.Time, maxWait time.Duration) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at := l.next
	if at.Before(now) {
		at = now
	}
	wait := at.Sub(now)
	if wait > maxWait {
		return wait, false
	}
	l.next = at.Add(l.interval)
	return wait, true
}

// rateLimit waits for the task's turn under its rate limit.
func (r *run) rateLimit(ctx context.Context) error {
	l := r.reg.limiter
	if l == nil {
		return nil
	}
	wait, ok := l.reserve(r.w.now(), r.w.cfg.MaxETAWait)
	if !ok {
		return fmt.Errorf("kombu: worker: task %s (%s) is rate limited for another %s", r.t.Name, r.t.ID, wait.Round(time.Millisecond))
	}
	if wait <= 0 {
		return nil
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		// The slot stays taken: giving it back could start two tasks closer than the limit.
		return ctx.Err()
	}
}
