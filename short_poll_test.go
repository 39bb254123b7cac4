package kombu_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// TestShortPollingOverridesQueueWaitTime: wait_time_seconds 0 asks SQS for a short poll even
// on a queue whose ReceiveMessageWaitTimeSeconds attribute makes receives long polls by
// default, as Kombu does (it sends WaitTimeSeconds=0). Each receive on the empty queue then
// returns at once, so many of them go out in a few seconds rather than one that waits 20 s.
func TestShortPollingOverridesQueueWaitTime(t *testing.T) {
	endpoint := testenv.SQSEndpoint(t)
	u, err := url.Parse(endpoint)
	require.NoError(t, err)
	raw := testenv.SQSClient(t, endpoint)
	name := testenv.UniqueName("short-poll")
	out, err := raw.CreateQueue(context.Background(), &sqs.CreateQueueInput{
		QueueName:  aws.String(name),
		Attributes: map[string]string{"ReceiveMessageWaitTimeSeconds": "20"},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = raw.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl}) })

	o, err := kombu.ParseCeleryBroker("sqs://test:test@"+u.Host, map[string]any{
		"region": "us-east-1", "wait_time_seconds": 0, "polling_interval": 0.1,
	})
	require.NoError(t, err)
	o.CloseTimeout = 5 * time.Second
	sub, err := kombu.NewSubscriber(o.SubscriberConfig, nil)
	require.NoError(t, err)
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err = sub.Subscribe(ctx, name)
	require.NoError(t, err)

	time.Sleep(3 * time.Second)
	receives := sub.Stats().Receive
	// About 25 at a 0.1 s polling interval; a receive that long-polls makes it 1.
	require.GreaterOrEqual(t, receives, int64(5), "receives in 3 s with wait_time_seconds 0")
}
