package kombu_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// TestExchangeFailedRunNamesLaterMessages: a Publish to an exchange sends a queue's messages in
// runs of one routing key, and stops at a run SQS refused. The PublishError must then name the
// messages of the later runs too (NotSent): it promises that the messages it does not name
// were accepted, and a caller that sends the named ones again would otherwise lose them.
func TestExchangeFailedRunNamesLaterMessages(t *testing.T) {
	for _, fifo := range []bool{false, true} {
		t.Run(map[bool]string{false: "standard", true: "fifo"}[fifo], func(t *testing.T) {
			ep := testenv.SQSEndpoint(t)
			queue := testenv.UniqueName("ex-run-fail")
			if fifo {
				queue += ".fifo"
			}
			var batches atomic.Int32
			proxy := sqsProxy(t, ep, func(op string, _ []byte, w http.ResponseWriter) bool {
				if op != "SendMessageBatch" || batches.Add(1) > 1 {
					return false
				}
				// The first run: SQS rejects both of its entries.
				w.Header().Set("Content-Type", "application/x-amz-json-1.0")
				_, _ = w.Write([]byte(`{"Successful":[],"Failed":[` +
					`{"Id":"0","SenderFault":true,"Code":"InvalidParameterValue","Message":"refused"},` +
					`{"Id":"1","SenderFault":true,"Code":"InvalidParameterValue","Message":"refused"}]}`))
				return true
			})
			cfg := testConfig(proxy)
			cfg.Exchanges = map[string]kombu.Exchange{"ex": {Type: kombu.ExchangeDirect, Bindings: []kombu.Binding{
				{Queue: queue, RoutingKey: "a"}, {Queue: queue, RoutingKey: "b"}}}}
			pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, nil)
			require.NoError(t, err)
			defer pub.Close()

			var msgs []*message.Message
			for _, rk := range []string{"a", "a", "b"} {
				m := message.NewMessage(watermill.NewUUID(), []byte("x"))
				m.Metadata.Set(kombu.MetadataRoutingKey, rk)
				msgs = append(msgs, m)
			}
			pubErr := pub.Publish("ex", msgs...)
			var pe *kombu.PublishError
			require.True(t, errors.As(pubErr, &pe), "got %v", pubErr)
			named := map[string]bool{}
			for _, f := range pe.Failed {
				named[f.MessageUUID] = true
			}

			client := testenv.SQSClient(t, ep)
			url, err := client.GetQueueUrl(context.Background(), &sqs.GetQueueUrlInput{QueueName: aws.String(queue)})
			require.NoError(t, err)
			out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: url.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 2})
			require.NoError(t, err)
			// Whatever reached the queue is the third message (its routing key is "b").
			for _, m := range msgs {
				if !named[m.UUID] {
					require.Len(t, out.Messages, 1, "message %s (routing key %s) neither named nor sent: %v",
						m.UUID, m.Metadata.Get(kombu.MetadataRoutingKey), pubErr)
				}
			}
			require.True(t, named[msgs[0].UUID] && named[msgs[1].UUID], "the refused messages are named: %v", pubErr)
		})
	}
}

// TestExchangeTooLargeSendsNothing: a message over the size limit fails a Publish to an
// exchange before any message is sent, as it fails a Publish to a queue, though it comes in a
// later run (another routing key) than messages that fit.
func TestExchangeTooLargeSendsNothing(t *testing.T) {
	ep := testenv.SQSEndpoint(t)
	queue := testenv.UniqueName("ex-too-large")
	cfg := testConfig(ep)
	cfg.MaxMessageSize = 64 * 1024
	cfg.Exchanges = map[string]kombu.Exchange{"ex": {Type: kombu.ExchangeDirect, Bindings: []kombu.Binding{
		{Queue: queue, RoutingKey: "a"}, {Queue: queue, RoutingKey: "b"}}}}
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, nil)
	require.NoError(t, err)
	defer pub.Close()

	small := message.NewMessage(watermill.NewUUID(), []byte("small"))
	small.Metadata.Set(kombu.MetadataRoutingKey, "a")
	large := message.NewMessage(watermill.NewUUID(), []byte(strings.Repeat("x", 64*1024)))
	large.Metadata.Set(kombu.MetadataRoutingKey, "b")
	err = pub.Publish("ex", small, large)
	require.ErrorIs(t, err, kombu.ErrMessageTooLarge)
	require.Zero(t, pub.Stats().Send, "nothing sent")
}
