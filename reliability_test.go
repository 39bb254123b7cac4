package kombu_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/faultproxy"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// relFastRetries keeps the SDK's retries (attempts as given) but with short pauses, so that a
// test through the fault proxy does not spend its time in backoff.
func relFastRetries(attempts int) func(*sqs.Options) {
	return func(o *sqs.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = attempts
			so.MaxBackoff = 200 * time.Millisecond
		})
	}
}

// relErrorLog records the errors a component logs.
type relErrorLog struct {
	watermill.NopLogger
	mu   sync.Mutex
	errs []error
}

func (l *relErrorLog) Error(msg string, err error, fields watermill.LogFields) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

func (l *relErrorLog) With(watermill.LogFields) watermill.LoggerAdapter { return l }

func (l *relErrorLog) errors() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

// TestFaultsAtLeastOnce publishes and consumes 2000 messages through a proxy that throttles,
// fails, slows down and drops requests and fails batch entries: every message is handled at
// least once, and the failed batch entries are sent again one by one.
func TestFaultsAtLeastOnce(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	proxy, err := faultproxy.Start(faultproxy.Config{
		Target: ep, Throttle: 0.04, ServerError: 0.04, DropBefore: 0.02, DropAfter: 0.02,
		Slow: 0.03, SlowDelay: 300 * time.Millisecond, PartialBatch: 0.2, PartialEntry: 0.3,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })

	topic := testenv.UniqueName("rel-faults")
	semQueue(t, client, topic, 5*time.Second)
	cfg := semConfig(proxy.URL, 5*time.Second)
	// Two attempts: some Publish calls fail and are published again by the caller.
	cfg.SQSOptions = []func(*sqs.Options){relFastRetries(2)}
	pub := semPublisher(t, cfg)
	cfg.SQSOptions = []func(*sqs.Options){relFastRetries(3)}
	scfg := semSubConfig(cfg)
	log := &relErrorLog{}
	sub, err := kombu.NewSubscriber(scfg, log)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })

	const n = 2000
	var (
		mu          sync.Mutex
		handled     = map[string]int{}
		published   = map[string]bool{}
		publishErrs = map[string]int{}
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Subscribe looks the queue up through the proxy too; when all three attempts of that
	// call fail (about one run in a few hundred), it returns the error, as it should, and a
	// caller subscribes again.
	var msgs <-chan *message.Message
	for attempt := 1; ; attempt++ {
		if msgs, err = sub.Subscribe(ctx, topic); err == nil || attempt == 5 {
			break
		}
		t.Logf("Subscribe, attempt %d: %v", attempt, err)
	}
	require.NoError(t, err)
	var consumers sync.WaitGroup
	consumers.Add(1)
	go func() {
		defer consumers.Done()
		for m := range msgs {
			mu.Lock()
			handled[m.UUID]++
			mu.Unlock()
			m.Ack()
		}
	}()

	// Four publishers, 25 messages a call; a failed call is published again until it succeeds.
	var publishers sync.WaitGroup
	for w := 0; w < 4; w++ {
		publishers.Add(1)
		go func() {
			defer publishers.Done()
			for i := 0; i < n/4/25; i++ {
				var batch []*message.Message
				for j := 0; j < 25; j++ {
					batch = append(batch, message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprint(w, i, j))))
				}
				for attempt := 0; ; attempt++ {
					err := pub.Publish(topic, batch...)
					if err == nil {
						break
					}
					mu.Lock()
					switch {
					case errors.Is(err, kombu.ErrConnection):
						publishErrs["connection"]++
					case errors.Is(err, kombu.ErrChannel):
						publishErrs["channel"]++
					default:
						publishErrs[err.Error()]++
					}
					mu.Unlock()
					if attempt > 20 {
						t.Errorf("publish keeps failing: %v", err)
						return
					}
				}
				mu.Lock()
				for _, m := range batch {
					published[m.UUID] = true
				}
				mu.Unlock()
			}
		}()
	}
	publishers.Wait()
	require.Len(t, published, n)

	deadline := time.Now().Add(60 * time.Second)
	lost := n
	for time.Now().Before(deadline) {
		mu.Lock()
		lost = 0
		for id := range published {
			if handled[id] == 0 {
				lost++
			}
		}
		mu.Unlock()
		if lost == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	consumers.Wait()
	require.NoError(t, sub.Close())

	mu.Lock()
	dups := 0
	for _, c := range handled {
		dups += c - 1
	}
	mu.Unlock()
	c := proxy.Counts()
	// Duplicates come from calls published again after an error (some of their messages had
	// gone through) and from receives whose answer was dropped (delivered again after the
	// visibility timeout).
	t.Logf("sent %d, handled %d distinct, duplicates %d, lost %d", n, len(handled), dups, lost)
	t.Logf("publish errors returned to the caller: %v", publishErrs)
	t.Logf("proxy: %d requests, %d throttled, %d 500s, %d dropped before / %d after forwarding, %d slowed",
		c.Requests, c.Throttled, c.ServerErrors, c.DroppedBefore, c.DroppedAfter, c.Slowed)
	t.Logf("proxy: failed batch entries %v, sent again %v; subscriber: %d failed acks, %d errors logged", c.FailedEntries, c.RetriedEntries, sub.FailedAcks(), len(log.errors()))
	t.Logf("requests: publisher %+v, subscriber %+v", pub.Stats(), sub.Stats())
	require.Zero(t, lost, "every published message must be handled")
	for _, action := range []string{"SendMessageBatch", "DeleteMessageBatch"} {
		require.Positive(t, c.FailedEntries[action], action)
		// An entry is given up after a few tries, when it can fail again each time.
		require.GreaterOrEqual(t, c.RetriedEntries[action], c.FailedEntries[action]*8/10, "%s entries failed by SQS must be sent again", action)
	}
	for _, err := range log.errors() {
		require.Truef(t, errors.Is(err, kombu.ErrConnection), "the subscriber reported an unclassified or channel error: %v", err)
	}
	for kind := range publishErrs {
		require.Equal(t, "connection", kind, "every publish error must be a connection error")
	}
}

