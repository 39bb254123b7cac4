package celery_test

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
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
	"github.com/watermill-kombu/watermill-kombu/celery/redisbackend"
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
	redisURL := testenv.RedisURL(t)
	goQueue, pyQueue := testenv.UniqueName("unknown-go"), testenv.UniqueName("unknown-py")
	goURL := testenv.CreateQueue(t, client, goQueue, nil)
	pyURL := testenv.CreateQueue(t, client, pyQueue, nil)
	env := []string{testenv.EnvSQSEndpoint + "=" + ep, testenv.EnvRedisURL + "=" + redisURL,
		"KOMBU_WORKER_PY_QUEUE=" + pyQueue, "KOMBU_WORKER_GO_QUEUE=" + goQueue, "KOMBU_WORKER_CLIENT_TIMEOUT=30"}

	assertGone := func(t *testing.T, url string) {
		t.Helper()
		time.Sleep(2 * time.Second) // let a redelivery happen, if the message went back
		out, err := client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
			QueueUrl: aws.String(url),
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages,
				types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
		require.NoError(t, err)
		visible, _ := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
		inFlight, _ := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
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
		pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: interopConfig(ep)}, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = pub.Close() })
		sub, err := kombu.NewSubscriber(kombu.SubscriberConfig{Config: interopConfig(ep), WaitTimeSeconds: 1,
			PollingInterval: 50 * time.Millisecond, CloseTimeout: 5 * time.Second}, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = sub.Close() })
		results, err := redisbackend.New(redisbackend.Config{URL: redisURL, Expires: time.Hour})
		require.NoError(t, err)
		t.Cleanup(func() { _ = results.Close() })
		w, err := celery.NewWorker(celery.WorkerConfig{Publisher: pub, Results: results}, logger)
		require.NoError(t, err)
		r, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, watermill.NopLogger{})
		require.NoError(t, err)
		r.AddConsumerHandler("go-worker", goQueue, sub, w.Handler())
		testenv.RunRouter(t, r)

		const n = 3
		raised, messages := unknownTaskClient(t, ctx, env, goQueue, n)
		assert.Equal(t, []any{"NotRegistered", "NotRegistered", "NotRegistered"}, raised)
		t.Logf("Go worker: %v %v", raised, messages)
		assertGone(t, goURL)
		assert.Equal(t, int64(n), errorLines.Load(), "one error line per message")
	})
}
