package kombu_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// TestSNSFanoutMissingTopic: with DisableTopicCreation, publishing to an exchange without a
// topic fails with a channel error naming the exchange (SNS's NotFoundException inside, as
// when SNS itself says so), and sends nothing.
func TestSNSFanoutMissingTopic(t *testing.T) {
	endpoint := testenv.MotoEndpoint(t)
	exchange := testenv.UniqueName("fanout-missing")
	cfg := motoConfig(endpoint, map[string]kombu.Exchange{exchange: {Type: kombu.ExchangeFanout}})
	cfg.DisableTopicCreation = true
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, nil)
	require.NoError(t, err)
	defer pub.Close()
	err = pub.Publish(exchange, message.NewMessage(watermill.NewUUID(), []byte("x")))
	var notFound *snstypes.NotFoundException
	require.ErrorAs(t, err, &notFound)
	require.ErrorIs(t, err, kombu.ErrChannel)
	var e *kombu.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, exchange, e.Exchange)
	require.Contains(t, err.Error(), exchange)
	require.Zero(t, pub.Stats().SNSPublish)

	// Once the topic exists, it is found by name.
	_, err = testenv.SNSClient(t, endpoint).CreateTopic(context.Background(), &sns.CreateTopicInput{Name: aws.String(exchange)})
	require.NoError(t, err)
	require.NoError(t, pub.Publish(exchange, message.NewMessage(watermill.NewUUID(), []byte("x"))))
}

// TestSNSFanoutTopicDeleted: when the topic of an exchange is deleted while a Publisher has it
// cached, the next publish creates it again, subscribes the bound queue again and delivers.
func TestSNSFanoutTopicDeleted(t *testing.T) {
	endpoint := testenv.MotoEndpoint(t)
	exchange := testenv.UniqueName("fanout-deleted")
	q := testenv.UniqueName("fanout-deleted-q")
	cfg := motoConfig(endpoint, map[string]kombu.Exchange{exchange: fanoutExchange(q)})
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, nil)
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.Publish(exchange, message.NewMessage(watermill.NewUUID(), []byte("before"))))

	snsClient := testenv.SNSClient(t, endpoint)
	_, err = snsClient.DeleteTopic(context.Background(), &sns.DeleteTopicInput{TopicArn: aws.String(topicARNOf(t, snsClient, exchange))})
	require.NoError(t, err)
	require.NoError(t, pub.Publish(exchange, message.NewMessage(watermill.NewUUID(), []byte("after"))))

	sub, err := kombu.NewSubscriber(quickSubscriberConfig(testConfig(endpoint)), nil)
	require.NoError(t, err)
	defer sub.Close()
	ch, err := sub.Subscribe(context.Background(), q)
	require.NoError(t, err)
	got := receiveAcked(t, ch, 2, 30*time.Second)
	require.ElementsMatch(t, []string{"before", "after"}, got)
}

// TestSNSFanoutWithoutRawDelivery: a queue subscribed by hand without raw message delivery
// receives SNS notifications wrapping the envelope; the Subscriber decodes them like any
// other message, message attributes included.
func TestSNSFanoutWithoutRawDelivery(t *testing.T) {
	endpoint := testenv.MotoEndpoint(t)
	ctx := context.Background()
	exchange := testenv.UniqueName("fanout-wrapped")
	q := testenv.UniqueName("fanout-wrapped-q")
	snsClient, sqsClient := testenv.SNSClient(t, endpoint), testenv.SQSClient(t, endpoint)
	topic, err := snsClient.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(exchange)})
	require.NoError(t, err)
	url := createRawQueue(t, sqsClient, q)
	attrs, err := sqsClient.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	require.NoError(t, err)
	_, err = snsClient.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(attrs.Attributes["QueueArn"])})
	require.NoError(t, err)

	// Go publishes to the exchange without knowing the queue.
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: motoConfig(endpoint, map[string]kombu.Exchange{exchange: {Type: kombu.ExchangeFanout}})}, nil)
	require.NoError(t, err)
	defer pub.Close()
	msg := message.NewMessage(watermill.NewUUID(), []byte(`{"wrapped":true}`))
	msg.Metadata.Set("trace", "t-1")
	msg.Metadata.Set(kombu.MetadataAttributePrefix+"tenant", "acme")
	require.NoError(t, pub.Publish(exchange, msg))

	// The body really is a notification.
	peek, err := sqsClient.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 5})
	require.NoError(t, err)
	require.Len(t, peek.Messages, 1)
	require.Contains(t, aws.ToString(peek.Messages[0].Body), `"Type": "Notification"`)
	_, err = sqsClient.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(url), ReceiptHandle: peek.Messages[0].ReceiptHandle, VisibilityTimeout: 0})
	require.NoError(t, err)

	sub, err := kombu.NewSubscriber(quickSubscriberConfig(testConfig(endpoint)), nil)
	require.NoError(t, err)
	defer sub.Close()
	ch, err := sub.Subscribe(ctx, q)
	require.NoError(t, err)
	got := receiveMessages(t, ch, 1, 30*time.Second)[0]
	require.Empty(t, got.Metadata.Get(kombu.MetadataDecodeError))
	require.Equal(t, msg.UUID, got.UUID)
	require.Equal(t, `{"wrapped":true}`, string(got.Payload))
	require.Equal(t, exchange, got.Metadata.Get(kombu.MetadataExchange))
	require.Equal(t, "t-1", got.Metadata.Get("trace"))
	require.Equal(t, "acme", got.Metadata.Get(kombu.MetadataAttributePrefix+"tenant"))
}