// TestErrorClassesEndToEnd: errors returned by Publish and Subscribe and logged by the
// Subscriber carry their class, the queue and the message.
func TestErrorClassesEndToEnd(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("rel-classes")
	url := semQueue(t, client, topic, 30*time.Second)

	t.Run("throttled", func(t *testing.T) {
		proxy, err := faultproxy.Start(faultproxy.Config{Target: ep, Throttle: 1})
		require.NoError(t, err)
		defer proxy.Close()
		cfg := semConfig(proxy.URL, 30*time.Second)
		cfg.SQSOptions = []func(*sqs.Options){relFastRetries(2)}
		proxy.SetEnabled(false)
		pub := semPublisher(t, cfg)
		log := &relErrorLog{}
		sub, err := kombu.NewSubscriber(semSubConfig(cfg), log)
		require.NoError(t, err)
		defer sub.Close()
		require.NoError(t, pub.Publish(topic, message.NewMessage("warm-up", nil))) // resolves the queue
		require.NoError(t, sub.SubscribeInitialize(topic))
		proxy.SetEnabled(true)

		m := message.NewMessage(watermill.NewUUID(), []byte("x"))
		err = pub.Publish(topic, m)
		require.ErrorIs(t, err, kombu.ErrConnection)
		require.NotErrorIs(t, err, kombu.ErrChannel)
		var e *kombu.Error
		require.ErrorAs(t, err, &e)
		require.Equal(t, topic, e.Queue)
		require.Equal(t, m.UUID, e.MessageID)
		t.Logf("throttled publish: %v", err)

		ctx, cancel := context.WithCancel(context.Background())
		_, err = sub.Subscribe(ctx, topic)
		require.NoError(t, err)
		require.Eventually(t, func() bool { return len(log.errors()) > 0 }, 5*time.Second, 20*time.Millisecond)
		cancel()
		err = log.errors()[0]
		require.ErrorIs(t, err, kombu.ErrConnection)
		t.Logf("throttled receive: %v", err)
	})

	t.Run("channel errors", func(t *testing.T) {
		cfg := semConfig(ep, 30*time.Second)
		cfg.DisableQueueCreation = true
		pub := semPublisher(t, cfg)
		missing := testenv.UniqueName("rel-missing")
		err := pub.Publish(missing, message.NewMessage(watermill.NewUUID(), nil))
		require.ErrorIs(t, err, kombu.ErrChannel)
		require.ErrorIs(t, err, kombu.ErrQueueDoesNotExist)
		require.NotErrorIs(t, err, kombu.ErrConnection)
		sub := semSubscriber(t, semSubConfig(cfg))
		_, err = sub.Subscribe(context.Background(), missing)
		require.ErrorIs(t, err, kombu.ErrChannel)

		big := message.NewMessage(watermill.NewUUID(), make([]byte, 1<<20))
		err = pub.Publish(topic, big)
		require.ErrorIs(t, err, kombu.ErrMessageTooLarge)
		require.ErrorIs(t, err, kombu.ErrChannel)
	})

	t.Run("undecodable body", func(t *testing.T) {
		// A Kombu envelope with a pickled body: there is no Go decoder for pickle.
		pickled := `{"body": "gAR9lC4=", "content-encoding": "binary", "content-type": "application/x-python-serialize", "headers": {}, "properties": {"body_encoding": "base64", "delivery_tag": "t"}}`
		out, err := client.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: &url, MessageBody: &pickled})
		require.NoError(t, err)
		log := &relErrorLog{}
		sub, err := kombu.NewSubscriber(semSubConfig(semConfig(ep, 30*time.Second)), log)
		require.NoError(t, err)
		defer sub.Close()
		msgs, err := sub.Subscribe(context.Background(), topic)
		require.NoError(t, err)
		timeout := time.After(10 * time.Second)
	loop:
		for {
			select {
			case m := <-msgs:
				m.Ack()
				if m.Metadata.Get(kombu.MetadataDecodeError) != "" {
					break loop
				}
			case <-timeout:
				t.Fatal("the undecodable message was not handed over")
			}
		}
		var e *kombu.Error
		require.NotEmpty(t, log.errors())
		err = log.errors()[0]
		require.ErrorIs(t, err, kombu.ErrChannel)
		require.ErrorAs(t, err, &e)
		require.Equal(t, topic, e.Queue)
		require.Equal(t, *out.MessageId, e.MessageID)
		t.Logf("undecodable body: %v", err)
	})

	t.Run("queue deleted while subscribed", func(t *testing.T) {
		gone := testenv.UniqueName("rel-gone")
		goneURL := semQueue(t, client, gone, 30*time.Second)
		log := &relErrorLog{}
		scfg := semSubConfig(semConfig(ep, 30*time.Second))
		scfg.DisableLongPolling = true // ElasticMQ leaves a long poll on a deleted queue hanging
		sub, err := kombu.NewSubscriber(scfg, log)
		require.NoError(t, err)
		_, err = sub.Subscribe(context.Background(), gone)
		require.NoError(t, err)
		time.Sleep(200 * time.Millisecond)
		_, err = client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: &goneURL})
		require.NoError(t, err)
		require.Eventually(t, func() bool { return len(log.errors()) > 0 }, 5*time.Second, 20*time.Millisecond)
		time.Sleep(time.Second)
		errs := log.errors()
		require.ErrorIs(t, errs[0], kombu.ErrChannel)
		// Polled every 50 ms otherwise; after errors the pauses double from 100 ms.
		require.LessOrEqual(t, len(errs), 5, "a channel error is not retried at once")
		start := time.Now()
		require.NoError(t, sub.Close())
		require.Less(t, time.Since(start), 2*time.Second, "Close interrupts the pause after a channel error")
		t.Logf("deleted queue: %v", errs[0])
	})
}

