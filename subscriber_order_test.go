package kombu_test

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// TestShutdownLateFIFOKeepsGroupOrder: the receive under way when a FIFO subscription stops
// brings three messages of one group, which the subscription hands out late while its
// consumer still reads (as a closing Router does). Once one of them goes back to the queue
// (given back behind a busy group with Concurrency 2, or nacked with Concurrency 1), the
// later ones must go back too: the consumer sees a prefix of the group, in order, and SQS
// then delivers the rest, in order.
func TestShutdownLateFIFOKeepsGroupOrder(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name        string
		concurrency int
		nackFirst   bool
	}{{"Concurrency 2", 2, false}, {"Concurrency 1, first nacked", 1, true}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ep := testenv.SQSEndpoint(t)
			client := testenv.SQSClient(t, ep)
			topic := testenv.UniqueName("late-fifo") + ".fifo"
			semDeleteQueueLater(t, client, topic)
			pub := semPublisher(t, semConfig(ep, 30*time.Second))
			// The first receive is answered late: the subscription has stopped by then.
			var receives atomic.Int32
			proxy := sqsProxy(t, ep, func(op string, _ []byte, w http.ResponseWriter) bool {
				if op == "ReceiveMessage" && receives.Add(1) == 1 {
					time.Sleep(1500 * time.Millisecond)
				}
				return false
			})
			cfg := semSubConfig(semConfig(proxy, 30*time.Second))
			cfg.Concurrency = c.concurrency
			cfg.CloseTimeout = 10 * time.Second
			cfg.DisableNackBackoff = true
			sub := semSubscriber(t, cfg)
			require.NoError(t, sub.SubscribeInitialize(topic))
			var batch []*message.Message
			for i := 0; i < 3; i++ {
				m := message.NewMessage(watermill.NewUUID(), []byte(strconv.Itoa(i)))
				m.Metadata.Set(kombu.MetadataMessageGroupID, "g")
				batch = append(batch, m)
			}
			require.NoError(t, pub.Publish(topic, batch...))

			ctx, cancel := context.WithCancel(context.Background())
			msgs, err := sub.Subscribe(ctx, topic)
			require.NoError(t, err)
			require.Eventually(t, func() bool { return receives.Load() >= 1 }, 10*time.Second, 10*time.Millisecond)
			time.Sleep(200 * time.Millisecond)
			cancel()
			var seen []int
			for m := range msgs {
				n, _ := strconv.Atoi(string(m.Payload))
				seen = append(seen, n)
				if c.nackFirst && len(seen) == 1 {
					m.Nack()
				} else {
					m.Ack()
				}
			}
			t.Logf("handed out late: %v", seen)
			require.NotEmpty(t, seen, "the late receive's first message is handed out")
			for i, n := range seen {
				require.Equal(t, i, n, "late hand-out out of the group's order: %v", seen)
			}
			if c.nackFirst {
				require.Equal(t, []int{0}, seen, "messages handed out after their group's first was nacked")
			}

			// The rest comes back from SQS, in order.
			next := len(seen)
			if c.nackFirst {
				next = 0
			}
			url, err := client.GetQueueUrl(context.Background(), &sqs.GetQueueUrlInput{QueueName: aws.String(topic)})
			require.NoError(t, err)
			var rest []int
			for deadline := time.Now().Add(15 * time.Second); len(rest) < 3-next && time.Now().Before(deadline); {
				out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: url.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
				require.NoError(t, err)
				for _, m := range out.Messages {
					env, err := kombu.DecodeEnvelope(aws.ToString(m.Body))
					require.NoError(t, err)
					n, _ := strconv.Atoi(string(env.Body))
					rest = append(rest, n)
					_, err = client.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: url.QueueUrl, ReceiptHandle: m.ReceiptHandle})
					require.NoError(t, err)
				}
			}
			want := []int{}
			for i := next; i < 3; i++ {
				want = append(want, i)
			}
			require.Equal(t, want, rest, "the messages given back come again, in order")
		})
	}
}

// TestETADeferralKeepsFIFOOrder: on a FIFO queue handled one message at a time, a task
// deferred to its eta is not overtaken by the next message of its group.
func TestETADeferralKeepsFIFOOrder(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	topic := testenv.UniqueName("eta-fifo") + ".fifo"
	semDeleteQueueLater(t, testenv.SQSClient(t, ep), topic)
	pub := semPublisher(t, semConfig(ep, 30*time.Second))
	cfg := semSubConfig(semConfig(ep, 30*time.Second))
	cfg.Concurrency = 1
	sub := semSubscriber(t, cfg)
	require.NoError(t, sub.SubscribeInitialize(topic))
	first, err := celery.NewTask("proj.tasks.first", nil, nil, celery.WithCountdown(3*time.Second))
	require.NoError(t, err)
	second, err := celery.NewTask("proj.tasks.second", nil, nil)
	require.NoError(t, err)
	for _, m := range []*message.Message{first, second} {
		m.Metadata.Set(kombu.MetadataMessageGroupID, "g")
	}
	require.NoError(t, pub.Publish(topic, first, second))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)
	var got []string
	for timeout := time.After(20 * time.Second); len(got) < 2; {
		select {
		case m := <-msgs:
			got = append(got, m.Metadata.Get(kombu.MetadataTask))
			m.Ack()
		case <-timeout:
			t.Fatalf("handed out only %v", got)
		}
	}
	require.Equal(t, []string{"proj.tasks.first", "proj.tasks.second"}, got, "the group's order")
}

// TestETABeyondVisibilityLimitDeferredAtOnce: a task whose eta lies further ahead than one
// visibility timeout may last (12 h) is made invisible for that long at once, not held by
// the subscription for the hours beyond.
func TestETABeyondVisibilityLimitDeferredAtOnce(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("eta-far")
	url := semQueue(t, client, topic, 30*time.Second)
	cfg := semConfig(ep, 30*time.Second)
	pub := semPublisher(t, cfg)
	sub := semSubscriber(t, semSubConfig(cfg))
	task, err := celery.NewTask("proj.tasks.later", nil, nil, celery.WithCountdown(13*time.Hour))
	require.NoError(t, err)
	msgs, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	require.NoError(t, pub.Publish(topic, task))
	require.Eventually(t, func() bool { return sub.Stats().ChangeVisibility >= 1 }, 10*time.Second, 20*time.Millisecond,
		"the deferral is sent at once")
	select {
	case m := <-msgs:
		t.Fatalf("task %s handed out 13 h before its eta", m.UUID)
	default:
	}
	visible, inFlight := semQueueCounts(t, client, url)
	require.Equal(t, 0, visible)
	require.Equal(t, 1, inFlight)
}
