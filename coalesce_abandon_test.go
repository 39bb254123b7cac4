package kombu_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// TestCoalescedSendAbandonedByItsCallers: without RequestTimeout, calls are bounded by their
// callers' contexts only. A coalesced SendMessageBatch that never gets an answer is given up
// once every caller in it has given up, so that later Publish calls to the queue are sent,
// instead of waiting behind it for as long as the Publisher lives.
func TestCoalescedSendAbandonedByItsCallers(t *testing.T) {
	ep := testenv.SQSEndpoint(t)
	queue := testenv.UniqueName("coalesce-abandon")
	release := make(chan struct{})
	var sends atomic.Int32
	proxy := sqsProxy(t, ep, func(op string, _ []byte, _ http.ResponseWriter) bool {
		if op == "SendMessageBatch" && sends.Add(1) == 1 {
			// The first send gets no answer (until the test ends).
			<-release
		}
		return false
	})
	// Registered after the proxy's, so run before it: closing the proxy waits for requests.
	t.Cleanup(func() { close(release) })
	cfg := testConfig(proxy)
	cfg.DisableRequestTimeout = true
	cfg.RetryMaxAttempts = 1
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg, CloseTimeout: time.Second}, nil)
	require.NoError(t, err)
	defer pub.Close()

	publish := func(timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		msg := message.NewMessage(watermill.NewUUID(), []byte("x"))
		msg.SetContext(ctx)
		return pub.Publish(queue, msg)
	}
	require.ErrorIs(t, publish(time.Second), context.DeadlineExceeded, "the first send gets no answer")
	// SQS answers again: a later message is sent well within its deadline.
	require.NoError(t, publish(20*time.Second))
	require.GreaterOrEqual(t, sends.Load(), int32(2))
}
