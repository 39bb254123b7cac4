package kombu_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// TestPoisonMessageBacksOff: with the default configuration (no BackoffPolicy), a Router
// handler that fails on every delivery gets its first redeliveries quickly, then ever more
// slowly: after its first 10 s the message costs at most one SQS request per second.
func TestPoisonMessageBacksOff(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("poison")
	semQueue(t, client, topic, 30*time.Second)
	cfg := semConfig(ep, 30*time.Second)
	pub := semPublisher(t, cfg)
	sub := semSubscriber(t, kombu.SubscriberConfig{Config: cfg}) // the defaults

	var deliveries atomic.Int64
	r := rtRouter(t)
	r.AddConsumerHandler("poison", topic, sub, func(*message.Message) error {
		deliveries.Add(1)
		return errors.New("this message always fails")
	})
	rtRun(t, r)
	semPublishN(t, pub, topic, 1)

	start := time.Now()
	for deliveries.Load() == 0 && time.Since(start) < 15*time.Second {
		time.Sleep(20 * time.Millisecond)
	}
	require.NotZero(t, deliveries.Load(), "the message never arrived")
	start = time.Now()
	time.Sleep(10 * time.Second)
	before, deliveriesBefore := sub.Stats(), deliveries.Load()
	const window = 12 * time.Second
	time.Sleep(window)
	after, deliveriesAfter := sub.Stats(), deliveries.Load()

	requests := after.Total() - before.Total()
	rate := float64(requests) / window.Seconds()
	t.Logf("%d deliveries in the first 10 s, %d in the next %s; %d SQS requests in that window (%.2f/s)",
		deliveriesBefore, deliveriesAfter-deliveriesBefore, window, requests, rate)
	require.LessOrEqual(t, rate, 1.0, "a failing message must cost at most 1 request/s after its first 10 s")
	require.GreaterOrEqual(t, deliveriesBefore, int64(3), "the first redeliveries should be quick")
}

// TestPoisonMessageDeadLetterQueue: where the queue has a redrive policy, SQS moves the failing
// message to the dead-letter queue after maxReceiveCount deliveries; the default backoff lets
// the first redeliveries happen at once, so that takes seconds, not minutes.
func TestPoisonMessageDeadLetterQueue(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	ctx := context.Background()
	topic := testenv.UniqueName("poison-redrive")

	dlq, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(kombu.CanonicalQueueName("", topic+"-dlq"))})
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = client.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: dlq.QueueUrl}) })
	attrs, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: dlq.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	require.NoError(t, err)
	const maxReceiveCount = 3
	main, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName: aws.String(kombu.CanonicalQueueName("", topic)),
		Attributes: map[string]string{
			"VisibilityTimeout": "30",
			"RedrivePolicy": fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`,
				attrs.Attributes[string(types.QueueAttributeNameQueueArn)], maxReceiveCount),
		}})
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = client.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: main.QueueUrl}) })

	cfg := semConfig(ep, 30*time.Second)
	pub := semPublisher(t, cfg)
	sc := semSubConfig(cfg)
	sub := semSubscriber(t, sc)
	msgs, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)
	uuid := semPublishN(t, pub, topic, 1)[0]

	var deliveries atomic.Int64
	go func() {
		for m := range msgs {
			deliveries.Add(1)
			m.Nack()
		}
	}()

	var dead *types.Message
	deadline := time.Now().Add(45 * time.Second)
	for dead == nil && time.Now().Before(deadline) {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: dlq.QueueUrl, WaitTimeSeconds: 1})
		require.NoError(t, err)
		if len(out.Messages) > 0 {
			dead = &out.Messages[0]
		}
	}
	require.NotNil(t, dead, "the message did not reach the dead-letter queue (%d deliveries)", deliveries.Load())
	got, err := kombu.EnvelopeMarshaler{}.Unmarshal(topic, dead)
	require.NoError(t, err)
	require.Equal(t, uuid, got.UUID, "another message in the dead-letter queue")
	require.Equal(t, int64(maxReceiveCount), deliveries.Load(), "deliveries before the redrive")
}
