package celery_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/watermill-kombu/watermill-kombu/celery"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// TestParseRateLimit reads rate limits as Celery's celery.utils.time.rate does.
func TestParseRateLimit(t *testing.T) {
	limits := []string{"10/s", "100/m", "1000/h", "5", "0.5/s", "2/h", "0", ""}
	quoted := make([]string, len(limits))
	for i, l := range limits {
		quoted[i] = fmt.Sprintf("%q", l)
	}
	code := `import json
from celery.utils.time import rate
print(json.dumps([rate(r) for r in [` + strings.Join(quoted, ", ") + `]]))`
	out, err := exec.Command(testenv.Python(t), "-c", code).Output()
	require.NoError(t, err)
	var want []float64
	require.NoError(t, json.Unmarshal(out, &want))
	for i, l := range limits {
		got, err := celery.ParseRateLimit(l)
		require.NoError(t, err, l)
		assert.InDelta(t, want[i], got, 1e-12, "rate(%q)", l)
	}
	for _, bad := range []string{"10/d", "x/s", "-1/s"} {
		_, err := celery.ParseRateLimit(bad)
		assert.Error(t, err, bad)
	}
	w, _, _ := newTestWorker(t, celery.WorkerConfig{})
	assert.Panics(t, func() {
		w.Register("go.bad", func(context.Context, *celery.Task) (any, error) { return nil, nil }, celery.RateLimit("10/d"))
	})
}

// TestWorkerRateLimit starts a limited task at most once per interval, even when several
// run at once, and Nacks one that would wait longer than MaxETAWait.
func TestWorkerRateLimit(t *testing.T) {
	w, _, _ := newTestWorker(t, celery.WorkerConfig{})
	var mu sync.Mutex
	var starts []time.Time
	w.Register("go.limited", func(context.Context, *celery.Task) (any, error) {
		mu.Lock()
		starts = append(starts, time.Now())
		mu.Unlock()
		return nil, nil
	}, celery.RateLimit("10/s"))
	w.Register("go.free", func(context.Context, *celery.Task) (any, error) { return nil, nil })

	const n = 6
	var wg sync.WaitGroup
	begin := time.Now()
	for i := 0; i < n; i++ {
		msg, _ := received(t, "q", "go.limited", nil, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, w.Handle(msg))
		}()
	}
	free, _ := received(t, "q", "go.free", nil, nil)
	require.NoError(t, w.Handle(free))
	assert.Less(t, time.Since(begin), 80*time.Millisecond, "other tasks are not limited")
	wg.Wait()
	require.Len(t, starts, n)
	sort.Slice(starts, func(i, j int) bool { return starts[i].Before(starts[j]) })
	// The token is taken when a task starts, so two tokens are never closer than the interval.
	// The handlers record their starts a scheduling delay after their tokens, which a busy
	// machine stretches: a start recorded late brings the next one closer to it (97 ms seen in
	// a CI run). Without the limit the six would start within a millisecond or two.
	const slack = 25 * time.Millisecond
	for i := 1; i < n; i++ {
		assert.GreaterOrEqual(t, starts[i].Sub(starts[i-1]), 100*time.Millisecond-slack, "start %d", i)
	}
	span := starts[n-1].Sub(starts[0])
	assert.GreaterOrEqual(t, span, 500*time.Millisecond-slack)
	t.Logf("6 tasks at 10/s started over %s", span)

	w2, _, _ := newTestWorker(t, celery.WorkerConfig{MaxETAWait: time.Second})
	w2.Register("go.hourly", func(context.Context, *celery.Task) (any, error) { return nil, nil }, celery.RateLimit("1/h"))
	first, _ := received(t, "q", "go.hourly", nil, nil)
	require.NoError(t, w2.Handle(first))
	second, _ := received(t, "q", "go.hourly", nil, nil)
	err := w2.Handle(second)
	require.Error(t, err, "a task that would wait an hour is Nacked")
	assert.Contains(t, err.Error(), "rate limited")
}
