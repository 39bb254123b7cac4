package kombu_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// TestShutdownHonoursHandlerAck: two subscribers share a queue; the first is closed while its
// handler is 1 s into a 4 s task. The message stays invisible, the handler's Ack is sent
// (one delete), and the second subscriber never receives it: the task runs once.
func TestShutdownHonoursHandlerAck(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("shutdown-ack")
	url := semQueue(t, client, topic, 30*time.Second)
	pub := semPublisher(t, semConfig(ep, 30*time.Second))

	cfg := semSubConfig(semConfig(ep, 30*time.Second))
	cfg.CloseTimeout = 15 * time.Second
	first, err := kombu.NewSubscriber(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = first.Close() })
	second := semSubscriber(t, cfg)

	var runs atomic.Int32
	firstMsgs, err := first.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	semPublishN(t, pub, topic, 1)
	var m *message.Message
	select {
	case m = <-firstMsgs:
	case <-time.After(10 * time.Second):
		t.Fatal("first subscriber got nothing")
	}
	runs.Add(1)
	handlerDone := make(chan time.Time, 1)
	go func() {
		time.Sleep(4 * time.Second) // the task
		m.Ack()
		handlerDone <- time.Now()
	}()

	// The second subscriber starts polling, and 1 s into the task the first one closes.
	secondMsgs, err := second.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	var secondGot atomic.Int32
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case m2, ok := <-secondMsgs:
				if !ok {
					return
				}
				secondGot.Add(1)
				runs.Add(1)
				m2.Ack()
			case <-stop:
				return
			}
		}
	}()
	time.Sleep(time.Second)
	closeStart := time.Now()
	require.NoError(t, first.Close())
	closeTook := time.Since(closeStart)
	ackedAt := <-handlerDone
	require.False(t, time.Now().Before(ackedAt), "Close returned before the handler acked")

	// Give the second subscriber time to see the message, were it visible again.
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	visible, inFlight := semQueueCounts(t, client, url)
	t.Logf("Close took %s (handler acked 3 s into it); second subscriber received %d; queue: %d visible, %d in flight; deletes sent by the first: %d",
		closeTook.Round(10*time.Millisecond), secondGot.Load(), visible, inFlight, first.Stats().Delete)
	require.Zero(t, secondGot.Load(), "the second subscriber must not receive a message a handler still holds")
	require.EqualValues(t, 1, runs.Load(), "the task ran more than once")
	require.Zero(t, visible+inFlight, "the message must be deleted")
	require.EqualValues(t, 1, first.Stats().Delete, "one delete from the closing subscriber")
	require.Zero(t, first.FailedAcks())
}

// TestShutdownLateAckReported: a handler that acks after CloseTimeout ran out gets its message
// back in the queue (another consumer can have it at once) and the Ack counted as failed.
func TestShutdownLateAckReported(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("shutdown-late")
	url := semQueue(t, client, topic, 30*time.Second)
	pub := semPublisher(t, semConfig(ep, 30*time.Second))
	cfg := semSubConfig(semConfig(ep, 30*time.Second))
	cfg.CloseTimeout = time.Second
	sub, err := kombu.NewSubscriber(cfg, nil)
	require.NoError(t, err)
	msgs, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	semPublishN(t, pub, topic, 1)
	var m *message.Message
	select {
	case m = <-msgs:
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
	}
	start := time.Now()
	require.NoError(t, sub.Close())
	took := time.Since(start)
	require.Less(t, took, 1*time.Second+3*time.Second, "Close must return within CloseTimeout plus its margin")
	seen := semReceiveAll(t, client, url, 1, 3*time.Second)
	require.Len(t, seen, 1, "the unsettled message goes back when CloseTimeout runs out")
	m.Ack()
	require.Eventually(t, func() bool { return sub.FailedAcks() == 1 }, 5*time.Second, 10*time.Millisecond,
		"an Ack that can no longer be sent is counted")
	t.Logf("Close returned after %s; late Ack counted in FailedAcks", took.Round(10*time.Millisecond))
}

