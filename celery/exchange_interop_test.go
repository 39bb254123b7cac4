package celery_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// TestExchangeFanoutToCelery fans a Celery task out to a queue a real Celery worker consumes
// and to one the Go subscriber reads; both get it, with the exchange in delivery_info.
func TestExchangeFanoutToCelery(t *testing.T) {
	endpoint := testenv.SQSEndpoint(t)
	python := testenv.Python(t)
	client := testenv.SQSClient(t, endpoint)
	qcelery, qgo := testenv.UniqueName("ex-celery"), testenv.UniqueName("ex-go")
	testenv.CreateQueue(t, client, kombu.CanonicalQueueName("", qcelery), nil)
	ugo := testenv.CreateQueue(t, client, kombu.CanonicalQueueName("", qgo), nil)
	name := testenv.UniqueName("broadcast")
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: kombu.Config{
		Region:          "us-east-1",
		EndpointURL:     endpoint,
		AccessKeyID:     "test",
		SecretAccessKey: "test",
		Exchanges: map[string]kombu.Exchange{name: {Type: kombu.ExchangeFanout, Bindings: []kombu.Binding{
			{Queue: qcelery}, {Queue: qgo},
		}}},
	}}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })

	out := filepath.Join(t.TempDir(), "tasks.jsonl")
	startExchangeWorker(t, python, endpoint, qcelery, out)

	task, err := celery.NewTask("exchange.record", []any{"hello", 42}, map[string]any{"from": "go"})
	require.NoError(t, err)
	task.Metadata.Set(kombu.MetadataRoutingKey, "greetings")
	start := time.Now()
	require.NoError(t, pub.Publish(name, task))

	// The Go side of the fanout: the envelope names the exchange.
	var got *kombu.Envelope
	require.Eventually(t, func() bool {
		res, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(ugo), MaxNumberOfMessages: 1, WaitTimeSeconds: 1,
		})
		require.NoError(t, err)
		if len(res.Messages) == 0 {
			return false
		}
		got, err = kombu.DecodeEnvelope(aws.ToString(res.Messages[0].Body))
		require.NoError(t, err)
		return true
	}, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, task.UUID, got.Properties.CorrelationID)
	assert.Equal(t, name, got.Properties.Exchange)

	var rec struct {
		ID         string         `json:"id"`
		Args       []any          `json:"args"`
		Kwargs     map[string]any `json:"kwargs"`
		Exchange   string         `json:"exchange"`
		RoutingKey string         `json:"routing_key"`
	}
	deadline := time.Now().Add(45 * time.Second)
	for rec.ID == "" {
		if f, err := os.Open(out); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				require.NoError(t, json.Unmarshal(sc.Bytes(), &rec))
			}
			_ = f.Close()
		}
		if rec.ID == "" {
			require.True(t, time.Now().Before(deadline), "the Celery worker did not run the task")
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Logf("Celery ran the fanned-out task %s after %s", rec.ID, time.Since(start).Round(time.Millisecond))
	assert.Equal(t, task.UUID, rec.ID)
	assert.Equal(t, []any{"hello", float64(42)}, rec.Args)
	assert.Equal(t, map[string]any{"from": "go"}, rec.Kwargs)
	assert.Equal(t, name, rec.Exchange)
	assert.Equal(t, "greetings", rec.RoutingKey)
}

// startExchangeWorker runs a Celery worker of interop/exchange_worker_app.py on queue, in its
// own process group, stopped when the test ends.
func startExchangeWorker(t *testing.T, python, endpoint, queue, out string) {
	t.Helper()
	testenv.StartCeleryWorker(t, "interop.exchange_worker_app", []string{queue},
		testenv.EnvSQSEndpoint+"="+endpoint, "KOMBU_EXCHANGE_QUEUE="+queue, "KOMBU_EXCHANGE_OUT="+out)
}
