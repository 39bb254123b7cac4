package celery

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RateLimit limits how often this worker starts the task, as Celery's rate_limit:
// "10/s", "100/m", "1000/h", or a number alone for per second ("0.5" is one task every 2 s).
// The limit is per task and per worker, a token bucket holding one token as in Celery: tasks
// start at least one interval apart, without bursts. "" or "0" means no limit. A task that
// would wait longer than WorkerConfig.MaxETAWait is Nacked and comes back later. Register
// panics on a rate it cannot read, as Celery refuses to start.
func RateLimit(limit string) RegisterOption {
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
		return 0, fmt.Errorf("celery: rate limit %q: %q is not a number of tasks", limit, ops)
	}
	switch strings.TrimSpace(unit) {
	case "", "s":
		return n, nil
	case "m":
		return n / 60, nil
	case "h":
		return n / 3600, nil
	}
	return 0, fmt.Errorf("celery: rate limit %q: the unit must be s, m or h", limit)
}

// rateLimiter is a token bucket of one token, as Celery's: the token is taken when a task
// starts, and the next one is there an interval later, so starts are never closer than the
// interval, however late a start was.
type rateLimiter struct {
	interval time.Duration

	mu      sync.Mutex
	next    time.Time // when the token is there again
	waiting int       // tasks waiting for it
}

// take takes the token if it is there; else it returns how long until it is.
func (l *rateLimiter) take(now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.next) {
		return l.next.Sub(now), false
	}
	l.next = now.Add(l.interval)
	return 0, true
}

// queue counts a task in the wait for the token, unless the tasks ahead of it would make it
// wait longer than maxWait; done ends the wait.
func (l *rateLimiter) queue(now time.Time, maxWait time.Duration) (wait time.Duration, ok bool, done func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	wait = time.Duration(l.waiting) * l.interval
	if now.Before(l.next) {
		wait += l.next.Sub(now)
	}
	if wait > maxWait {
		return wait, false, nil
	}
	l.waiting++
	return wait, true, func() {
		l.mu.Lock()
		l.waiting--
		l.mu.Unlock()
	}
}

// rateLimit waits for the task's turn under its rate limit.
func (r *run) rateLimit(ctx context.Context) error {
	l := r.reg.limiter
	if l == nil {
		return nil
	}
	if _, ok := l.take(r.w.now()); ok {
		return nil
	}
	wait, ok, done := l.queue(r.w.now(), r.w.cfg.MaxETAWait)
	if !ok {
		return fmt.Errorf("celery: worker: task %s (%s) is rate limited for another %s", r.t.Name, r.t.ID, wait.Round(time.Millisecond))
	}
	defer done()
	for {
		wait, ok := l.take(r.w.now())
		if ok {
			return nil
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		}
	}
}
