package kombu_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// countingLogger counts the error lines that mention a word.
type countingLogger struct {
	watermill.LoggerAdapter
	word string
	n    *atomic.Int64
}

func (l countingLogger) Error(msg string, err error, fields watermill.LogFields) {
	if strings.Contains(msg, l.word) {
		l.n.Add(1)
	}
}

func (l countingLogger) With(watermill.LogFields) watermill.LoggerAdapter { return l }

// unknownTaskClient runs interop/unknown_task_client.py: n tasks nobody registered, sent to
// queue by a real Celery client, and what the client raised for each.
func unknownTaskClient(t *testing.T, ctx context.Context, env []string, queue string, n int) (raised, messages []any) {
	t.Helper()
	cmd := exec.CommandContext(ctx, testenv.Python(t), "interop/unknown_task_client.py", queue, strconv.Itoa(n))
	cmd.Dir = testenv.RepoRoot(t)
	cmd.Env = append(cmd.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "unknown_task_client.py: %s", stderr.String())
	var out struct{ Raised, Messages []any }
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &out), stdout.String())
	return out.Raised, out.Messages
}

// TestUnknownTaskAsCelery: a task nobody registered fails with NotRegistered for the Celery
// client and is removed from the queue, by a real Celery 5.7 worker and by the Go worker
// alike; the Go worker logs it once per message, not once per delivery.
func TestUnknownTaskAsCelery(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	redisURL := testRedisURL(t)
	goQueue, pyQueue := testenv.UniqueName("unknown-go"), testenv.UniqueName("unknown-py")
	goURL := semQueue(t, client, goQueue, 30*time.Second)
	pyURL := semQueue(t, client, pyQueue, 30*time.Second)
	env := []string{testenv.EnvSQSEndpoint + "=" + ep, envRedisURL + "=" + redisURL,
		"KOMBU_WORKER_PY_QUEUE=" + pyQueue, "KOMBU_WORKER_GO_QUEUE=" + goQueue, "KOMBU_WORKER_CLIENT_TIMEOUT=30"}

	assertGone := func(t *testing.T, url string) {
		t.Helper()
		time.Sleep(2 * time.Second) // let a redelivery happen, if the message went back
		visible, inFlight := semQueueCounts(t, client, url)
		assert.Zero(t, visible+inFlight, "the message is still in the queue (%d visible, %d in flight)", visible, inFlight)
	}

	t.Run("celery", func(t *testing.T) {
		testenv.StartCeleryWorker(t, "interop.worker_pyapp", []string{pyQueue}, env...)
		raised, messages := unknownTaskClient(t, ctx, env, pyQueue, 1)
		assert.Equal(t, []any{"NotRegistered"}, raised)
		t.Logf("Celery worker: %v %v", raised, messages)
		assertGone(t, pyURL)
	})

	t.Run("go", func(t *testing.T) {
		var errorLines atomic.Int64
		logger := countingLogger{LoggerAdapter: watermill.NopLogger{}, word: "unregistered", n: &errorLines}
		cfg := semConfig(ep, 30*time.Second)
		pub := semPublisher(t, cfg)
		sub := semSubscriber(t, semSubConfig(cfg))
		results, err := kombu.NewRedisBackend(kombu.RedisBackendConfig{URL: redisURL, Expires: time.Hour})
		require.NoError(t, err)
		t.Cleanup(func() { _ = results.Close() })
		w, err := kombu.NewWorker(kombu.WorkerConfig{Publisher: pub, Results: results}, logger)
		require.NoError(t, err)
		r := rtRouter(t)
		r.AddConsumerHandler("go-worker", goQueue, sub, w.Handler())
		rtRun(t, r)

		const n = 3
		raised, messages := unknownTaskClient(t, ctx, env, goQueue, n)
		assert.Equal(t, []any{"NotRegistered", "NotRegistered", "NotRegistered"}, raised)
		t.Logf("Go worker: %v %v", raised, messages)
		assertGone(t, goURL)
		assert.Equal(t, int64(n), errorLines.Load(), "one error line per message")
	})
}
