//go:build stress

package kombu_test

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// TestPubSubStressTest runs the universal suite STRESS_TEST_COUNT times in parallel on the
// in-memory ElasticMQ. TestReconnect is left out: parallel runs would restart the broker under
// each other.
func TestPubSubStressTest(t *testing.T) {
	endpoint := testenv.SQSEndpoint(t)
	tests.TestPubSubStressTest(
		t,
		tests.Features{
			ConsumerGroups:      false,
			ExactlyOnceDelivery: false,
			GuaranteedOrder:     false,
			Persistent:          true,
		},
		func(t *testing.T) (message.Publisher, message.Subscriber) {
			return newPubSub(t, endpoint, testSubscriberConfig(endpoint))
		},
		nil,
	)
}
