package celery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
	"github.com/watermill-kombu/watermill-kombu/celery/redisbackend"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// goWorkerEnv is a Go worker serving the interop.go.* tasks of interop/worker_pyapp.py.
type goWorkerEnv struct {
	endpoint, redisURL string
	goQueue, pyQueue   string
	worker             *celery.Worker
	// extended is the Go worker's ResultExtended, passed on to the Python side's
	// result_extended.
	extended bool

	mu     sync.Mutex
	runs   map[string][]int   // task id → the retries count of each run
	limits [][2]time.Duration // what interop.go.sleepy saw: time left to the hard and soft limits
}

func (e *goWorkerEnv) record(t *celery.Task) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.runs[t.ID] = append(e.runs[t.ID], t.Retries)
}

func (e *goWorkerEnv) runsOf(id string) []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]int(nil), e.runs[id]...)
}

// startGoWorker starts the Go worker; opts change its config before it is created.
func startGoWorker(t *testing.T, ctx context.Context, opts ...func(*celery.WorkerConfig)) *goWorkerEnv {
	t.Helper()
	e := &goWorkerEnv{
		endpoint: testenv.SQSEndpoint(t),
		redisURL: testenv.RedisURL(t),
		goQueue:  testenv.UniqueName("worker-go"),
		pyQueue:  testenv.UniqueName("worker-py"),
		runs:     map[string][]int{},
	}
	logger := watermill.NopLogger{}
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: interopConfig(e.endpoint)}, logger)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	sub, err := kombu.NewSubscriber(kombu.SubscriberConfig{
		Config:          interopConfig(e.endpoint),
		WaitTimeSeconds: 1,
		PollingInterval: 50 * time.Millisecond,
		CloseTimeout:    5 * time.Second,
		PrefetchCount:   4,
	}, logger)
	require.NoError(t, err)
	require.NoError(t, sub.SubscribeInitialize(e.goQueue))
	require.NoError(t, sub.SubscribeInitialize(e.pyQueue))

	results, err := redisbackend.New(redisbackend.Config{URL: e.redisURL, Expires: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { _ = results.Close() })

	cfg := celery.WorkerConfig{
		Publisher:    pub,
		Results:      results,
		DefaultQueue: e.goQueue,
		TaskQueues:   map[string]string{"interop.py.*": e.pyQueue},
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.extended = cfg.ResultExtended
	w, err := celery.NewWorker(cfg, logger)
	require.NoError(t, err)
	e.worker = w

	type addArgs struct {
		A int `json:"a"`
		B int `json:"b"`
	}
	celery.RegisterFunc(w, "interop.go.add", func(_ context.Context, a addArgs) (int, error) { return a.A + a.B, nil })
	celery.RegisterFunc(w, "interop.go.double", func(_ context.Context, x int) (int, error) { return 2 * x, nil })
	w.Register("interop.go.ran_at", func(_ context.Context, task *celery.Task) (any, error) {
		e.record(task)
		return map[string]float64{"ran": float64(time.Now().UnixMicro()) / 1e6}, nil
	})
	w.Register("interop.go.flaky", func(_ context.Context, task *celery.Task) (any, error) {
		e.record(task)
		if task.Retries < 3 {
			return nil, celery.Retry(500*time.Millisecond, errors.New("not yet"))
		}
		return map[string]any{"retries": task.Retries, "args": task.Args}, nil
	})
	w.Register("interop.go.sleepy", func(ctx context.Context, task *celery.Task) (any, error) {
		soft, ok := celery.SoftTimeLimit(ctx)
		deadline, _ := ctx.Deadline()
		e.mu.Lock()
		e.limits = append(e.limits, [2]time.Duration{time.Until(deadline), time.Until(soft)})
		e.mu.Unlock()
		if !ok {
			return nil, errors.New("no soft time limit")
		}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	celery.RegisterFunc(w, "interop.go.boom", func(_ context.Context, msg string) (any, error) {
		return nil, errors.New(msg)
	})

	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, logger)
	require.NoError(t, err)
	router.AddConsumerHandler("go-worker", e.goQueue, sub, w.Handler())
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
	select {
	case <-router.Running():
	case <-time.After(20 * time.Second):
		t.Fatal("the router did not start")
	}
	return e
}

// client runs interop/worker_client.py CASE and decodes what it prints.
func (e *goWorkerEnv) client(t *testing.T, ctx context.Context, name string) map[string]any {
	t.Helper()
	return e.script(t, ctx, "interop/worker_client.py", name)
}

// script runs a Python client script of interop/ with a case name and decodes what it prints.
func (e *goWorkerEnv) script(t *testing.T, ctx context.Context, script, name string) map[string]any {
	t.Helper()
	cmd := exec.CommandContext(ctx, testenv.Python(t), script, name)
	cmd.Dir = testenv.RepoRoot(t)
	cmd.Env = append(os.Environ(), e.pyEnv()...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", script, name, err, stderr.String())
	}
	var out map[string]any
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &out), stdout.String())
	t.Logf("%s %s: %s (%.1fs)", script, name, strings.TrimSpace(stdout.String()), time.Since(start).Seconds())
	return out
}

func (e *goWorkerEnv) pyEnv() []string {
	env := []string{
		testenv.EnvSQSEndpoint + "=" + e.endpoint,
		testenv.EnvRedisURL + "=" + e.redisURL,
		"KOMBU_WORKER_GO_QUEUE=" + e.goQueue,
		"KOMBU_WORKER_PY_QUEUE=" + e.pyQueue,
		"KOMBU_WORKER_CLIENT_TIMEOUT=20",
	}
	if e.extended {
		env = append(env, "KOMBU_RESULT_EXTENDED=1")
	}
	return env
}

