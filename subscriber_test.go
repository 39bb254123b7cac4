package kombu_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// semConfig points at the in-memory ElasticMQ; queues it creates get visibility vt.
func semConfig(endpoint string, vt time.Duration) kombu.Config {
	return kombu.Config{
		Region:            "us-east-1",
		EndpointURL:       endpoint,
		AccessKeyID:       "test",
		SecretAccessKey:   "test",
		VisibilityTimeout: vt,
	}
}

// semSubConfig polls briefly and often, so that the tests measure the library, not the waits.
func semSubConfig(cfg kombu.Config) kombu.SubscriberConfig {
	return kombu.SubscriberConfig{
		Config:              cfg,
		WaitTimeSeconds:     1,
		PollingInterval:     50 * time.Millisecond,
		ReconnectRetrySleep: 100 * time.Millisecond,
		CloseTimeout:        5 * time.Second,
	}
}

func semSubscriber(t *testing.T, cfg kombu.SubscriberConfig) *kombu.Subscriber {
	t.Helper()
	sub, err := kombu.NewSubscriber(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

func semPublisher(t *testing.T, cfg kombu.Config) *kombu.Publisher {
	t.Helper()
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	return pub
}

// semQueue creates the queue for topic with visibility vt and deletes it when the test ends.
// It returns its URL.
func semQueue(t *testing.T, client *sqs.Client, topic string, vt time.Duration) string {
	t.Helper()
	out, err := client.CreateQueue(context.Background(), &sqs.CreateQueueInput{
		QueueName:  aws.String(kombu.CanonicalQueueName("", topic)),
		Attributes: map[string]string{"VisibilityTimeout": strconv.Itoa(int(vt / time.Second))},
	})
	require.NoError(t, err)
	url := aws.ToString(out.QueueUrl)
	t.Cleanup(func() {
		_, _ = client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: aws.String(url)})
	})
	return url
}

// semDeleteQueueLater deletes the queue of topic when the test ends. Register it before the
// subscribers, so that it runs after they closed: ElasticMQ leaves a long poll on a deleted
// queue hanging until the client gives up.
func semDeleteQueueLater(t *testing.T, client *sqs.Client, topic string) {
	t.Cleanup(func() {
		u, err := client.GetQueueUrl(context.Background(), &sqs.GetQueueUrlInput{QueueName: aws.String(kombu.CanonicalQueueName("", topic))})
		if err == nil {
			_, _ = client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: u.QueueUrl})
		}
	})
}

// semPublishN publishes n plain messages in calls of 10 and returns their UUIDs.
func semPublishN(t *testing.T, pub *kombu.Publisher, topic string, n int) []string {
	t.Helper()
	var uuids []string
	for start := 0; start < n; start += 100 {
		var msgs []*message.Message
		for i := start; i < min(n, start+100); i++ {
			m := message.NewMessage(watermill.NewUUID(), []byte(strconv.Itoa(i)))
			msgs = append(msgs, m)
			uuids = append(uuids, m.UUID)
		}
		require.NoError(t, pub.Publish(topic, msgs...))
	}
	return uuids
}

// semQueueCounts returns the visible and in-flight message counts of a queue.
func semQueueCounts(t *testing.T, client *sqs.Client, url string) (visible, inFlight int) {
	t.Helper()
	out, err := client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible},
	})
	require.NoError(t, err)
	visible, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	inFlight, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return visible, inFlight
}

// semReceiveAll receives with a plain SQS client (another consumer) until want messages came
// or the timeout passed, and returns the SQS message ids seen (deleting them). Its receives
// hide messages for 5 s only: ElasticMQ sometimes breaks off a busy receive's response, and
// what that response carried comes back after the 5 s instead of the queue's timeout.
func semReceiveAll(t *testing.T, client *sqs.Client, url string, want int, timeout time.Duration) map[string]int {
	t.Helper()
	seen := map[string]int{}
	deadline := time.Now().Add(timeout)
	for len(seen) < want && time.Now().Before(deadline) {
		out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 5})
		require.NoError(t, err)
		for _, m := range out.Messages {
			seen[aws.ToString(m.MessageId)]++
			_, _ = client.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
		}
		if len(out.Messages) == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	return seen
}