// TestShutdownDuringLongPollCountsOnce: a message published while a closing subscriber's long
// poll is open is received by that poll: SQS counts that receive whatever the client does
// (a cancelled long poll takes messages all the same). While its consumer still reads (as a
// Router does while it closes), the subscriber hands the message out instead of returning it,
// so that its one delivery counts once: it is handled once, with receive count 1.
func TestShutdownDuringLongPollCountsOnce(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("shutdown-poll")
	url := semQueue(t, client, topic, 60*time.Second)
	pub := semPublisher(t, semConfig(ep, 60*time.Second))
	cfg := semSubConfig(semConfig(ep, 60*time.Second))
	cfg.WaitTimeSeconds = 3
	sub, err := kombu.NewSubscriber(cfg, nil)
	require.NoError(t, err)
	msgs, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	counts := make(chan string, 10)
	go func() {
		for m := range msgs {
			counts <- m.Metadata.Get(kombu.MetadataReceiveCount)
			m.Ack()
		}
		close(counts)
	}()
	require.Eventually(t, func() bool { return sub.Stats().Receive >= 1 }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(200 * time.Millisecond)

	closed := make(chan struct{})
	go func() { _ = sub.Close(); close(closed) }()
	time.Sleep(100 * time.Millisecond)
	semPublishN(t, pub, topic, 1)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	var got []string
	for c := range counts {
		got = append(got, c)
	}
	visible, inFlight := semQueueCounts(t, client, url)
	t.Logf("deliveries during Close with their receive counts: %v; queue: %d visible, %d in flight", got, visible, inFlight)
	require.Equal(t, []string{"1"}, got, "one delivery, counted once")
	require.Zero(t, visible+inFlight, "acked and deleted")
}

// TestShutdownKeepsHandlerContext: a handler that holds a message when its subscription stops
// (Close, or the Subscribe context ending, as a Router's Close does) keeps a live context
// while CloseTimeout lets it finish, so that a task that heeds its context is not broken off;
// the context ends with the Ack, or once CloseTimeout has run out.
func TestShutdownKeepsHandlerContext(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	for _, how := range []string{"context cancelled", "Close"} {
		t.Run(how, func(t *testing.T) {
			topic := testenv.UniqueName("shutdown-ctx")
			semQueue(t, client, topic, 30*time.Second)
			pub := semPublisher(t, semConfig(ep, 30*time.Second))
			cfg := semSubConfig(semConfig(ep, 30*time.Second))
			cfg.CloseTimeout = 3 * time.Second
			sub, err := kombu.NewSubscriber(cfg, nil)
			require.NoError(t, err)
			t.Cleanup(func() { _ = sub.Close() })
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			msgs, err := sub.Subscribe(ctx, topic)
			require.NoError(t, err)
			semPublishN(t, pub, topic, 2)
			var held []*message.Message
			for len(held) < 2 {
				select {
				case m := <-msgs:
					held = append(held, m)
				case <-time.After(10 * time.Second):
					t.Fatal("no message")
				}
			}
			stopped := time.Now()
			if how == "Close" {
				go func() { _ = sub.Close() }()
			} else {
				cancel()
			}
			select {
			case <-held[0].Context().Done():
				t.Fatalf("the handler's context ended %s after the subscription stopped, with CloseTimeout 3 s left", time.Since(stopped))
			case <-time.After(500 * time.Millisecond):
			}
			held[0].Ack()
			select {
			case <-held[0].Context().Done():
			case <-time.After(5 * time.Second):
				t.Fatal("the context did not end with the Ack")
			}
			select {
			case <-held[1].Context().Done():
				require.GreaterOrEqual(t, time.Since(stopped), 2*time.Second, "the context of an unsettled message ended before CloseTimeout ran out")
			case <-time.After(10 * time.Second):
				t.Fatal("the context of a message still unsettled when CloseTimeout ran out did not end")
			}
		})
	}
}

// TestCloseDuringSubscribeReceivesNothing: a Subscribe still looking its queue up when Close
// begins returns a channel that is closed at once, and its subscription never receives: a
// receive started after Close would hide messages from other consumers and count a delivery
// nobody asked for.
func TestCloseDuringSubscribeReceivesNothing(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("close-subscribe")
	url := semQueue(t, client, topic, 30*time.Second)
	semPublishN(t, semPublisher(t, semConfig(ep, 30*time.Second)), topic, 1)

	var (
		mu      sync.Mutex
		release chan struct{}
	)
	asked := make(chan struct{}, 1)
	proxy := sqsProxy(t, ep, func(op string, _ []byte, _ http.ResponseWriter) bool {
		if op == "GetQueueAttributes" {
			mu.Lock()
			r := release
			mu.Unlock()
			select {
			case asked <- struct{}{}:
			default:
			}
			<-r
		}
		return false
	})
	// The window between Subscribe's lookup and its first receive is short: several rounds
	// make a receive that slips through it all but certain to show.
	for round := 0; round < 8; round++ {
		mu.Lock()
		release = make(chan struct{})
		mu.Unlock()
		cfg := semSubConfig(semConfig(proxy, 30*time.Second))
		sub, err := kombu.NewSubscriber(cfg, nil)
		require.NoError(t, err)
		type subscribed struct {
			msgs <-chan *message.Message
			err  error
		}
		done := make(chan subscribed, 1)
		go func() {
			msgs, err := sub.Subscribe(context.Background(), topic)
			done <- subscribed{msgs, err}
		}()
		select {
		case <-asked:
		case <-time.After(10 * time.Second):
			t.Fatal("Subscribe did not read the queue's attributes")
		}
		closed := make(chan struct{})
		go func() { _ = sub.Close(); close(closed) }()
		// Close marks the Subscriber closed at once; it then waits for the subscription.
		time.Sleep(200 * time.Millisecond)
		close(release)
		r := <-done
		if r.err == nil {
			for m := range r.msgs {
				t.Errorf("round %d: a message was handed out after Close", round)
				m.Nack()
			}
		}
		select {
		case <-closed:
		case <-time.After(15 * time.Second):
			t.Fatal("Close did not return")
		}
		require.Zero(t, sub.Stats().Receive, "round %d: received after Close", round)
	}
	visible, inFlight := semQueueCounts(t, client, url)
	require.Equal(t, 1, visible, "the message stays visible")
	require.Zero(t, inFlight)
}
