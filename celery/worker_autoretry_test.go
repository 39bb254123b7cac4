package celery_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/watermill-kombu/watermill-kombu/celery"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

var errFlaky = errors.New("flaky")

// celeryBackoff returns what Celery's get_exponential_backoff_interval(factor, retries,
// maximum, full_jitter=False) gives for retries 0..n-1.
func celeryBackoff(t *testing.T, factor, maximum, n int) []float64 {
	t.Helper()
	code := fmt.Sprintf(`import json
from celery.utils.time import get_exponential_backoff_interval as f
print(json.dumps([f(factor=%d, retries=r, maximum=%d, full_jitter=False) for r in range(%d)]))`, factor, maximum, n)
	out, err := exec.Command(testenv.Python(t), "-c", code).Output()
	require.NoError(t, err)
	var got []float64
	require.NoError(t, json.Unmarshal(out, &got))
	return got
}

// retryCountdowns runs a failing task once per retry count 0..n-1 and returns the countdown
// of each retry the worker sends (its eta minus the time it was handled, 0 without eta), in
// seconds.
func retryCountdowns(t *testing.T, n int, opts ...celery.RegisterOption) ([]float64, []string) {
	t.Helper()
	w, pub, res := newTestWorker(t, celery.WorkerConfig{})
	w.Register("go.flaky", func(context.Context, *celery.Task) (any, error) {
		return nil, fmt.Errorf("attempt: %w", errFlaky)
	}, opts...)
	var countdowns []float64
	var last []string
	for retries := 0; retries < n; retries++ {
		msg, id := received(t, "q", "go.flaky", nil, nil, celery.WithRetryCount(retries))
		before := len(pub.all())
		start := time.Now()
		require.NoError(t, w.Handle(msg))
		sent := pub.all()
		last = res.states(id)
		if len(sent) == before {
			break
		}
		retry := sent[len(sent)-1].task
		assert.Equal(t, retries+1, retry.Retries)
		// A zero countdown (full jitter draws it) sends no eta, as Celery's apply_async.
		countdown := 0.0
		if retry.ETA != nil {
			countdown = retry.ETA.Sub(start).Seconds()
		}
		countdowns = append(countdowns, countdown)
	}
	return countdowns, last
}

// TestWorkerAutoRetryBackoff checks autoretry_for with retry_backoff against Celery's own
// get_exponential_backoff_interval.
func TestWorkerAutoRetryBackoff(t *testing.T) {
	for _, c := range []struct {
		name            string
		factor, maximum int
		opts            []celery.RegisterOption
	}{
		{"default_max", 1, 600, nil},
		{"factor_3_max_20", 3, 20, []celery.RegisterOption{celery.RetryBackoffMax(20 * time.Second)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			const n = 12
			want := celeryBackoff(t, c.factor, c.maximum, n)
			opts := append([]celery.RegisterOption{celery.AutoRetryFor(errFlaky),
				celery.RetryBackoff(time.Duration(c.factor) * time.Second), celery.RetryJitter(false),
				celery.MaxRetries(-1)}, c.opts...)
			got, _ := retryCountdowns(t, n, opts...)
			require.Len(t, got, n)
			for i := range want {
				assert.InDelta(t, want[i], got[i], 0.5, "retry %d: Celery %v, Go %v", i, want, got)
			}
			t.Logf("Celery %v, Go %.2f", want, got)
		})
	}
}

func TestWorkerAutoRetryJitterAndLimits(t *testing.T) {
	got, _ := retryCountdowns(t, 40, celery.AutoRetryFor(errFlaky), celery.RetryBackoff(time.Second),
		celery.RetryBackoffMax(8*time.Second), celery.MaxRetries(-1))
	require.Len(t, got, 40)
	distinct := map[int]bool{}
	for i, c := range got {
		bound := float64(min(8, 1<<i))
		assert.GreaterOrEqual(t, c, -0.5, "retry %d", i)
		assert.LessOrEqual(t, c, bound+0.5, "retry %d: full jitter stays within the backoff", i)
		distinct[int(c+0.5)] = true
	}
	assert.Greater(t, len(distinct), 2, "jitter spreads the countdowns: %v", got)

	// max_retries: the error is retried 2 times, then the task fails with it.
	got, states := retryCountdowns(t, 5, celery.AutoRetryFor(errFlaky), celery.MaxRetries(2),
		celery.RetryDelay(7*time.Second))
	assert.Len(t, got, 2)
	for _, c := range got {
		assert.InDelta(t, 7, c, 0.5, "without backoff, the default retry delay")
	}
	assert.Equal(t, []string{celery.StateFailure}, states)

	// Errors that do not match fail at once.
	got, states = retryCountdowns(t, 1, celery.AutoRetryIf(func(err error) bool { return false }))
	assert.Empty(t, got)
	assert.Equal(t, []string{celery.StateFailure}, states)
}
