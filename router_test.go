package kombu_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// rtConfig points at the in-memory ElasticMQ.
func rtConfig(endpoint string) kombu.Config {
	return kombu.Config{
		Region:            "us-east-1",
		EndpointURL:       endpoint,
		AccessKeyID:       "test",
		SecretAccessKey:   "test",
		VisibilityTimeout: 30 * time.Second,
	}
}

// rtSubConfig polls briefly and often, so that the tests measure the library, not the waits.
func rtSubConfig(cfg kombu.Config) kombu.SubscriberConfig {
	return kombu.SubscriberConfig{
		Config:              cfg,
		WaitTimeSeconds:     1,
		PollingInterval:     50 * time.Millisecond,
		ReconnectRetrySleep: 100 * time.Millisecond,
		CloseTimeout:        5 * time.Second,
	}
}

// rtQueue creates the queue of a topic and deletes it when the test ends. Call it before
// creating the subscribers, so that they are closed first.
func rtQueue(t *testing.T, client *sqs.Client, topic string) {
	t.Helper()
	out, err := client.CreateQueue(context.Background(), &sqs.CreateQueueInput{
		QueueName:  aws.String(kombu.CanonicalQueueName("", topic)),
		Attributes: map[string]string{"VisibilityTimeout": "30"},
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl})
	})
}

// rtPubSub returns a Publisher and a Subscriber closed when the test ends.
func rtPubSub(t *testing.T, sc kombu.SubscriberConfig) (*kombu.Publisher, *kombu.Subscriber) {
	t.Helper()
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: sc.Config}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	sub, err := kombu.NewSubscriber(sc, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	return pub, sub
}

// rtRun runs the router until the test ends.
func rtRun(t *testing.T, r *message.Router) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.Run(context.Background()); err != nil {
			t.Errorf("router: %v", err)
		}
	}()
	t.Cleanup(func() { _ = r.Close(); <-done })
	select {
	case <-r.Running():
	case <-time.After(10 * time.Second):
		t.Fatal("the router did not start")
	}
}

func rtRouter(t *testing.T) *message.Router {
	t.Helper()
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, watermill.NopLogger{})
	require.NoError(t, err)
	return r
}

// attempt is one call of a handler.
type attempt struct {
	at           time.Time
	uuid         string
	receiveCount int
}

type attempts struct {
	mu   sync.Mutex
	list []attempt
	ch   chan struct{}
}

func newAttempts() *attempts { return &attempts{ch: make(chan struct{}, 100)} }

func (a *attempts) add(msg *message.Message) int {
	n, _ := strconv.Atoi(msg.Metadata.Get(kombu.MetadataReceiveCount))
	a.mu.Lock()
	a.list = append(a.list, attempt{at: time.Now(), uuid: msg.UUID, receiveCount: n})
	a.mu.Unlock()
	a.ch <- struct{}{}
	return n
}

// wait returns the attempts once there are n, or fails after timeout.
func (a *attempts) wait(t *testing.T, n int, timeout time.Duration) []attempt {
	t.Helper()
	deadline := time.After(timeout)
	for {
		a.mu.Lock()
		got := append([]attempt(nil), a.list...)
		a.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-a.ch:
		case <-deadline:
			t.Fatalf("%d of %d handler calls after %s", len(got), n, timeout)
		}
	}
}

// TestRouterRetryThenBackoff: the Retry middleware calls the handler three times within the
// first delivery; the final error Nacks the message, which the backoff policy keeps invisible
// for 2 s before SQS delivers it again.
func TestRouterRetryThenBackoff(t *testing.T) {
	t.Parallel()
	endpoint := testenv.SQSEndpoint(t)
	topic := testenv.UniqueName("router-retry")
	rtQueue(t, testenv.SQSClient(t, endpoint), topic)
	sc := rtSubConfig(rtConfig(endpoint))
	sc.BackoffPolicy = map[int]int{1: 2, 2: 4}
	pub, sub := rtPubSub(t, sc)

	calls := newAttempts()
	r := rtRouter(t)
	r.AddMiddleware(middleware.Retry{MaxRetries: 2, InitialInterval: 20 * time.Millisecond, Multiplier: 1}.Middleware)
	r.AddConsumerHandler("retry", topic, sub, func(msg *message.Message) error {
		if calls.add(msg) == 1 {
			return errors.New("temporary failure")
		}
		return nil
	})
	rtRun(t, r)

	msg := message.NewMessage(watermill.NewUUID(), []byte(`{"job": 1}`))
	require.NoError(t, pub.Publish(topic, msg))

	got := calls.wait(t, 4, 15*time.Second)
	for i := 0; i < 3; i++ {
		assert.Equal(t, 1, got[i].receiveCount, "call %d: first delivery, retried in process", i+1)
		assert.Equal(t, msg.UUID, got[i].uuid)
	}
	assert.Equal(t, 2, got[3].receiveCount, "then redelivered by SQS")
	delay := got[3].at.Sub(got[2].at)
	t.Logf("redelivered %s after the final failure (policy: 2 s)", delay.Round(time.Millisecond))
	assert.GreaterOrEqual(t, delay, 1800*time.Millisecond)
	assert.Less(t, delay, 8*time.Second)

	// Acked on the second delivery: nothing comes back.
	time.Sleep(500 * time.Millisecond)
	calls.mu.Lock()
	assert.Len(t, calls.list, 4)
	calls.mu.Unlock()
}