// startPyWorker starts a Celery worker for the interop.py.* tasks, in its own process group,
// stopped when the test ends.
func (e *goWorkerEnv) startPyWorker(t *testing.T) {
	t.Helper()
	testenv.StartCeleryWorker(t, "interop.worker_pyapp", []string{e.pyQueue}, e.pyEnv()...)
}

// TestWorkerInterop calls the Go worker's tasks from a real Celery client (SQS broker on
// ElasticMQ, Redis result backend) and checks what the client gets back.
func TestWorkerInterop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := startGoWorker(t, ctx)
	e.startPyWorker(t)

	t.Run("delay_get", func(t *testing.T) {
		out := e.client(t, ctx, "add")
		assert.Equal(t, 5.0, out["result"])
		assert.Equal(t, celery.StateSuccess, out["state"])
	})
	t.Run("eta", func(t *testing.T) {
		out := e.client(t, ctx, "eta")
		ran, due := out["ran"].(float64), out["due"].(float64)
		assert.GreaterOrEqual(t, ran, due-0.05, "ran before its eta")
		assert.LessOrEqual(t, ran, due+3, "ran more than 3s after its eta")
		t.Logf("ran %.3fs after its eta", ran-due)
	})
	t.Run("expires", func(t *testing.T) {
		out := e.client(t, ctx, "expires")
		assert.Equal(t, celery.StateRevoked, out["state"])
		assert.Equal(t, "TaskRevokedError", out["raised"])
		meta, _ := out["meta"].(map[string]any)
		res, _ := meta["result"].(map[string]any)
		assert.Equal(t, "TaskRevokedError", res["exc_type"], "%v", meta)
		assert.Equal(t, []any{"expired"}, res["exc_message"])
		assert.Equal(t, "celery.exceptions", res["exc_module"])
		assert.NotEmpty(t, meta["date_done"])
		assert.InDelta(t, 3600, out["ttl"], 10, "the key's TTL is the backend's Expires")
		assert.Empty(t, e.runsOf(out["id"].(string)), "the expired task ran")
	})
	t.Run("retry", func(t *testing.T) {
		out := e.client(t, ctx, "retry")
		res, _ := out["result"].(map[string]any)
		assert.Equal(t, 3.0, res["retries"], "%v", out)
		assert.Equal(t, []any{"x"}, res["args"])
		assert.Equal(t, []int{0, 1, 2, 3}, e.runsOf(out["id"].(string)))
		assert.GreaterOrEqual(t, out["elapsed"].(float64), 1.5, "the retries did not wait their countdown")
	})
	t.Run("chain", func(t *testing.T) {
		out := e.client(t, ctx, "chain")
		assert.Equal(t, 32.0, out["result"], "(1+10)*2+10")
		assert.Equal(t, celery.StateSuccess, out["state"])
	})
	t.Run("group", func(t *testing.T) {
		out := e.client(t, ctx, "group")
		assert.Equal(t, []any{2.0, 4.0, 6.0}, out["result"])
	})
	t.Run("time_limit", func(t *testing.T) {
		out := e.client(t, ctx, "timelimit")
		assert.Equal(t, celery.StateFailure, out["state"])
		assert.Equal(t, "TimeLimitExceeded", out["raised"])
		assert.Equal(t, "billiard.exceptions", out["module"])
		assert.Equal(t, []any{1.0}, out["args"])
		// Failed at its hard limit (1 s), not before; the round trip adds what the machine's load adds.
		assert.GreaterOrEqual(t, out["elapsed"], 0.9, "failed before its hard limit")
		assert.Less(t, out["elapsed"], 8.0, "the hard limit did not stop the wait")
		e.mu.Lock()
		defer e.mu.Unlock()
		require.Len(t, e.limits, 1)
		assert.InDelta(t, time.Second, e.limits[0][0], float64(200*time.Millisecond), "hard limit as the context's deadline")
		assert.InDelta(t, 500*time.Millisecond, e.limits[0][1], float64(200*time.Millisecond), "soft limit from SoftTimeLimit")
	})
	t.Run("link_and_link_error", func(t *testing.T) {
		out := e.client(t, ctx, "links")
		assert.Equal(t, 15.0, out["callback"], "add(2, 3) then add_ten(5)")
		assert.Equal(t, []any{out["callback_id"]}, out["children"], "AsyncResult.children lists the callback")
		errback, _ := out["errback"].(map[string]any)
		assert.Equal(t, out["bad_id"], errback["failed"], "the errback gets the failed task's id")
		assert.Equal(t, celery.StateFailure, errback["state"], "FAILURE is stored before the errback is sent")
	})
	t.Run("chain_link_error", func(t *testing.T) {
		// The errback of a chain the Go worker sends as a link runs when a later step fails.
		out := e.client(t, ctx, "chain_link_error")
		errback, _ := out["errback"].(map[string]any)
		assert.Equal(t, celery.StateFailure, errback["state"], "%v", out)
		assert.NotEmpty(t, errback["failed"])
		assert.NotEqual(t, out["ok_id"], errback["failed"], "the failed task is the chain's second step")
	})
	t.Run("failure", func(t *testing.T) {
		out := e.client(t, ctx, "fail")
		assert.Equal(t, celery.StateFailure, out["state"])
		assert.Equal(t, "Exception", out["raised"])
		assert.Equal(t, "the Go task broke", out["message"])
		assert.Contains(t, out["traceback"], "interop.go.boom")
	})
}
