package kombu_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/stretchr/testify/require"

	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// TestQueueRecreatedUnderLoad: the queue is deleted under a running Publisher and Subscriber
// (as infrastructure tooling or a broker restart does). Both look the queue up again and
// create it, publishing and receiving resume within seconds, and every message published
// after the queue was deleted is received.
func TestQueueRecreatedUnderLoad(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("recreated")
	url := semQueue(t, client, topic, 30*time.Second)
	cfg := semConfig(ep, 30*time.Second)
	pub := semPublisher(t, cfg)
	sc := semSubConfig(cfg)
	// ElasticMQ leaves a long poll on a deleted queue open until the client gives up: the
	// request deadline (wait time plus RequestTimeout) is what ends it.
	sc.RequestTimeout = 3 * time.Second
	sub := semSubscriber(t, sc)
	msgs, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)

	var mu sync.Mutex
	received := map[int]time.Time{}
	go func() {
		for m := range msgs {
			n, _ := strconv.Atoi(string(m.Payload))
			mu.Lock()
			received[n] = time.Now()
			mu.Unlock()
			m.Ack()
		}
	}()

	// Publish one message every 20 ms; note which were accepted after the deletion.
	var deletedAt time.Time
	var afterDelete []int
	var failures int
	var firstOKAfterDelete time.Time
	stop := time.Now().Add(12 * time.Second)
	for i := 0; time.Now().Before(stop); i++ {
		if i == 100 {
			_, err := client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: aws.String(url)})
			require.NoError(t, err)
			deletedAt = time.Now()
		}
		err := pub.Publish(topic, message.NewMessage(strconv.Itoa(i), []byte(strconv.Itoa(i))))
		switch {
		case err != nil:
			failures++
			t.Logf("publish %d: %v", i, err)
		case !deletedAt.IsZero():
			afterDelete = append(afterDelete, i)
			if firstOKAfterDelete.IsZero() {
				firstOKAfterDelete = time.Now()
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NotEmpty(t, afterDelete, "nothing could be published after the deletion")
	t.Logf("publishing resumed %s after the deletion; %d publish failures; %d messages published since",
		firstOKAfterDelete.Sub(deletedAt).Round(time.Millisecond), failures, len(afterDelete))
	require.Less(t, firstOKAfterDelete.Sub(deletedAt), 5*time.Second, "publishing did not resume within seconds")

	deadline := time.Now().Add(40 * time.Second)
	var missing []int
	for {
		mu.Lock()
		missing = missing[:0]
		for _, n := range afterDelete {
			if _, ok := received[n]; !ok {
				missing = append(missing, n)
			}
		}
		first := time.Time{}
		for _, n := range afterDelete {
			if at, ok := received[n]; ok && (first.IsZero() || at.Before(first)) {
				first = at
			}
		}
		mu.Unlock()
		if len(missing) == 0 {
			t.Logf("receiving resumed %s after the deletion", first.Sub(deletedAt).Round(time.Millisecond))
			require.Less(t, first.Sub(deletedAt), 20*time.Second, "receiving did not resume within seconds")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages published after the deletion never arrived (first missing: %d)",
				len(missing), len(afterDelete), missing[0])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestQueueRecreatedKeepsMessagesHeld: the queue, created elsewhere with a longer
// VisibilityTimeout than the configured one, is deleted; the subscription creates it again
// with the configured one. The heartbeat then extends held messages by the new queue's
// timeout, not the old one's, so that a message a handler holds stays invisible.
func TestQueueRecreatedKeepsMessagesHeld(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("recreated-vis")
	url := semQueue(t, client, topic, 20*time.Second)
	sc := semSubConfig(semConfig(ep, 3*time.Second))
	// ElasticMQ leaves a long poll on a deleted queue open until the client gives up.
	sc.RequestTimeout = 3 * time.Second
	sub := semSubscriber(t, sc)
	msgs, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return sub.Stats().Receive >= 1 }, 10*time.Second, 10*time.Millisecond)
	_, err = client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: aws.String(url)})
	require.NoError(t, err)
	// ElasticMQ refuses to create a queue again right after its deletion for a moment; the
	// subscription keeps trying.
	require.Eventually(t, func() bool {
		out, err := client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
			QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameVisibilityTimeout}})
		return err == nil && out.Attributes[string(types.QueueAttributeNameVisibilityTimeout)] == "3"
	}, 30*time.Second, 50*time.Millisecond, "the subscription did not create the queue again")

	semPublishN(t, semPublisher(t, semConfig(ep, 3*time.Second)), topic, 1)
	var m *message.Message
	select {
	case m = <-msgs:
	case <-time.After(20 * time.Second):
		t.Fatal("no message from the queue created again")
	}
	stolen, again := 0, 0
	for end := time.Now().Add(6 * time.Second); time.Now().Before(end); {
		out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), VisibilityTimeout: 1})
		require.NoError(t, err)
		stolen += len(out.Messages)
		select {
		case m2 := <-msgs:
			again++
			m2.Nack()
		case <-time.After(200 * time.Millisecond):
		}
	}
	m.Ack()
	require.Zero(t, stolen, "another consumer received a message the handler held")
	require.Zero(t, again, "the subscription received again a message its handler held")
}
