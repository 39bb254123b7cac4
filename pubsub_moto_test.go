package kombu_test

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// TestPubSubMoto runs Watermill's universal tests against moto's SQS, a second SQS
// implementation besides ElasticMQ, on standard queues. moto keeps everything in memory and
// cannot be restarted without losing it, so the reconnect test (RestartServiceCommand) does
// not run here. moto serves requests one at a time from Python, some 10-50 times slower than
// ElasticMQ, so the suite runs with its short message counts (ForceShort: 100 instead of 5000
// messages, and so on); the full counts run against ElasticMQ in TestPubSub.
func TestPubSubMoto(t *testing.T) {
	endpoint := testenv.MotoEndpoint(t)
	tests.TestPubSub(
		t,
		tests.Features{
			ConsumerGroups:      false,
			ExactlyOnceDelivery: false,
			GuaranteedOrder:     false,
			Persistent:          true,
			ForceShort:          true,
		},
		func(t *testing.T) (message.Publisher, message.Subscriber) {
			return newPubSub(t, endpoint, testSubscriberConfig(endpoint))
		},
		nil,
	)
}

// TestPubSubMotoFIFO is TestPubSubFIFO on moto: every topic of the suite is a FIFO queue with
// one message group, so the order tests run as well.
func TestPubSubMotoFIFO(t *testing.T) {
	endpoint := testenv.MotoEndpoint(t)
	tests.TestPubSub(
		t,
		tests.Features{
			ConsumerGroups:      false,
			ExactlyOnceDelivery: false,
			GuaranteedOrder:     true,
			Persistent:          true,
			ForceShort:          true,
		},
		func(t *testing.T) (message.Publisher, message.Subscriber) {
			pub, sub := newPubSub(t, endpoint, testSubscriberConfig(endpoint))
			return fifoPublisher{pub}, fifoSubscriber{sub}
		},
		nil,
	)
}