// TestBackoffPolicyTiming nacks listed tasks (protocol 2 and 1) on their 1st, 2nd and 3rd
// delivery and measures how long each stays away; an unlisted task comes back at once.
func TestBackoffPolicyTiming(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("sem-backoff")
	semQueue(t, client, topic, 30*time.Second)
	cfg := semSubConfig(semConfig(ep, 30*time.Second))
	cfg.BackoffPolicy = map[int]int{1: 2, 2: 4, 3: 6}
	cfg.BackoffTasks = []string{"proj.tasks.flaky"}
	sub := semSubscriber(t, cfg)
	pub := semPublisher(t, semConfig(ep, 30*time.Second))

	flaky2, err := celery.NewTask("proj.tasks.flaky", []any{1}, nil)
	require.NoError(t, err)
	flaky1, err := celery.NewTask("proj.tasks.flaky", []any{1}, nil, celery.WithProtocol(1))
	require.NoError(t, err)
	other, err := celery.NewTask("proj.tasks.other", nil, nil)
	require.NoError(t, err)
	want := map[string][]int{flaky2.UUID: {2, 4, 6}, flaky1.UUID: {2, 4, 6}, other.UUID: {0}}

	msgs, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	require.NoError(t, pub.Publish(topic, flaky2, flaky1, other))

	nackedAt := map[string]time.Time{}
	deliveries := map[string]int{}
	gaps := map[string][]time.Duration{}
	done := 0
	timeout := time.After(25 * time.Second)
	for done < len(want) {
		select {
		case m := <-msgs:
			now := time.Now()
			if at, ok := nackedAt[m.UUID]; ok {
				gaps[m.UUID] = append(gaps[m.UUID], now.Sub(at))
			}
			n := deliveries[m.UUID]
			deliveries[m.UUID]++
			if n < len(want[m.UUID]) {
				nackedAt[m.UUID] = time.Now()
				m.Nack()
				continue
			}
			m.Ack()
			done++
		case <-timeout:
			t.Fatalf("timed out; deliveries %v, gaps %v", deliveries, gaps)
		}
	}
	for id, secs := range want {
		require.Len(t, gaps[id], len(secs), "task %s", id)
		for i, s := range secs {
			got := gaps[id][i]
			exp := time.Duration(s) * time.Second
			t.Logf("task %s nack %d: back after %s (policy %s)", id[:8], i+1, got.Round(10*time.Millisecond), exp)
			if s == 0 {
				require.Less(t, got, 2*time.Second, "unlisted task must come back at once")
				continue
			}
			// Never before its delay; later only by what a loaded machine adds.
			require.GreaterOrEqual(t, got, exp-500*time.Millisecond, "task %s nack %d came back early", id, i+1)
			require.Less(t, got, exp+3*time.Second, "task %s nack %d", id, i+1)
		}
	}
}

// TestCloseReturnsUnacked: messages in the prefetch buffer are visible to another consumer
// right after Close, although the queue's visibility timeout is 60 s; the one a handler holds
// (and never settles) once CloseTimeout has run out.
func TestCloseReturnsUnacked(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("sem-close")
	url := semQueue(t, client, topic, 60*time.Second)
	pub := semPublisher(t, semConfig(ep, 60*time.Second))
	semPublishN(t, pub, topic, 8)

	sub, err := kombu.NewSubscriber(semSubConfig(semConfig(ep, 60*time.Second)), nil)
	require.NoError(t, err)
	msgs, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	select {
	case <-msgs: // held in the "handler", never acked
	case <-time.After(5 * time.Second):
		t.Fatal("no message")
	}
	require.Eventually(t, func() bool { _, f := semQueueCounts(t, client, url); return f == 8 }, 5*time.Second, 50*time.Millisecond)
	closed := time.Now()
	closeDone := make(chan struct{})
	go func() { _ = sub.Close(); close(closeDone) }()
	seen := semReceiveAll(t, client, url, 7, 2*time.Second)
	require.Len(t, seen, 7, "the 7 buffered messages visible within 2 s of Close")
	t.Logf("7 buffered messages back %s after Close", time.Since(closed).Round(time.Millisecond))
	<-closeDone
	seen = semReceiveAll(t, client, url, 1, 2*time.Second)
	require.Len(t, seen, 1, "the held message visible once CloseTimeout ran out")
	t.Logf("the held message back %s after Close (CloseTimeout 5 s)", time.Since(closed).Round(time.Millisecond))
}

