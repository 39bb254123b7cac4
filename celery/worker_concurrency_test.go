package celery_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// TestWorkerConcurrentTasks: a Worker behind a router runs as many tasks at once as the
// subscription's Concurrency, as a Celery worker runs worker_concurrency tasks at once.
func TestWorkerConcurrentTasks(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	cfg := kombu.Config{EndpointURL: ep, Region: "us-east-1", AccessKeyID: "test", SecretAccessKey: "test",
		QueueNamePrefix: testenv.UniqueName("worker-conc") + "-"}
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	const concurrency, tasks = 4, 12
	sub, err := kombu.NewSubscriber(kombu.SubscriberConfig{Config: cfg, WaitTimeSeconds: 1, Concurrency: concurrency,
		PollingInterval: 50 * time.Millisecond, CloseTimeout: 5 * time.Second}, nil)
	require.NoError(t, err)
	require.NoError(t, sub.SubscribeInitialize("tasks"))
	t.Cleanup(func() {
		client := testenv.SQSClient(t, ep)
		name := kombu.CanonicalQueueName(cfg.QueueNamePrefix, "tasks")
		if u, err := client.GetQueueUrl(context.Background(), &sqs.GetQueueUrlInput{QueueName: aws.String(name)}); err == nil {
			_, _ = client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: u.QueueUrl})
		}
	})

	results := &memoryResults{}
	w, err := celery.NewWorker(celery.WorkerConfig{Publisher: pub, Results: results}, watermill.NopLogger{})
	require.NoError(t, err)
	var running, peak atomic.Int32
	celery.RegisterFunc(w, "proj.tasks.io", func(ctx context.Context, n int) (int, error) {
		now := running.Add(1)
		for p := peak.Load(); now > p && !peak.CompareAndSwap(p, now); p = peak.Load() {
		}
		time.Sleep(400 * time.Millisecond) // waits on I/O
		running.Add(-1)
		return n, nil
	})

	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, watermill.NopLogger{})
	require.NoError(t, err)
	router.AddConsumerHandler("go-worker", "tasks", sub, w.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = router.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = sub.Close()
	})
	<-router.Running()

	ids := make([]string, tasks)
	for i := range ids {
		msg, err := celery.NewTask("proj.tasks.io", []any{i}, nil)
		require.NoError(t, err)
		ids[i] = msg.UUID
		require.NoError(t, pub.Publish("tasks", msg))
	}
	require.Eventually(t, func() bool {
		for _, id := range ids {
			if s := results.states(id); len(s) == 0 || s[len(s)-1] != celery.StateSuccess {
				return false
			}
		}
		return true
	}, 60*time.Second, 50*time.Millisecond)
	t.Logf("peak tasks at once: %d (Concurrency %d)", peak.Load(), concurrency)
	require.Equal(t, int32(concurrency), peak.Load())
}