// TestCloseUnderLoad closes a Subscriber in the middle of draining two busy queues: every
// message not acked is visible again within 2 s, and no goroutine outlives Close.
func TestCloseUnderLoad(t *testing.T) {
	// Not parallel: the goroutine check must not see other tests' goroutines.
	before := snapshotGoroutines()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	cfg := semConfig(ep, 60*time.Second)
	const n = 300
	topics := []string{testenv.UniqueName("rel-load-a"), testenv.UniqueName("rel-load-b")}
	urls := map[string]string{}
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, nil)
	require.NoError(t, err)
	for _, topic := range topics {
		urls[topic] = semQueue(t, client, topic, 60*time.Second)
		semPublishN(t, pub, topic, n)
	}
	require.NoError(t, pub.Close())

	scfg := semSubConfig(cfg)
	scfg.PrefetchCount = 30
	sub, err := kombu.NewSubscriber(scfg, nil)
	require.NoError(t, err)
	var acked atomic.Int64
	var handlers sync.WaitGroup
	for _, topic := range topics {
		msgs, err := sub.Subscribe(context.Background(), topic)
		require.NoError(t, err)
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			for m := range msgs {
				m.Ack()
				acked.Add(1)
			}
		}()
	}
	require.Eventually(t, func() bool { return acked.Load() >= n/2 }, 20*time.Second, time.Millisecond)
	require.NoError(t, sub.Close())
	closed := time.Now()
	handlers.Wait()

	// Nothing stays in flight: what was not acked is visible again.
	visible := 0
	require.Eventually(t, func() bool {
		visible = 0
		for _, url := range urls {
			v, f := semQueueCounts(t, client, url)
			if f > 0 {
				t.Logf("%d visible, %d in flight", v, f)
				return false
			}
			visible += v
		}
		return true
	}, 2*time.Second, 20*time.Millisecond, "messages still in flight 2 s after Close (failed acks %d)", sub.FailedAcks())
	t.Logf("closed after %d acks; %d messages visible again within %s", acked.Load(), visible, time.Since(closed).Round(time.Millisecond))
	require.GreaterOrEqual(t, visible+int(acked.Load()), 2*n, "a message neither acked nor visible again")
	require.Less(t, visible, 2*n)

	// Idle keep-alive connections of the SDK's HTTP clients may stay.
	before.requireNoNewGoroutines(t, "net/http.(*persistConn).readLoop", "net/http.(*persistConn).writeLoop")
}

