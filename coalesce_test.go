package kombu_test

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// TestCoalescedPublishSharesBatches: 50 goroutines publishing one message per call share
// SendMessageBatch calls (≈ 0.1 requests per message; the margin holds on a loaded machine),
// every message arrives once, and a caller alone sends at once, one request per message.
func TestCoalescedPublishSharesBatches(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("coalesce")
	url := semQueue(t, client, topic, 30*time.Second)
	pub := semPublisher(t, semConfig(ep, 30*time.Second))
	require.NoError(t, pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("warm-up"))))

	const publishers, each = 50, 10
	before := pub.Stats()
	start := make(chan struct{})
	errs := make(chan error, publishers*each)
	var wg sync.WaitGroup
	for g := 0; g < publishers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < each; i++ {
				errs <- pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte(strconv.Itoa(i))))
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	sends := pub.Stats().Send - before.Send
	perMsg := float64(sends) / (publishers * each)
	t.Logf("%d single-message Publish calls from %d goroutines: %d send requests, %.3f per message", publishers*each, publishers, sends, perMsg)
	require.LessOrEqual(t, perMsg, 0.3)

	// Alone, each message leaves at once in its own request.
	before = pub.Stats()
	for i := 0; i < 5; i++ {
		require.NoError(t, pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("alone"))))
	}
	require.Equal(t, int64(5), pub.Stats().Send-before.Send)

	seen := semReceiveAll(t, client, url, publishers*each+6, 60*time.Second)
	require.Len(t, seen, publishers*each+6)
}

// TestCoalescedPublishFailedEntryFailsOnlyItsCaller: when SQS rejects one entry of a shared
// batch, only the caller of that message gets an error, naming its message; the others'
// messages were sent.
func TestCoalescedPublishFailedEntryFailsOnlyItsCaller(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("coalesce-fail")
	url := semQueue(t, client, topic, 30*time.Second)
	pub := semPublisher(t, semConfig(ep, 30*time.Second))
	require.NoError(t, pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("warm-up"))))

	const n = 40
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = message.NewMessage(watermill.NewUUID(), []byte(strconv.Itoa(i)))
		if i%5 == 0 {
			// SQS rejects an empty string attribute: this entry fails, its batch does not.
			msgs[i].Metadata.Set(kombu.MetadataAttributePrefix+"empty", "")
		}
	}
	before := pub.Stats()
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range msgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = pub.Publish(topic, msgs[i])
		}()
	}
	close(start)
	wg.Wait()
	sends := pub.Stats().Send - before.Send
	t.Logf("%d concurrent single publishes in %d requests", n, sends)
	require.Less(t, sends, int64(n), "the calls should have shared batches")
	for i, err := range errs {
		if i%5 != 0 {
			require.NoError(t, err, "message %d", i)
			continue
		}
		require.Error(t, err, "message %d", i)
		require.ErrorIs(t, err, kombu.ErrChannel)
		var pe *kombu.PublishError
		require.True(t, errors.As(err, &pe))
		require.Len(t, pe.Failed, 1)
		require.Equal(t, msgs[i].UUID, pe.Failed[0].MessageUUID)
	}
	seen := semReceiveAll(t, client, url, n-n/5+1, 20*time.Second)
	require.Len(t, seen, n-n/5+1)
}
