package celery_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/watermill-kombu/watermill-kombu/celery"
)

// failingStore is a result backend in memory whose Store fails for one state, failures
// times.
type failingStore struct {
	memoryResults
	mu       sync.Mutex
	state    string
	failures int
}

func (b *failingStore) Store(ctx context.Context, r celery.TaskResult) error {
	b.mu.Lock()
	if r.Status == b.state && b.failures > 0 {
		b.failures--
		b.mu.Unlock()
		return errors.New("result store down")
	}
	b.mu.Unlock()
	return b.memoryResults.Store(ctx, r)
}

// loggedErrors returns the Error-level messages a capture logger holds for task id.
func loggedErrors(logger *watermill.CaptureLoggerAdapter, id string) []watermill.CapturedMessage {
	var out []watermill.CapturedMessage
	for _, m := range logger.Captured()[watermill.ErrorLogLevel] {
		if m.Fields["task_id"] == id {
			out = append(out, m)
		}
	}
	return out
}

// TestWorkerRetryStoreFailureAcks: once the retry is sent, a failure to store RETRY is
// logged and the message acked; a Nack would run the task again and send a second retry.
func TestWorkerRetryStoreFailureAcks(t *testing.T) {
	pub, res := &sentMessages{}, &failingStore{state: celery.StateRetry, failures: 1}
	logger := watermill.NewCaptureLogger()
	w, err := celery.NewWorker(celery.WorkerConfig{Publisher: pub, Results: res}, logger)
	require.NoError(t, err)
	var runs atomic.Int32
	w.Register("go.flaky", func(context.Context, *celery.Task) (any, error) {
		runs.Add(1)
		return nil, celery.Retry(time.Second, errors.New("later"))
	})
	msg, id := received(t, "work-q", "go.flaky", nil, nil)
	require.NoError(t, w.Handle(msg), "the retry was sent: the message is acked")
	assert.Equal(t, int32(1), runs.Load())
	sent := pub.all()
	require.Len(t, sent, 1, "one retry")
	assert.Equal(t, id, sent[0].task.ID)
	assert.Equal(t, 1, sent[0].task.Retries)
	assert.Empty(t, res.states(id), "RETRY could not be stored")
	assert.Len(t, loggedErrors(logger, id), 1, "the lost RETRY state is logged as an error")
}
