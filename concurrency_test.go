package kombu_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// gauge tracks how many handlers run at once and the most seen.
type gauge struct {
	now, peak atomic.Int32
}

func (g *gauge) enter() {
	n := g.now.Add(1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

func (g *gauge) leave() { g.now.Add(-1) }

// TestConcurrentDeliveryStandard: on a standard queue a subscription hands out Concurrency
// messages at once, never more, and with Concurrency 1 one at a time.
func TestConcurrentDeliveryStandard(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	for _, n := range []int{1, 8} {
		t.Run(fmt.Sprintf("concurrency=%d", n), func(t *testing.T) {
			t.Parallel()
			topic := testenv.UniqueName("conc-std")
			semQueue(t, testenv.SQSClient(t, ep), topic, 30*time.Second)
			pub := semPublisher(t, semConfig(ep, 30*time.Second))
			cfg := semSubConfig(semConfig(ep, 30*time.Second))
			cfg.Concurrency = n
			sub := semSubscriber(t, cfg)
			total := 4 * n
			if n == 1 {
				total = 6
			}
			semPublishN(t, pub, topic, total)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			msgs, err := sub.Subscribe(ctx, topic)
			require.NoError(t, err)
			var g gauge
			var wg sync.WaitGroup
			deadline := time.After(60 * time.Second)
			for i := 0; i < total; i++ {
				select {
				case m := <-msgs:
					g.enter()
					wg.Add(1)
					go func() {
						defer wg.Done()
						time.Sleep(300 * time.Millisecond)
						g.leave()
						m.Ack()
					}()
				case <-deadline:
					t.Fatalf("got %d of %d messages", i, total)
				}
			}
			wg.Wait()
			t.Logf("peak handlers at once: %d (concurrency %d)", g.peak.Load(), n)
			require.Equal(t, int32(n), g.peak.Load())
		})
	}
}

// TestConcurrentFIFOGroupOrder: on a FIFO queue handled with Concurrency 4, each message
// group is handled one message at a time and in order, also when a message is nacked (it and
// the rest of its group come again, in order), while different groups run in parallel.
func TestConcurrentFIFOGroupOrder(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	topic := testenv.UniqueName("conc-fifo") + ".fifo"
	semDeleteQueueLater(t, testenv.SQSClient(t, ep), topic)
	pub := semPublisher(t, semConfig(ep, 30*time.Second))
	cfg := semSubConfig(semConfig(ep, 30*time.Second))
	cfg.Concurrency = 4
	// ElasticMQ answers a FIFO long poll only when its wait ends (see TestPubSubFIFO).
	cfg.DisableLongPolling = true
	cfg.PollingInterval = 50 * time.Millisecond
	sub := semSubscriber(t, cfg)
	require.NoError(t, sub.SubscribeInitialize(topic))

	const groups, perGroup = 4, 8
	var batch []*message.Message
	for i := 0; i < perGroup; i++ {
		for g := 0; g < groups; g++ {
			m := message.NewMessage(watermill.NewUUID(), []byte(strconv.Itoa(i)))
			m.Metadata.Set(kombu.MetadataMessageGroupID, "g"+strconv.Itoa(g))
			m.Metadata.Set("seq", strconv.Itoa(i))
			batch = append(batch, m)
		}
	}
	require.NoError(t, pub.Publish(topic, batch...))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)

	var (
		mu       sync.Mutex
		acked    = map[string][]int{} // group -> acked sequence numbers, in order
		active   = map[string]bool{}
		problems []string
		nacks    int
	)
	var groupsAtOnce gauge
	var wg sync.WaitGroup
	deadline := time.After(90 * time.Second)
	for done := 0; done < groups*perGroup; {
		var m *message.Message
		select {
		case m = <-msgs:
		case <-deadline:
			t.Fatalf("acked %d of %d messages: %v", done, groups*perGroup, acked)
		}
		g := m.Metadata.Get(kombu.MetadataReceivedGroupID)
		seq, _ := strconv.Atoi(m.Metadata.Get("seq"))
		count, _ := strconv.Atoi(m.Metadata.Get(kombu.MetadataReceiveCount))
		mu.Lock()
		if active[g] {
			problems = append(problems, fmt.Sprintf("group %s: message %d handed out while another of the group was in a handler", g, seq))
		}
		if want := len(acked[g]); seq != want {
			problems = append(problems, fmt.Sprintf("group %s: got message %d, expected %d", g, seq, want))
		}
		active[g] = true
		// Every group's third message fails on its first delivery.
		nack := seq == 2 && count == 1
		if nack {
			nacks++
		} else {
			acked[g] = append(acked[g], seq)
			done++
		}
		mu.Unlock()
		groupsAtOnce.enter()
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(100 * time.Millisecond)
			mu.Lock()
			active[g] = false
			mu.Unlock()
			groupsAtOnce.leave()
			if nack {
				m.Nack()
			} else {
				m.Ack()
			}
		}()
	}
	wg.Wait()
	t.Logf("groups handled at once: at most %d; nacks: %d", groupsAtOnce.peak.Load(), nacks)
	require.Empty(t, problems)
	require.Equal(t, groups, nacks)
	for g := 0; g < groups; g++ {
		require.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7}, acked["g"+strconv.Itoa(g)])
	}
	require.GreaterOrEqual(t, groupsAtOnce.peak.Load(), int32(2), "groups should run in parallel")
	require.LessOrEqual(t, groupsAtOnce.peak.Load(), int32(4))
}

