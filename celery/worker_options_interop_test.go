package celery_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/watermill-kombu/watermill-kombu/celery"
)

func floats(t *testing.T, v any) []float64 {
	t.Helper()
	list, ok := v.([]any)
	require.True(t, ok, "%v is not a list", v)
	out := make([]float64, len(list))
	for i, x := range list {
		out[i], ok = x.(float64)
		require.True(t, ok, "%v is not a number", x)
	}
	return out
}

func gaps(ts []float64) []float64 {
	var g []float64
	for i := 1; i < len(ts); i++ {
		g = append(g, ts[i]-ts[i-1])
	}
	return g
}

// TestWorkerAutoRetryRateLimitInterop runs a Go task and a Celery task declared with the same
// autoretry_for/retry_backoff and rate_limit options, called from a real Celery client, and
// compares when their runs started.
func TestWorkerAutoRetryRateLimitInterop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := startGoWorker(t, ctx)
	var mu sync.Mutex
	runs := map[string][]float64{}
	now := func() float64 { return float64(time.Now().UnixMicro()) / 1e6 }
	e.worker.Register("interop.go.autoflaky", func(_ context.Context, task *celery.Task) (any, error) {
		mu.Lock()
		defer mu.Unlock()
		runs[task.ID] = append(runs[task.ID], now())
		if task.Retries < 3 {
			return nil, fmt.Errorf("run %d: %w", task.Retries, errFlaky)
		}
		return runs[task.ID], nil
	}, celery.AutoRetryFor(errFlaky), celery.RetryBackoff(time.Second), celery.RetryJitter(false), celery.MaxRetries(3))
	e.worker.Register("interop.go.limited", func(context.Context, *celery.Task) (any, error) {
		return now(), nil
	}, celery.RateLimit("5/s"))
	e.startPyWorker(t)
	script := "interop/worker_options_client.py"

	t.Run("AutoRetryBackoff", func(t *testing.T) {
		out := e.script(t, ctx, script, "autoretry")
		want := []float64{1, 2, 4} // get_exponential_backoff_interval(1, retries, 600)
		for _, side := range []string{"go", "py"} {
			g := gaps(floats(t, out[side]))
			require.Len(t, g, 3, side)
			for i := range want {
				assert.GreaterOrEqual(t, g[i], want[i]-0.1, "%s: retry %d came early: %v", side, i, g)
				assert.LessOrEqual(t, g[i], want[i]+2, "%s: retry %d came late: %v", side, i, g)
			}
			t.Logf("%s: countdowns %v s, measured %.2f s", side, want, g)
		}
	})
	t.Run("RateLimit", func(t *testing.T) {
		e.addConsumers(t, ctx, 2) // the Go worker runs several tasks at once
		out := e.script(t, ctx, script, "ratelimit")
		for _, side := range []string{"go", "py"} {
			starts := floats(t, out[side])
			require.Len(t, starts, 6, side)
			for i := 1; i < len(starts); i++ {
				assert.GreaterOrEqual(t, starts[i]-starts[i-1], 0.2-0.01, "%s: start %d: %v", side, i, gaps(starts))
			}
			t.Logf("%s: 6 tasks at 5/s, gaps %.3f s", side, gaps(starts))
		}
	})
}