// TestRouterPoisonQueue: a message its handler cannot process goes to a poison SQS queue with
// the reason, and is acked on its own queue.
func TestRouterPoisonQueue(t *testing.T) {
	t.Parallel()
	endpoint := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, endpoint)
	topic, poison := testenv.UniqueName("router-poison-in"), testenv.UniqueName("router-poison")
	rtQueue(t, client, topic)
	rtQueue(t, client, poison)
	pub, sub := rtPubSub(t, rtSubConfig(rtConfig(endpoint)))

	poisonMW, err := middleware.PoisonQueue(pub, poison)
	require.NoError(t, err)
	calls := newAttempts()
	r := rtRouter(t)
	r.AddMiddleware(poisonMW)
	r.AddConsumerHandler("poisoned-handler", topic, sub, func(msg *message.Message) error {
		calls.add(msg)
		return errors.New("cannot parse order")
	})
	rtRun(t, r)

	msg := message.NewMessage(watermill.NewUUID(), []byte(`{"order": "broken"}`))
	msg.Metadata.Set("tenant", "acme")
	require.NoError(t, pub.Publish(topic, msg))

	poisoned, err := sub.Subscribe(t.Context(), poison)
	require.NoError(t, err)
	select {
	case got := <-poisoned:
		got.Ack()
		assert.Equal(t, msg.UUID, got.UUID)
		assert.JSONEq(t, `{"order": "broken"}`, string(got.Payload))
		assert.Equal(t, "cannot parse order", got.Metadata.Get(middleware.ReasonForPoisonedKey))
		assert.Equal(t, topic, got.Metadata.Get(middleware.PoisonedTopicKey))
		assert.Equal(t, "poisoned-handler", got.Metadata.Get(middleware.PoisonedHandlerKey))
		assert.Equal(t, "acme", got.Metadata.Get("tenant"))
		assert.Equal(t, poison, got.Metadata.Get(kombu.MetadataQueue))
	case <-time.After(10 * time.Second):
		t.Fatal("nothing on the poison queue")
	}
	time.Sleep(1500 * time.Millisecond) // a redelivery would come within a poll
	calls.mu.Lock()
	assert.Len(t, calls.list, 1, "the poisoned message was acked on its own queue")
	calls.mu.Unlock()
}

// TestRouterRecoverer: a panicking handler Nacks the message (no backoff policy: visible again
// at once), and the redelivery succeeds.
func TestRouterRecoverer(t *testing.T) {
	t.Parallel()
	endpoint := testenv.SQSEndpoint(t)
	topic := testenv.UniqueName("router-panic")
	rtQueue(t, testenv.SQSClient(t, endpoint), topic)
	pub, sub := rtPubSub(t, rtSubConfig(rtConfig(endpoint)))

	calls := newAttempts()
	r := rtRouter(t)
	r.AddMiddleware(middleware.Recoverer)
	r.AddConsumerHandler("panics", topic, sub, func(msg *message.Message) error {
		if calls.add(msg) == 1 {
			panic("handler bug")
		}
		return nil
	})
	rtRun(t, r)

	msg := message.NewMessage(watermill.NewUUID(), []byte(`"x"`))
	require.NoError(t, pub.Publish(topic, msg))
	got := calls.wait(t, 2, 10*time.Second)
	assert.Equal(t, []int{1, 2}, []int{got[0].receiveCount, got[1].receiveCount})
	assert.Equal(t, msg.UUID, got[1].uuid)
	delay := got[1].at.Sub(got[0].at)
	t.Logf("redelivered %s after the panic", delay.Round(time.Millisecond))
	assert.Less(t, delay, 5*time.Second, "a Nack without backoff policy makes the message visible at once")
}

// TestRouterCorrelationID: the CorrelationID middleware copies the correlation id of a
// consumed message to the messages its handler produces, through SQS both ways.
func TestRouterCorrelationID(t *testing.T) {
	t.Parallel()
	endpoint := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, endpoint)
	in, out := testenv.UniqueName("router-corr-in"), testenv.UniqueName("router-corr-out")
	rtQueue(t, client, in)
	rtQueue(t, client, out)
	pub, sub := rtPubSub(t, rtSubConfig(rtConfig(endpoint)))

	r := rtRouter(t)
	r.AddMiddleware(middleware.CorrelationID)
	r.AddHandler("enrich", in, sub, out, pub, func(msg *message.Message) ([]*message.Message, error) {
		return []*message.Message{message.NewMessage(watermill.NewUUID(), []byte(`{"enriched": true}`))}, nil
	})
	rtRun(t, r)

	msg := message.NewMessage(watermill.NewUUID(), []byte(`{"raw": true}`))
	middleware.SetCorrelationID("corr-42", msg)
	require.NoError(t, pub.Publish(in, msg))

	results, err := sub.Subscribe(t.Context(), out)
	require.NoError(t, err)
	select {
	case got := <-results:
		got.Ack()
		assert.Equal(t, "corr-42", middleware.MessageCorrelationID(got))
		assert.JSONEq(t, `{"enriched": true}`, string(got.Payload))
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's message did not arrive")
	}
}
