package kombu_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// testConfig points at a local ElasticMQ with short timeouts, so the suite runs quickly. The
// queues' visibility timeout is short so that, after a broker restart, messages that were in
// flight come back soon (ElasticMQ keeps their absolute visibility deadline across restarts).
func testConfig(endpoint string) kombu.Config {
	return kombu.Config{
		Region:            "us-east-1",
		EndpointURL:       endpoint,
		AccessKeyID:       "test",
		SecretAccessKey:   "test",
		VisibilityTimeout: 10 * time.Second,
	}
}

func testSubscriberConfig(endpoint string) kombu.SubscriberConfig {
	return kombu.SubscriberConfig{
		Config:              testConfig(endpoint),
		WaitTimeSeconds:     1,
		PollingInterval:     50 * time.Millisecond,
		ReconnectRetrySleep: 200 * time.Millisecond,
		CloseTimeout:        10 * time.Second,
	}
}

func newPubSub(t *testing.T, endpoint string, subConfig kombu.SubscriberConfig) (*kombu.Publisher, *kombu.Subscriber) {
	t.Helper()
	logger := watermill.NewStdLogger(false, false)
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: testConfig(endpoint)}, logger)
	require.NoError(t, err)
	sub, err := kombu.NewSubscriber(subConfig, logger)
	require.NoError(t, err)
	return pub, sub
}

func TestPubSub(t *testing.T) {
	endpoint := testenv.PersistentSQSEndpoint(t)
	tests.TestPubSub(
		t,
		tests.Features{
			ConsumerGroups:      false, // one SQS queue is one group; fan-out needs exchanges
			ExactlyOnceDelivery: false, // SQS standard queues deliver at least once
			GuaranteedOrder:     false, // standard queues are not ordered
			Persistent:          true,
			// Restarts the persistent ElasticMQ (H2 storage) under TestReconnect.
			RestartServiceCommand: testenv.ReportedRestartCommand(t),
		},
		func(t *testing.T) (message.Publisher, message.Subscriber) {
			return newPubSub(t, endpoint, testSubscriberConfig(endpoint))
		},
		nil,
	)
}

// fifoPublisher and fifoSubscriber map every topic of the suite to a FIFO queue by adding ".fifo" to its name, the
// way a Kombu queue name selects a FIFO queue.
type fifoPublisher struct{ *kombu.Publisher }

func (p fifoPublisher) Publish(topic string, msgs ...*message.Message) error {
	return p.Publisher.Publish(topic+".fifo", msgs...)
}

type fifoSubscriber struct{ *kombu.Subscriber }

func (s fifoSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return s.Subscriber.Subscribe(ctx, topic+".fifo")
}

func (s fifoSubscriber) SubscribeInitialize(topic string) error {
	return s.Subscriber.SubscribeInitialize(topic + ".fifo")
}

func TestPubSubFIFO(t *testing.T) {
	endpoint := testenv.PersistentSQSEndpoint(t)
	tests.TestPubSub(
		t,
		tests.Features{
			ConsumerGroups:        false,
			ExactlyOnceDelivery:   false, // deduplication lasts 5 minutes only, and redelivery after Nack is by design
			GuaranteedOrder:       true,  // one message group ("default") per queue: handed out one at a time, in order
			Persistent:            true,
			RestartServiceCommand: testenv.ReportedRestartCommand(t),
		},
		func(t *testing.T) (message.Publisher, message.Subscriber) {
			// ElasticMQ does not wake a long poll waiting on a FIFO group when the group's
			// in-flight messages are deleted; it answers only when the wait runs out. With 50
			// subscribers on one group (TestConcurrentSubscribe) long polls would starve, so the
			// FIFO run short-polls. Real SQS answers such polls when the group frees up.
			cfg := testSubscriberConfig(endpoint)
			cfg.DisableLongPolling = true
			cfg.PollingInterval = 100 * time.Millisecond
			// TestContinueAfterErrors nacks the head of the one message group 300 times: with
			// the default backoff the head would stay away for minutes (the group waits for
			// it, as it should). Redeliveries stay immediate here.
			cfg.NackBackoffImmediate = 1000
			pub, sub := newPubSub(t, endpoint, cfg)
			return fifoPublisher{pub}, fifoSubscriber{sub}
		},
		nil,
	)
}
