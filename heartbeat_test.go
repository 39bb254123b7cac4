package kombu_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// TestVisibilityTimeoutUnreadable: when the queue's VisibilityTimeout cannot be read (an IAM
// policy without sqs:GetQueueAttributes), the heartbeat cannot know when the queue would
// show a held message again: the receives then ask for the configured VisibilityTimeout, so
// that no other consumer gets a message a handler holds.
func TestVisibilityTimeoutUnreadable(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("vis-denied")
	url := semQueue(t, client, topic, 2*time.Second)
	proxy := sqsProxy(t, ep, func(op string, _ []byte, w http.ResponseWriter) bool {
		if op != "GetQueueAttributes" {
			return false
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"__type":"com.amazonaws.sqs#AccessDenied","message":"not allowed"}`))
		return true
	})
	holdWhileOthersPoll(t, ep, proxy, url, topic, 0, 4*time.Second)
}

// TestQueueVisibilityTimeoutZero: a queue whose own VisibilityTimeout is 0 shows a received
// message again at once, before the heartbeat's first extension: the receives ask for the
// configured VisibilityTimeout instead, so that nobody else gets a message a handler holds.
func TestQueueVisibilityTimeoutZero(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("vis-zero")
	url := semQueue(t, client, topic, 0)
	holdWhileOthersPoll(t, ep, ep, url, topic, 6*time.Second, 4*time.Second)
}

// TestHeartbeatRetriesAnEntryFailedBySQS: when SQS fails a heartbeat's entry on its side
// (SenderFault false), the extension is tried again, not given up: the held message stays
// invisible until its handler acks it.
func TestHeartbeatRetriesAnEntryFailedBySQS(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("beat-retry")
	url := semQueue(t, client, topic, 6*time.Second)
	var failedOnce atomic.Bool
	proxy := sqsProxy(t, ep, func(op string, body []byte, w http.ResponseWriter) bool {
		if op != "ChangeMessageVisibilityBatch" || !failedOnce.CompareAndSwap(false, true) {
			return false
		}
		var in struct{ Entries []struct{ Id string } }
		require.NoError(t, json.Unmarshal(body, &in))
		var failed []map[string]any
		for _, e := range in.Entries {
			failed = append(failed, map[string]any{"Id": e.Id, "SenderFault": false, "Code": "InternalError", "Message": "try again"})
		}
		out, _ := json.Marshal(map[string]any{"Successful": []any{}, "Failed": failed})
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = w.Write(out)
		return true
	})
	holdWhileOthersPoll(t, ep, proxy, url, topic, 6*time.Second, 12*time.Second)
	require.True(t, failedOnce.Load(), "the heartbeat ran")
}

// holdWhileOthersPoll publishes one message to topic, receives it through a Subscriber on
// endpoint (configured with VisibilityTimeout vt) and holds it for hold while another
// consumer polls the queue at url. Were it visible again meanwhile, either that consumer or
// the subscription itself would receive it: the test fails then.
func holdWhileOthersPoll(t *testing.T, ep, endpoint, url, topic string, vt, hold time.Duration) {
	t.Helper()
	client := testenv.SQSClient(t, ep)
	pub := semPublisher(t, semConfig(ep, vt))
	sub := semSubscriber(t, semSubConfig(semConfig(endpoint, vt)))
	msgs, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	semPublishN(t, pub, topic, 1)
	var m *message.Message
	select {
	case m = <-msgs:
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
	}
	stolen, again := pollAlongside(t, client, url, msgs, "", hold)
	m.Ack()
	require.Zero(t, stolen, "another consumer received a message the handler held")
	require.Zero(t, again, "the subscription received again a message its handler held")
}

// pollAlongside polls the queue at url as another consumer, and the subscription's msgs, for
// d, and counts how often each got the message id ("" for any message); the messages the
// subscription gets are nacked.
func pollAlongside(t *testing.T, client *sqs.Client, url string, msgs <-chan *message.Message, id string, d time.Duration) (stolen, again int) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); {
		out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), VisibilityTimeout: 1})
		require.NoError(t, err)
		for _, m := range out.Messages {
			if id == "" || aws.ToString(m.MessageId) == id {
				stolen++
			}
		}
		select {
		case m := <-msgs:
			if id == "" || m.Metadata.Get(kombu.MetadataSQSMessageID) == id {
				again++
			}
			m.Nack()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return stolen, again
}

// slowDeleteSubscription subscribes, through a proxy that answers DeleteMessageBatch after
// 7 s, to a new queue whose VisibilityTimeout is 3 s, publishes n messages to it and returns
// them as the subscription received them, with the subscription's channel and the queue.
func slowDeleteSubscription(t *testing.T, name string, n int) (client *sqs.Client, url string, msgs <-chan *message.Message, got []*message.Message) {
	t.Helper()
	ep := testenv.SQSEndpoint(t)
	client = testenv.SQSClient(t, ep)
	topic := testenv.UniqueName(name)
	url = semQueue(t, client, topic, 3*time.Second)
	proxy := sqsProxy(t, ep, func(op string, _ []byte, _ http.ResponseWriter) bool {
		if op == "DeleteMessageBatch" {
			time.Sleep(7 * time.Second)
		}
		return false
	})
	pub := semPublisher(t, semConfig(ep, 3*time.Second))
	sub := semSubscriber(t, semSubConfig(semConfig(proxy, 3*time.Second)))
	msgs, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	semPublishN(t, pub, topic, n)
	for len(got) < n {
		select {
		case m := <-msgs:
			got = append(got, m)
		case <-time.After(10 * time.Second):
			t.Fatal("no message")
		}
	}
	return client, url, msgs, got
}

// TestHeartbeatNotHeldUpBySlowAck: an Ack whose DeleteMessageBatch takes long (SQS slow to
// answer, well within RequestTimeout) does not hold up the heartbeat of the other messages:
// one held meanwhile stays invisible until its handler acks it.
func TestHeartbeatNotHeldUpBySlowAck(t *testing.T) {
	t.Parallel()
	client, url, msgs, got := slowDeleteSubscription(t, "beat-slow-ack", 2)
	// The acked message may come back while its delete waits: only the held one counts.
	got[0].Ack()
	held := got[1]
	stolen, again := pollAlongside(t, client, url, msgs, held.Metadata.Get(kombu.MetadataSQSMessageID), 6*time.Second)
	held.Ack()
	require.Zero(t, stolen, "another consumer received a message the handler held")
	require.Zero(t, again, "the subscription received again a message its handler held")
}

// TestNackDuringHeartbeatKeepsBackoff: a message nacked while its heartbeat's extension is
// under way comes back after its backoff: the Nack is sent after SQS answered the extension,
// which would otherwise land after it and hide the message for a whole visibility timeout.
func TestNackDuringHeartbeatKeepsBackoff(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("beat-nack")
	url := semQueue(t, client, topic, 15*time.Second)
	extending := make(chan struct{}, 1)
	var extended atomic.Int64 // UnixNano of the delayed extension's answer
	proxy := sqsProxy(t, ep, func(op string, body []byte, _ http.ResponseWriter) bool {
		if op != "ChangeMessageVisibilityBatch" {
			return false
		}
		var in struct {
			Entries []struct{ VisibilityTimeout int }
		}
		require.NoError(t, json.Unmarshal(body, &in))
		if len(in.Entries) == 1 && in.Entries[0].VisibilityTimeout == 15 && extended.Load() == 0 {
			select {
			case extending <- struct{}{}:
			default:
			}
			time.Sleep(2 * time.Second)
			extended.Store(time.Now().UnixNano())
		}
		return false
	})
	pub := semPublisher(t, semConfig(ep, 15*time.Second))
	cfg := semSubConfig(semConfig(proxy, 15*time.Second))
	cfg.BackoffPolicy = map[int]int{1: 5}
	sub := semSubscriber(t, cfg)
	msgs, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	semPublishN(t, pub, topic, 1)
	var m *message.Message
	select {
	case m = <-msgs:
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
	}
	select {
	case <-extending:
	case <-time.After(25 * time.Second):
		t.Fatal("the heartbeat did not extend the held message")
	}
	m.Nack()
	require.Eventually(t, func() bool { return extended.Load() != 0 }, 10*time.Second, 10*time.Millisecond)
	// Back 5 s after the extension's answer: received by the subscription or by another
	// consumer, well before the 15 s an extension landing last would hide it.
	deadline := time.Now().Add(10 * time.Second)
	for back := false; !back; {
		require.True(t, time.Now().Before(deadline), "the nacked message did not come back")
		select {
		case m2 := <-msgs:
			m2.Ack()
			back = true
		case <-time.After(200 * time.Millisecond):
			out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), VisibilityTimeout: 30})
			require.NoError(t, err)
			back = len(out.Messages) > 0
		}
	}
}

// TestHeartbeatKeepsAckedMessageUntilDeleted: an acked message whose delete SQS is slow to
// answer stays hidden: its visibility is still extended until the delete is answered, so
// neither another consumer nor the subscription gets it in the meantime and runs it again.
func TestHeartbeatKeepsAckedMessageUntilDeleted(t *testing.T) {
	t.Parallel()
	client, url, msgs, got := slowDeleteSubscription(t, "beat-slow-delete", 1)
	acked := got[0]
	acked.Ack()
	stolen, again := pollAlongside(t, client, url, msgs, acked.Metadata.Get(kombu.MetadataSQSMessageID), 6*time.Second)
	require.Zero(t, stolen, "another consumer received a message acked while its delete was under way")
	require.Zero(t, again, "the subscription received again a message acked while its delete was under way")
}
