package kombu

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/require"

	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// A deferral whose timer fires as the subscription stops is settled before the Subscriber's
// acker closes: the task is made invisible until its eta, not reported as a failed op and left
// to come back when its last heartbeat runs out.
func TestETATimerFiringAtCloseIsSent(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("eta-close")
	cfg := Config{Region: "us-east-1", EndpointURL: ep, AccessKeyID: "test", SecretAccessKey: "test", VisibilityTimeout: 30 * time.Second}
	out, err := client.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(CanonicalQueueName("", topic))})
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl}) })
	pub, err := NewPublisher(PublisherConfig{Config: cfg}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	sub, err := NewSubscriber(SubscriberConfig{Config: cfg, WaitTimeSeconds: 1, CloseTimeout: 5 * time.Second}, nil)
	require.NoError(t, err)

	// The timer waits until Close has returned, or a while when Close waits for it.
	var closeReturned atomic.Bool
	firing := make(chan struct{})
	sub.etaSettling = func() {
		close(firing)
		for end := time.Now().Add(3 * time.Second); !closeReturned.Load() && time.Now().Before(end); {
			time.Sleep(10 * time.Millisecond)
		}
	}
	msgs, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	m := message.NewMessage("eta-task", []byte("{}"))
	// The eta is a minute and half a second ahead: the half second is waited before the
	// message is made invisible for the minute.
	m.Metadata.Set("eta", time.Now().UTC().Add(time.Minute+500*time.Millisecond).Format("2006-01-02T15:04:05.000000+00:00"))
	require.NoError(t, pub.Publish(topic, m))
	select {
	case <-firing:
	case got := <-msgs:
		t.Fatalf("the task was handed out before its eta: %v", got.Metadata)
	case <-time.After(10 * time.Second):
		t.Fatal("the deferral's timer did not fire")
	}
	require.NoError(t, sub.Close())
	closeReturned.Store(true)
	require.Never(t, func() bool { return sub.FailedAcks() != 0 }, time.Second, 10*time.Millisecond, "the deferral was not sent")
}
