package celery_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/watermill-kombu/watermill-kombu/celery"
)

// TestWorkerResultExtendedInterop has a Celery client with result_extended=True call Go
// tasks of a Go worker with ResultExtended and their Python twins on a Celery worker with
// result_extended=True, and compares what AsyncResult reads of each: name, args, kwargs,
// worker, retries, queue, and the keys of the stored documents in their order.
func TestWorkerResultExtendedInterop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const hostname = "go-ext@interop"
	e := startGoWorker(t, ctx, func(c *celery.WorkerConfig) {
		c.ResultExtended = true
		c.Hostname = hostname
	})
	e.worker.Register("interop.go.echo", func(_ context.Context, task *celery.Task) (any, error) {
		return len(task.Args) + len(task.Kwargs), nil
	})
	e.startPyWorker(t)
	script := "interop/worker_extended_client.py"

	for _, c := range []struct {
		name, goTask, pyTask, state string
		retries                     float64
	}{
		{"success", "interop.go.echo", "interop.py.echo", celery.StateSuccess, 0},
		{"retry", "interop.go.flaky", "interop.py.flaky", celery.StateSuccess, 3},
		{"failure", "interop.go.boom", "interop.py.fail", celery.StateFailure, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := e.script(t, ctx, script, c.name)
			goSide, _ := out["go"].(map[string]any)
			py, _ := out["py"].(map[string]any)
			require.NotNil(t, goSide, "%v", out)
			require.NotNil(t, py, "%v", out)
			for side, v := range map[string]map[string]any{"go": goSide, "py": py} {
				assert.Equal(t, c.state, v["state"], side)
				assert.Equal(t, c.retries, v["retries"], side)
				assert.NotEmpty(t, v["date_done"], side)
			}
			assert.Equal(t, py["keys"], goSide["keys"], "the documents' keys and their order")
			assert.Equal(t, c.goTask, goSide["name"])
			assert.Equal(t, c.pyTask, py["name"])
			assert.Equal(t, py["args"], goSide["args"])
			assert.Equal(t, py["kwargs"], goSide["kwargs"])
			assert.Equal(t, e.goQueue, goSide["queue"])
			assert.Equal(t, e.pyQueue, py["queue"])
			assert.Equal(t, hostname, goSide["worker"])
			assert.True(t, strings.HasPrefix(py["worker"].(string), "celery@"), "%v", py["worker"])
		})
	}
}
