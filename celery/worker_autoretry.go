package celery

import (
	"errors"
	"math/rand/v2"
	"time"
)

// DefaultRetryBackoffMax is the longest countdown of an exponential backoff, as Celery's
// Task.retry_backoff_max (600 s).
const DefaultRetryBackoffMax = 600 * time.Second

// autoRetry is a task's autoretry_for and retry_backoff configuration.
type autoRetry struct {
	match      []func(error) bool
	backoff    time.Duration // 0: no backoff, the default retry delay
	backoffMax time.Duration
	noJitter   bool
}

// AutoRetryFor retries the task, as Celery's autoretry_for does, when its function
// returns an error that matches one of targets (errors.Is). It is retried like
// RetryDefault(err): after the default retry delay, or the exponential backoff of
// RetryBackoff; once its retries are used up (MaxRetries) it fails with the error.
// Retry errors the function returns itself keep their own countdown.
func AutoRetryFor(targets ...error) RegisterOption {
	return AutoRetryIf(func(err error) bool {
		for _, target := range targets {
			if errors.Is(err, target) {
				return true
			}
		}
		return false
	})
}

// AutoRetryIf is AutoRetryFor with a predicate, e.g. for error types with errors.As
// or *TaskError's Python type. Several autoretry options add up: an error matching any of
// them is retried.
func AutoRetryIf(match func(err error) bool) RegisterOption {
	return func(r *registered) { r.auto.match = append(r.auto.match, match) }
}

// RetryBackoff spaces automatic retries (AutoRetryFor) exponentially, as Celery's
// retry_backoff: the countdown before retry n (0 for the first) is factor·2ⁿ seconds, at most
// RetryBackoffMax (600 s by default), then, unless RetryJitter(false), a random
// whole number of seconds from 0 to that countdown. As in Celery the factor and maximum are
// whole seconds, the factor at least 1 (Celery's retry_backoff=True is 1 s).
func RetryBackoff(factor time.Duration) RegisterOption {
	return func(r *registered) {
		if factor < time.Second {
			factor = time.Second
		}
		r.auto.backoff = factor
	}
}

// RetryBackoffMax caps the backoff countdown (Celery's retry_backoff_max).
func RetryBackoffMax(d time.Duration) RegisterOption {
	return func(r *registered) { r.auto.backoffMax = d }
}

// RetryJitter turns the random jitter of the backoff on (the default, as Celery's
// retry_jitter) or off.
func RetryJitter(on bool) RegisterOption {
	return func(r *registered) { r.auto.noJitter = !on }
}

// retryFor turns an error the task function returned into a retry when the task retries it
// automatically; other errors are returned as they are.
func (a *autoRetry) retryFor(err error, retries int) error {
	if err == nil || len(a.match) == 0 {
		return err
	}
	var re *RetryError
	if errors.As(err, &re) {
		return err
	}
	matched := false
	for _, m := range a.match {
		if m(err) {
			matched = true
			break
		}
	}
	if !matched {
		return err
	}
	if a.backoff == 0 {
		return RetryDefault(err)
	}
	return Retry(a.countdown(retries, rand.Int64N), err)
}

// countdown is Celery's get_exponential_backoff_interval(factor, retries, maximum,
// full_jitter), in whole seconds; randN(n) draws from [0, n).
func (a *autoRetry) countdown(retries int, randN func(int64) int64) time.Duration {
	factor := int64(a.backoff / time.Second)
	maximum := int64(a.backoffMax / time.Second)
	if a.backoffMax == 0 {
		maximum = int64(DefaultRetryBackoffMax / time.Second)
	}
	c := maximum
	// factor·2^retries, without overflowing for large retry counts.
	if retries < 62 && factor <= maximum>>min(retries, 62) {
		c = min(maximum, factor<<retries)
	}
	if !a.noJitter {
		c = randN(c + 1)
	}
	return time.Duration(max(0, c)) * time.Second
}