// TestCloseDuringLongPoll: a message arriving while a long poll is open and Close is waiting
// for it is returned too, instead of staying invisible for the visibility timeout.
func TestCloseDuringLongPoll(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("sem-close-poll")
	url := semQueue(t, client, topic, 60*time.Second)
	pub := semPublisher(t, semConfig(ep, 60*time.Second))
	cfg := semSubConfig(semConfig(ep, 60*time.Second))
	cfg.WaitTimeSeconds = 3
	sub, err := kombu.NewSubscriber(cfg, nil)
	require.NoError(t, err)
	_, err = sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	// Let the first long poll open.
	require.Eventually(t, func() bool { return sub.Stats().Receive >= 1 }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(200 * time.Millisecond)

	closed := make(chan struct{})
	go func() { _ = sub.Close(); close(closed) }()
	semPublishN(t, pub, topic, 1)
	published := time.Now()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	_, inFlight := semQueueCounts(t, client, url)
	seen := semReceiveAll(t, client, url, 1, 2*time.Second)
	require.Len(t, seen, 1, "the message that arrived during the closing long poll must be visible within 2 s")
	t.Logf("message in flight after Close: %d; visible again %s after it was published", inFlight, time.Since(published).Round(time.Millisecond))
}

// TestHeartbeatKeepsMessageInvisible: a handler holds a message for three visibility timeouts
// while a second subscriber polls the queue; the message is delivered once.
func TestHeartbeatKeepsMessageInvisible(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	cfg := semConfig(ep, 2*time.Second)
	topic := testenv.UniqueName("sem-heartbeat")
	semDeleteQueueLater(t, testenv.SQSClient(t, ep), topic)
	subA := semSubscriber(t, semSubConfig(cfg))
	subB := semSubscriber(t, semSubConfig(cfg))
	require.NoError(t, subA.SubscribeInitialize(topic)) // created with VisibilityTimeout 2 s
	pub := semPublisher(t, cfg)
	semPublishN(t, pub, topic, 1)

	var deliveries atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	handle := func(msgs <-chan *message.Message, hold time.Duration) {
		for m := range msgs {
			deliveries.Add(1)
			select {
			case <-time.After(hold):
			case <-ctx.Done():
			}
			m.Ack()
		}
	}
	msgsA, err := subA.Subscribe(ctx, topic)
	require.NoError(t, err)
	go handle(msgsA, 6*time.Second)
	require.Eventually(t, func() bool { return deliveries.Load() == 1 }, 5*time.Second, 10*time.Millisecond)
	msgsB, err := subB.Subscribe(ctx, topic)
	require.NoError(t, err)
	go handle(msgsB, 0)
	time.Sleep(7 * time.Second)
	require.EqualValues(t, 1, deliveries.Load(), "held for 3× the visibility timeout, the message must not be delivered again")
	t.Logf("heartbeat visibility changes by subscriber A: %d", subA.Stats().ChangeVisibility)
}

// TestMultiTopicFairness: a quiet topic's message arrives quickly while a busy topic of the
// same Subscriber is being drained.
func TestMultiTopicFairness(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	cfg := semConfig(ep, 30*time.Second)
	busy, quiet := testenv.UniqueName("sem-busy"), testenv.UniqueName("sem-quiet")
	semQueue(t, client, busy, 30*time.Second)
	semQueue(t, client, quiet, 30*time.Second)
	pub := semPublisher(t, cfg)
	semPublishN(t, pub, busy, 1000)
	sub := semSubscriber(t, semSubConfig(cfg))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	busyMsgs, err := sub.Subscribe(ctx, busy)
	require.NoError(t, err)
	quietMsgs, err := sub.Subscribe(ctx, quiet)
	require.NoError(t, err)
	var drained atomic.Int32
	go func() {
		for m := range busyMsgs {
			time.Sleep(time.Millisecond)
			m.Ack()
			drained.Add(1)
		}
	}()
	require.Eventually(t, func() bool { return drained.Load() >= 50 }, 10*time.Second, 10*time.Millisecond)
	semPublishN(t, pub, quiet, 1)
	sent := time.Now()
	select {
	case m := <-quietMsgs:
		m.Ack()
		took := time.Since(sent)
		t.Logf("quiet message arrived %s after publishing, %d busy messages handled by then", took.Round(time.Millisecond), drained.Load())
		require.Less(t, took, 3*time.Second)
		require.Less(t, int(drained.Load()), 1000, "the busy topic must still be draining")
	case <-time.After(5 * time.Second):
		t.Fatal("the quiet topic's message did not arrive")
	}
}

// TestBatchedAcks drains a pre-filled queue of 1000 messages and counts the requests.
func TestBatchedAcks(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	const vt = 5 * time.Second
	cfg := semConfig(ep, vt)
	topic := testenv.UniqueName("sem-acks")
	url := semQueue(t, client, topic, vt)
	pub := semPublisher(t, cfg)
	const n = 1000
	semPublishN(t, pub, topic, n)
	log := &relErrorLog{}
	sub, err := kombu.NewSubscriber(semSubConfig(cfg), log)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	msgs, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	seen := map[string]bool{}
	start := time.Now()
	// A receive whose answer is lost on the way and retried by the SDK leaves its messages in
	// flight until their visibility timeout, as on SQS: they come late, not never. The figures
	// are taken before such a wait.
	var st kombu.RequestCounts
	var took time.Duration
	stalledAt := 0
	for len(seen) < n {
		select {
		case m := <-msgs:
			seen[m.UUID] = true
			m.Ack()
		case <-time.After(time.Second):
			if stalledAt == 0 {
				stalledAt, st, took = len(seen), sub.Stats(), time.Since(start)
			}
		case <-time.After(vt + 5*time.Second):
			t.Fatalf("only %d of %d messages; errors logged: %v", len(seen), n, log.errors())
		}
	}
	if stalledAt == 0 {
		st, took = sub.Stats(), time.Since(start)
	} else {
		t.Logf("%d messages came only after their visibility timeout (a receive answer lost and retried)", n-stalledAt)
	}
	require.Eventually(t, func() bool { v, f := semQueueCounts(t, client, url); return v == 0 && f == 0 }, 5*time.Second, 50*time.Millisecond)
	perMsg := float64(st.Receive+st.Delete) / n
	t.Logf("%d messages in %s: %d receives, %d deletes, %d visibility changes; %.3f requests per message",
		n, took.Round(time.Millisecond), st.Receive, st.Delete, st.ChangeVisibility, perMsg)
	// Batched: about 0.1 deletes and 0.2 requests per message (exact figures: make bench). One
	// delete per message, as Kombu sends, would be 1.0 and 1.1; the bounds leave room for
	// partial batches on a loaded machine.
	require.Less(t, float64(st.Delete)/n, 0.3, "deletes per message")
	require.Less(t, perMsg, 0.6, "receives and deletes per message")
}

// TestPrefetchAboveTen: PrefetchCount 30 fills the buffer with several receives, and never
// holds more than PrefetchCount+10 messages.
func TestPrefetchAboveTen(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	cfg := semConfig(ep, 30*time.Second)
	topic := testenv.UniqueName("sem-prefetch")
	url := semQueue(t, client, topic, 30*time.Second)
	pub := semPublisher(t, cfg)
	const n, prefetch = 100, 30
	semPublishN(t, pub, topic, n)
	scfg := semSubConfig(cfg)
	scfg.PrefetchCount = prefetch
	sub := semSubscriber(t, scfg)
	msgs, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	first := <-msgs // held while the buffer fills
	maxInFlight := 0
	for i := 0; i < 15; i++ {
		time.Sleep(100 * time.Millisecond)
		_, f := semQueueCounts(t, client, url)
		maxInFlight = max(maxInFlight, f)
	}
	receives := sub.Stats().Receive
	t.Logf("with the handler busy: %d receives, at most %d messages held", receives, maxInFlight)
	require.GreaterOrEqual(t, receives, int64(3), "several receives fill a buffer above 10")
	require.GreaterOrEqual(t, maxInFlight, prefetch)
	require.LessOrEqual(t, maxInFlight, prefetch+10)
	first.Ack()
	got := 1
	for got < n {
		select {
		case m := <-msgs:
			if got%20 == 0 {
				// With this message held and the acks sent, what is in flight is the buffer.
				time.Sleep(200 * time.Millisecond)
				_, f := semQueueCounts(t, client, url)
				maxInFlight = max(maxInFlight, f)
			}
			m.Ack()
			got++
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d", got, n)
		}
	}
	t.Logf("at most %d messages held while draining", maxInFlight)
	require.LessOrEqual(t, maxInFlight, prefetch+10)
}

// TestETADeferral: a task with a countdown is handed over at its eta, not before, and no other
// consumer gets it meanwhile, also when the eta lies beyond the queue's visibility timeout.
func TestETADeferral(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		vt        time.Duration
		countdown time.Duration
	}{{"within visibility", 30 * time.Second, 3 * time.Second}, {"beyond visibility", 2 * time.Second, 5 * time.Second}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ep := testenv.SQSEndpoint(t)
			client := testenv.SQSClient(t, ep)
			topic := testenv.UniqueName("sem-eta")
			url := semQueue(t, client, topic, c.vt)
			cfg := semConfig(ep, c.vt)
			pub := semPublisher(t, cfg)
			sub := semSubscriber(t, semSubConfig(cfg))
			task, err := celery.NewTask("proj.tasks.later", nil, nil, celery.WithCountdown(c.countdown))
			require.NoError(t, err)
			eta := time.Now().Add(c.countdown)
			msgs, err := sub.Subscribe(context.Background(), topic)
			require.NoError(t, err)
			require.NoError(t, pub.Publish(topic, task))

			// Another consumer polls while the task waits for its eta (once due, any consumer
			// may take it). It starts once the subscriber has received the task: before that,
			// either of them may get it first.
			for received := time.Now().Add(5 * time.Second); time.Now().Before(received); time.Sleep(20 * time.Millisecond) {
				if visible, inFlight := semQueueCounts(t, client, url); visible == 0 && inFlight == 1 {
					break
				}
			}
			var stolen atomic.Int32
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Until(eta) > 100*time.Millisecond {
					select {
					case <-stop:
						return
					default:
					}
					// Short polls: ElasticMQ answers only one of two long polls open on a queue
					// when a message becomes visible again, which would delay the subscriber's.
					out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
						QueueUrl: aws.String(url), WaitTimeSeconds: 0, VisibilityTimeout: 1})
					if err == nil {
						stolen.Add(int32(len(out.Messages)))
					}
					time.Sleep(100 * time.Millisecond)
				}
			}()
			select {
			case m := <-msgs:
				at := time.Now()
				m.Ack()
				close(stop)
				wg.Wait()
				t.Logf("delivered %s after its eta", at.Sub(eta).Round(time.Millisecond))
				require.False(t, at.Before(eta.Add(-100*time.Millisecond)), "delivered %s before its eta", eta.Sub(at))
				require.Less(t, at.Sub(eta), 3*time.Second)
				require.Zero(t, stolen.Load(), "another consumer received the deferred task")
			case <-time.After(c.countdown + 5*time.Second):
				close(stop)
				wg.Wait()
				t.Fatal("task not delivered")
			}
		})
	}
}

