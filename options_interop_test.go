package kombu_test

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// TestSharedTransportOptions: a real Celery app and the Go subscriber read the same
// broker_transport_options JSON and meet on the same SQS queue (prefix and name mangling
// included); the Go side also applies the file's backoff policy to the Celery task.
func TestSharedTransportOptions(t *testing.T) {
	endpoint := testenv.SQSEndpoint(t)
	u, err := url.Parse(endpoint)
	require.NoError(t, err)
	brokerURL := "sqs://test:test@" + u.Host
	optionsPath := filepath.Join(testenv.RepoRoot(t), "testdata", "celery_transport_options.json")
	raw, err := os.ReadFile(optionsPath)
	require.NoError(t, err)

	var options map[string]any
	require.NoError(t, json.Unmarshal(raw, &options))
	// The broker URL, then the file's options, as Celery combines them.
	opts, err := kombu.ParseCeleryBroker(brokerURL, options)
	require.NoError(t, err)
	// A fresh prefix per run keeps the queues apart.
	prefix := testenv.UniqueName("shared") + "."
	opts.Config.QueueNamePrefix = prefix
	require.Equal(t, 120*time.Second, opts.Config.VisibilityTimeout)
	require.Equal(t, 1, opts.WaitTimeSeconds)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.Python(t), filepath.Join(testenv.RepoRoot(t), "interop", "shared_options_producer.py"),
		brokerURL, optionsPath, "tasks.shared", prefix)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "celery producer: %s", out)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	taskID := lines[len(lines)-1]

	// Celery created the queue under Kombu's name for prefix + "tasks.shared".
	sqsClient := testenv.SQSClient(t, endpoint)
	_, err = sqsClient.GetQueueUrl(ctx, sqsGetQueueURL(kombu.CanonicalQueueName(prefix, "tasks.shared")))
	require.NoError(t, err, "queue %s", kombu.CanonicalQueueName(prefix, "tasks.shared"))

	sub, err := kombu.NewSubscriber(opts.SubscriberConfig, nil)
	require.NoError(t, err)
	defer sub.Close()
	ch, err := sub.Subscribe(ctx, "tasks.shared")
	require.NoError(t, err)

	// First delivery: Nack; the file's policy {1: 2} keeps it away for 2 s.
	first := <-ch
	task, err := celery.TaskFromMessage(first)
	require.NoError(t, err)
	require.Equal(t, "proj.tasks.flaky", task.Name)
	require.Equal(t, taskID, task.ID)
	var n int
	require.NoError(t, task.DecodeArgs(&n))
	require.Equal(t, 7, n)
	nacked := time.Now()
	first.Nack()

	select {
	case again := <-ch:
		waited := time.Since(nacked)
		require.Equal(t, taskID, again.UUID)
		require.Equal(t, "2", again.Metadata.Get(kombu.MetadataReceiveCount))
		require.GreaterOrEqual(t, waited, 1500*time.Millisecond, "backoff policy not applied")
		require.Less(t, waited, 8*time.Second)
		again.Ack()
	case <-ctx.Done():
		t.Fatal("the Nacked task did not come back")
	}
}

func sqsGetQueueURL(name string) *sqs.GetQueueUrlInput {
	return &sqs.GetQueueUrlInput{QueueName: aws.String(name)}
}