// TestSNSFanoutMessageTooLarge: SNS takes at most 256 KiB per message; a larger one fails the
// publish with ErrMessageTooLarge before anything is sent.
func TestSNSFanoutMessageTooLarge(t *testing.T) {
	endpoint := testenv.MotoEndpoint(t)
	exchange := testenv.UniqueName("fanout-large")
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: motoConfig(endpoint, map[string]kombu.Exchange{exchange: {Type: kombu.ExchangeFanout}})}, nil)
	require.NoError(t, err)
	defer pub.Close()
	small := message.NewMessage(watermill.NewUUID(), []byte("small"))
	large := message.NewMessage(watermill.NewUUID(), bytes.Repeat([]byte("x"), 256*1024))
	err = pub.Publish(exchange, small, large)
	require.ErrorIs(t, err, kombu.ErrMessageTooLarge)
	require.ErrorIs(t, err, kombu.ErrChannel)
	require.Contains(t, err.Error(), large.UUID)
	require.Contains(t, err.Error(), exchange)
	require.Zero(t, pub.Stats().SNSPublish, "nothing sent")
}

// TestSNSFanoutTopicDeletedMidPublish: the topic is deleted between the two batches of one
// Publish of 20 messages. The first batch was delivered; once the topic is created again, only
// the refused batch is sent once more: the queue gets every message once.
func TestSNSFanoutTopicDeletedMidPublish(t *testing.T) {
	endpoint := testenv.MotoEndpoint(t)
	exchange := testenv.UniqueName("fanout-midway")
	q := testenv.UniqueName("fanout-midway-q")
	snsClient := testenv.SNSClient(t, endpoint)
	var batches atomic.Int32
	proxy := sqsProxy(t, endpoint, func(_ string, body []byte, _ http.ResponseWriter) bool {
		// SNS speaks the query protocol: the action is in the form body.
		if bytes.Contains(body, []byte("Action=PublishBatch")) && batches.Add(1) == 2 {
			// The other batch is answered well before this one goes on.
			time.Sleep(1500 * time.Millisecond)
			_, err := snsClient.DeleteTopic(context.Background(), &sns.DeleteTopicInput{TopicArn: aws.String(topicARNOf(t, snsClient, exchange))})
			require.NoError(t, err)
		}
		return false
	})
	cfg := motoConfig(proxy, map[string]kombu.Exchange{exchange: fanoutExchange(q)})
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, nil)
	require.NoError(t, err)
	defer pub.Close()
	msgs, want := numberedMessages(20)
	require.NoError(t, pub.Publish(exchange, msgs...))
	require.GreaterOrEqual(t, batches.Load(), int32(3), "the refused batch is sent again")

	sub, err := kombu.NewSubscriber(quickSubscriberConfig(testConfig(endpoint)), nil)
	require.NoError(t, err)
	defer sub.Close()
	ch, err := sub.Subscribe(context.Background(), q)
	require.NoError(t, err)
	got := receiveAcked(t, ch, 20, 30*time.Second)
	select {
	case m := <-ch:
		t.Fatalf("message %q delivered twice", m.Payload)
	case <-time.After(3 * time.Second):
	}
	require.ElementsMatch(t, want, got)
}

// numberedMessages returns n messages whose payloads are m0, m1, ..., and those payloads.
func numberedMessages(n int) ([]*message.Message, []string) {
	msgs, want := make([]*message.Message, n), make([]string, n)
	for i := range msgs {
		want[i] = fmt.Sprint("m", i)
		msgs[i] = message.NewMessage(watermill.NewUUID(), []byte(want[i]))
	}
	return msgs, want
}