// TestContextCancellation: cancelled contexts stop Publish and Subscribe with context.Canceled.
func TestContextCancellation(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	cfg := semConfig(ep, 30*time.Second)
	topic := testenv.UniqueName("sem-ctx")
	semDeleteQueueLater(t, testenv.SQSClient(t, ep), topic)
	pub := semPublisher(t, cfg)
	sub := semSubscriber(t, semSubConfig(cfg))
	require.NoError(t, sub.SubscribeInitialize(topic))

	// Publish with a cancelled message context: at once, nothing sent.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := message.NewMessage(watermill.NewUUID(), []byte("x"))
	m.SetContext(ctx)
	sends := pub.Stats().Send
	err := pub.Publish(topic, m)
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, errors.Is(err, kombu.ErrConnection) || errors.Is(err, kombu.ErrChannel))
	require.Equal(t, sends, pub.Stats().Send, "a publish with a cancelled context sent a request")

	// Cancelled while a large publish is under way.
	ctx, cancel = context.WithCancel(context.Background())
	var batch []*message.Message
	for i := 0; i < 500; i++ {
		bm := message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprint(i)))
		bm.SetContext(ctx)
		batch = append(batch, bm)
	}
	go func() { time.Sleep(5 * time.Millisecond); cancel() }()
	start := time.Now()
	err = pub.Publish(topic, batch...)
	if err != nil { // it may have finished before the cancel
		require.ErrorIs(t, err, context.Canceled)
	}
	require.Less(t, time.Since(start), 5*time.Second, "the publish went on after its context was cancelled")

	// Subscribe with a cancelled context.
	_, err = sub.Subscribe(ctx, topic)
	require.ErrorIs(t, err, context.Canceled)

	// A running subscription stops promptly when its context is cancelled.
	ctx, cancel = context.WithCancel(context.Background())
	msgs, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond)
	cancel()
	start = time.Now()
	for range msgs {
	}
	t.Logf("subscription closed %s after its context was cancelled", time.Since(start).Round(time.Millisecond))
	// The open long poll (1 s) is let finish; the margin is for a loaded machine.
	require.Less(t, time.Since(start), 6*time.Second)
}
