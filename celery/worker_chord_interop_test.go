package celery_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
)

// addConsumers runs n more routers with the Go worker's handler on its queue, so that the
// worker runs several tasks at once.
func (e *goWorkerEnv) addConsumers(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	logger := watermill.NopLogger{}
	for i := 0; i < n; i++ {
		sub, err := kombu.NewSubscriber(kombu.SubscriberConfig{
			Config:          interopConfig(e.endpoint),
			WaitTimeSeconds: 1,
			PollingInterval: 50 * time.Millisecond,
			CloseTimeout:    5 * time.Second,
			PrefetchCount:   2,
		}, logger)
		require.NoError(t, err)
		router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, logger)
		require.NoError(t, err)
		router.AddConsumerHandler(fmt.Sprintf("go-worker-%d", i), e.goQueue, sub, e.worker.Handler())
		rctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = router.Run(rctx)
		}()
		t.Cleanup(func() {
			stop()
			<-done
			_ = sub.Close()
		})
		<-router.Running()
	}
}

// TestWorkerChordInterop runs Celery chords whose header tasks run in the Go worker, in a
// Celery worker, or in both, and whose body runs in either: the body is called once, with
// the header's results in order, and a failing header task fails the chord as in Celery.
func TestWorkerChordInterop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	e := startGoWorker(t, ctx)
	var mu sync.Mutex
	bodies := map[string]int{}
	e.worker.Register("interop.go.tsum", func(_ context.Context, task *celery.Task) (any, error) {
		mu.Lock()
		bodies[task.ID]++
		mu.Unlock()
		var values []int
		if err := task.DecodeArgs(&values); err != nil {
			return nil, err
		}
		sum := 0
		for _, v := range values {
			sum += v
		}
		return sum, nil
	})
	celery.RegisterFunc(e.worker, "interop.go.collect", func(_ context.Context, values []int) ([]int, error) {
		return values, nil
	})
	e.startPyWorker(t)
	script := "interop/worker_chord_client.py"
	evens := []any{0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0}

	t.Run("ChordGoHeaderPythonBody", func(t *testing.T) {
		out := e.script(t, ctx, script, "go_header")
		assert.Equal(t, 90.0, out["result"])
		assert.Empty(t, out["left"], "the chord's keys are deleted")
	})
	t.Run("ChordPythonHeaderGoBody", func(t *testing.T) {
		out := e.script(t, ctx, script, "py_header")
		assert.Equal(t, 90.0, out["result"])
		assert.Empty(t, out["left"], "the chord's keys are deleted")
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, 1, bodies[out["body_id"].(string)], "the Go body ran once")
	})
	t.Run("ChordMixedHeader", func(t *testing.T) {
		out := e.script(t, ctx, script, "mixed")
		assert.Equal(t, evens, out["result"], "Python body: results in header order")
		goBody, _ := out["go_body"].(map[string]any)
		assert.Equal(t, evens, goBody["result"], "Go body: results in header order")
		assert.Empty(t, out["left"])
		assert.Empty(t, goBody["left"])
	})
	t.Run("ChordFailingMember", func(t *testing.T) {
		ref := e.script(t, ctx, script, "py_fail")
		out := e.script(t, ctx, script, "fail")
		header, _ := out["header"].([]any)
		require.Len(t, header, 3)
		for _, o := range []map[string]any{ref, out} {
			assert.Equal(t, "ChordError", o["raised"], "%v", o)
			assert.Equal(t, "celery.exceptions", o["module"])
			assert.Equal(t, celery.StateFailure, o["state"])
			errback, _ := o["errback"].(map[string]any)
			assert.Equal(t, o["body_id"], errback["failed"], "the body's errback gets the body's id")
			assert.Equal(t, celery.StateFailure, errback["state"])
		}
		assert.Equal(t, "builtins.ValueError: broken", ref["parent_raised"])
		assert.Equal(t, "builtins.Exception: broken", out["parent_raised"])
		refHeader, _ := ref["header"].([]any)
		assert.Equal(t, fmt.Sprintf("Dependency %s raised ValueError('broken')", refHeader[1]), ref["message"], "Celery's own message")
		assert.Equal(t, fmt.Sprintf("Dependency %s raised Exception('broken')", header[1]), out["message"], "the Go worker's message")
	})
	t.Run("ChordGroupBody", func(t *testing.T) {
		out := e.script(t, ctx, script, "group_body")
		assert.Equal(t, []any{12.0, []any{0.0, 2.0, 4.0, 6.0}}, out["result"], "each task of the group body gets the header's results")
		assert.Equal(t, []any{15.0, 10.0}, out["link"], "a group as a Go task's link: add_ten(5), double(5)")
	})
	t.Run("ChordChainBody", func(t *testing.T) {
		out := e.script(t, ctx, script, "chain_body")
		assert.Equal(t, 34.0, out["result"], "add_ten(double(tsum([0, 2, 4, 6])))")
	})
	t.Run("ChordNestedGroupHeader", func(t *testing.T) {
		ref := e.script(t, ctx, script, "nested_py")
		out := e.script(t, ctx, script, "nested")
		require.Len(t, ref["result"], 3)
		assert.Equal(t, ref["result"], out["result"], "the Go header gives the body what the Python header gives")
		assert.Empty(t, out["left"])
	})
	t.Run("ChordChainMemberFails", func(t *testing.T) {
		out := e.script(t, ctx, script, "chain_fail")
		assert.Equal(t, "builtins.Exception: broken", out["chain_raised"], "a failed step fails the rest of its chain")
		assert.Equal(t, celery.StateFailure, out["chain_last_state"])
		assert.Equal(t, fmt.Sprintf("celery.exceptions.ChordError: Dependency %s raised Exception('broken')", out["member_id"]),
			out["chord_raised"], "the chain's last step returns its part: the chord fails")
	})
	t.Run("ChordHundredMembersConcurrent", func(t *testing.T) {
		e.addConsumers(t, ctx, 3)
		out := e.script(t, ctx, script, "big")
		assert.Equal(t, 9900.0, out["result"])
		assert.Equal(t, 1.0, out["calls"], "the body was called once")
		assert.Empty(t, out["left"])
	})
}