// TestConsumerCrash kills a consumer process holding messages: another consumer gets all of
// them once their visibility timeout runs out (the heartbeat dies with the process).
func TestConsumerCrash(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("rel-crash")
	const vt = 3 * time.Second
	const n = 20
	url := semQueue(t, client, topic, vt)
	pub := semPublisher(t, semConfig(ep, vt))
	semPublishN(t, pub, topic, n)

	bin := filepath.Join(t.TempDir(), "crashsub")
	build := exec.Command("go", "build", "-o", bin, "./internal/crashsub")
	build.Dir = testenv.RepoRoot(t)
	out, err := build.CombinedOutput()
	require.NoError(t, err, "building crashsub: %s", out)

	cmd := exec.Command(bin, "-endpoint", ep, "-topic", topic, "-prefetch", strconv.Itoa(n))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	holding := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "holding") {
				select {
				case holding <- struct{}{}:
				default:
				}
			}
		}
	}()
	select {
	case <-holding:
	case <-time.After(15 * time.Second):
		t.Fatal("crashsub did not take a message")
	}
	require.Eventually(t, func() bool { _, f := semQueueCounts(t, client, url); return f == n }, 5*time.Second, 20*time.Millisecond)
	// Held past the visibility timeout: the heartbeat keeps them.
	time.Sleep(vt + time.Second)
	v, f := semQueueCounts(t, client, url)
	require.Equal(t, [2]int{0, n}, [2]int{v, f}, "visible/in flight while crashsub holds the messages")

	require.NoError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL))
	killed := time.Now()

	sub := semSubscriber(t, semSubConfig(semConfig(ep, vt)))
	msgs, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	got := map[string]bool{}
	timeout := time.After(vt + 10*time.Second)
	for len(got) < n {
		select {
		case m := <-msgs:
			got[m.UUID] = true
			m.Ack()
		case <-timeout:
			t.Fatalf("got %d of %d messages after the crash", len(got), n)
		}
	}
	t.Logf("all %d held messages received by another consumer %s after SIGKILL (visibility timeout %s)", n, time.Since(killed).Round(time.Millisecond), vt)
	require.Less(t, time.Since(killed), vt+5*time.Second)
}