// TestConcurrentShutdownHonoursAcks: Close while four handlers hold a message each: the
// buffered messages go back at once, the four Acks sent after Close are honoured (deleted,
// never seen by another consumer), nothing counts as a failed ack.
func TestConcurrentShutdownHonoursAcks(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("conc-close")
	url := semQueue(t, client, topic, 30*time.Second)
	pub := semPublisher(t, semConfig(ep, 30*time.Second))
	cfg := semSubConfig(semConfig(ep, 30*time.Second))
	cfg.Concurrency = 4
	cfg.CloseTimeout = 15 * time.Second
	sub, err := kombu.NewSubscriber(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	const total = 14
	semPublishN(t, pub, topic, total)

	msgs, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	held := map[string]bool{}
	var wg sync.WaitGroup
	for len(held) < 4 {
		select {
		case m := <-msgs:
			held[m.Metadata.Get(kombu.MetadataSQSMessageID)] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(3 * time.Second)
				m.Ack()
			}()
		case <-time.After(20 * time.Second):
			t.Fatalf("only %d handlers got a message", len(held))
		}
	}
	// Let the buffer fill, then close 1 s into the handlers' work.
	time.Sleep(time.Second)
	start := time.Now()
	require.NoError(t, sub.Close())
	took := time.Since(start)
	wg.Wait()
	t.Logf("Close took %s", took.Round(time.Millisecond))
	require.Greater(t, took, time.Second, "Close waits for the handlers' acks")
	require.Less(t, took, 10*time.Second)
	require.Zero(t, sub.FailedAcks())
	for range msgs { // closed once settled; nothing more is handed out
		t.Fatal("a message was handed out after Close")
	}

	// Another consumer gets exactly the others, at once.
	seen := semReceiveAll(t, client, url, total-4, 10*time.Second)
	require.Len(t, seen, total-4)
	for id, n := range seen {
		require.False(t, held[id], "an acked message came back")
		require.Equal(t, 1, n)
	}
	visible, inFlight := semQueueCounts(t, client, url)
	require.Zero(t, visible+inFlight)
}

// TestConcurrentReceivesInFlight: while receives come back full and the prefetch buffer has
// room for several batches, more than one ReceiveMessage is under way at once; an idle queue
// has a single long poll open.
func TestConcurrentReceivesInFlight(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	proxy := newRecordingProxy(t, ep)
	var inflight, peak atomic.Int32
	proxy.delay = func(op string) time.Duration {
		if op != "ReceiveMessage" {
			return 0
		}
		n := inflight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		const d = 200 * time.Millisecond // a slow network: the round trips are worth overlapping
		time.AfterFunc(d, func() { inflight.Add(-1) })
		return d
	}
	topic := testenv.UniqueName("conc-rx")
	semQueue(t, testenv.SQSClient(t, ep), topic, 30*time.Second)
	pub := semPublisher(t, semConfig(ep, 30*time.Second))
	const total = 300
	semPublishN(t, pub, topic, total)

	cfg := semSubConfig(semConfig(proxy.URL, 30*time.Second))
	cfg.Concurrency = 10
	cfg.PrefetchCount = 40
	sub := semSubscriber(t, cfg)
	msgs, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	for i := 0; i < total; i++ {
		select {
		case m := <-msgs:
			m.Ack()
		case <-time.After(30 * time.Second):
			t.Fatalf("got %d of %d messages", i, total)
		}
	}
	busyPeak := peak.Load()
	// Idle: the queue is empty, one long poll after the other.
	time.Sleep(500 * time.Millisecond)
	peak.Store(inflight.Load())
	time.Sleep(3 * time.Second)
	idlePeak := peak.Load()
	t.Logf("receives under way at once: %d while busy, %d while idle", busyPeak, idlePeak)
	require.GreaterOrEqual(t, busyPeak, int32(2))
	require.Equal(t, int32(1), idlePeak)
}
