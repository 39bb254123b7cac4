package kombu_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// countingRoundTripper counts the HTTP requests it carries.
type countingRoundTripper struct {
	n    atomic.Int64
	next http.RoundTripper
}

func (c *countingRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

func TestClientHTTPClientIsUsed(t *testing.T) {
	endpoint := testenv.SQSEndpoint(t)
	counter := &countingRoundTripper{next: http.DefaultTransport}
	cfg := elasticMQConfig(endpoint)
	cfg.QueueNamePrefix = testenv.UniqueName("httpclient") + "-"
	cfg.HTTPClient = &http.Client{Transport: counter}
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, nil)
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.Publish("q", message.NewMessage(watermill.NewUUID(), []byte("x"))))
	deleteRawQueue(t, endpoint, kombu.CanonicalQueueName(cfg.QueueNamePrefix, "q"))
	require.Positive(t, counter.n.Load())
	require.Equal(t, pub.Stats().Total(), counter.n.Load(), "every SQS request must go through the HTTPClient")
}

func TestClientSQSOptionsHook(t *testing.T) {
	endpoint := testenv.SQSEndpoint(t)
	proxy := newRecordingProxy(t, endpoint)
	cfg := elasticMQConfig("http://127.0.0.1:1") // nothing listens there
	cfg.QueueNamePrefix = testenv.UniqueName("sqsoptions") + "-"
	var hooked atomic.Int64
	cfg.SQSOptions = []func(*sqs.Options){func(o *sqs.Options) {
		hooked.Add(1)
		o.BaseEndpoint = aws.String(proxy.URL)
	}}
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, nil)
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.Publish("q", message.NewMessage(watermill.NewUUID(), []byte("x"))))
	deleteRawQueue(t, endpoint, kombu.CanonicalQueueName(cfg.QueueNamePrefix, "q"))
	require.Positive(t, hooked.Load())
	require.NotEmpty(t, proxy.requests(), "the hook's endpoint was not used")
}

func TestClientRequestTimeout(t *testing.T) {
	endpoint := testenv.SQSEndpoint(t)
	proxy := newRecordingProxy(t, endpoint)
	var slowSend atomic.Bool
	proxy.delay = func(op string) time.Duration {
		if (op == "SendMessage" || op == "SendMessageBatch") && slowSend.Load() {
			return 3 * time.Second
		}
		return 0
	}
	cfg := elasticMQConfig(proxy.URL)
	cfg.QueueNamePrefix = testenv.UniqueName("timeout") + "-"
	cfg.RequestTimeout = 400 * time.Millisecond
	cfg.RetryMaxAttempts = 1
	t.Cleanup(func() { deleteRawQueue(t, endpoint, kombu.CanonicalQueueName(cfg.QueueNamePrefix, "q")) })

	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, nil)
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.Publish("q", message.NewMessage(watermill.NewUUID(), []byte("fast"))))

	slowSend.Store(true)
	start := time.Now()
	err = pub.Publish("q", message.NewMessage(watermill.NewUUID(), []byte("slow")))
	elapsed := time.Since(start)
	require.Error(t, err)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, elapsed, 2*time.Second, "RequestTimeout did not cut the call short")
	slowSend.Store(false)

	// A long poll of 1 s outlasts RequestTimeout and still succeeds: it gets its wait on top.
	scfg := quickSubscriberConfig(cfg)
	sub, err := kombu.NewSubscriber(scfg, nil)
	require.NoError(t, err)
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := sub.Subscribe(ctx, "q")
	require.NoError(t, err)
	require.Equal(t, []string{"fast"}, receiveAcked(t, ch, 1, 10*time.Second))
	time.Sleep(2500 * time.Millisecond) // empty long polls
	cancel()
	require.NoError(t, sub.Close())
	var longPolls int
	for _, r := range proxy.requests() {
		if r.Op == "ReceiveMessage" && r.Duration > 900*time.Millisecond {
			require.Equal(t, http.StatusOK, r.Status)
			longPolls++
		}
	}
	require.Positive(t, longPolls, "no empty long poll of about 1 s completed")
}
