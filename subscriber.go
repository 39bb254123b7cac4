package kombu

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/watermill-kombu/watermill-kombu/internal/gopool"
)

// MetadataDecodeError is set, with the reason, on a message whose SQS body could not be
// decoded. Such a message is handed to the handler with the raw SQS body as payload rather than
// dropped; a Nack returns it to the queue under the backoff policy, and an SQS redrive policy
// (CreationAttributes["RedrivePolicy"]) can move it to a dead-letter queue.
const MetadataDecodeError = "kombu_decode_error"

// metadataSQSBody is the SQS body as received, set when SubscriberConfig.KeepSQSBody is on.
const metadataSQSBody = "sqs_body"

// maxReconnectRetrySleep is the longest pause between failed receives.
const maxReconnectRetrySleep = 30 * time.Second

// closeMargin is what Close may take beyond CloseTimeout: the time left, once handlers ran out
// of CloseTimeout, to return their messages and send the last acks.
const closeMargin = 2 * time.Second

// Subscriber consumes SQS queues in Kombu's format. The topic is the Kombu queue name. Each
// Subscribe call polls its queue on its own, so a busy queue never starves a quiet one.
type Subscriber struct {
	*sqsConn
	config  SubscriberConfig
	logger  watermill.LoggerAdapter
	failed  atomic.Int64
	acks    *acker
	backoff nackBackoff
	// sqsCalls run the SQS calls, workers the waits of messages handed out outside the
	// deliverers (while stopping), keeping their goroutines.
	sqsCalls *gopool.Pool
	workers  *gopool.Pool

	closing   chan struct{}
	closeOnce sync.Once
	closeAt   time.Time // when Close began; read after closing is closed
	subs      sync.WaitGroup
	mu        sync.Mutex
	closed    bool

	// etaSettling, when set (by tests), runs when a deferral's timer is about to settle its
	// message.
	etaSettling func()
}

// NewSubscriber creates a Subscriber. A nil logger logs nothing.
func NewSubscriber(config SubscriberConfig, logger watermill.LoggerAdapter) (*Subscriber, error) {
	config.setDefaults()
	if err := config.Validate(); err != nil {
		return nil, err
	}
	conn, err := newSQSConn(config.Config, newBackoffTable(config.BackoffPolicy, config.BackoffTasks))
	if err != nil {
		return nil, err
	}
	logger = componentLogger(logger, "kombu.Subscriber")
	s := &Subscriber{sqsConn: conn, config: config, logger: logger, closing: make(chan struct{}),
		sqsCalls: gopool.NewDeep(), workers: gopool.New()}
	s.fanout = newSNSFanout(config.Config, conn, logger)
	s.backoff = nackBackoff{disabled: config.DisableNackBackoff, immediate: config.NackBackoffImmediate,
		initial: config.NackBackoffInitial, max: config.NackBackoffMax}
	s.acks = newAcker(logger, config.AckBatchWindow, !config.DisableHeartbeat, &s.failed, s.sqsCalls)
	return s, nil
}

// Stats returns the SQS requests this Subscriber has sent so far.
func (s *Subscriber) Stats() RequestCounts { return s.stats.Snapshot() }

// FailedAcks is the number of deletes and visibility changes given up after retries, or that
// came too late to be sent (an Ack after Close gave the message back), each reported in the
// log. Such messages come back after their visibility timeout: nothing is lost, but the work
// may be done twice.
func (s *Subscriber) FailedAcks() int64 { return s.failed.Load() }

// SubscribeInitialize resolves (and, unless configured otherwise, creates) the queue, so that
// messages published before Subscribe are kept.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	if _, err := s.resolver.resolve(context.Background(), topic); err != nil {
		return classify("resolve queue", topic, "", err)
	}
	return s.bindFanout(context.Background(), topic)
}

// Subscribe starts consuming the queue named by topic. The returned channel is closed when ctx
// is cancelled or the Subscriber is closed, once the messages handed out are settled (see
// SubscriberConfig.CloseTimeout).
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrSubscriberClosed
	}
	s.subs.Add(1)
	s.mu.Unlock()

	if err := ctx.Err(); err != nil {
		s.subs.Done()
		return nil, fmt.Errorf("kombu: subscribing to %q: %w", topic, err)
	}
	// The lookups end when Close begins: Close does not wait for a lookup that hangs.
	lookup, endLookup := context.WithCancel(ctx)
	defer endLookup()
	go func() {
		select {
		case <-s.closing:
			endLookup()
		case <-lookup.Done():
		}
	}()
	q, err := s.resolver.resolve(lookup, topic)
	if err != nil {
		err = classify("resolve queue", topic, "", err)
	} else {
		err = s.bindFanout(lookup, topic)
	}
	if err != nil {
		s.subs.Done()
		select {
		case <-s.closing:
			return nil, fmt.Errorf("kombu: subscribing to %q: %w", topic, ErrSubscriberClosed)
		default:
			return nil, err
		}
	}
	sub := &subscription{
		s:       s,
		ctx:     ctx,
		out:     make(chan *message.Message),
		buf:     make(chan *inbound, s.config.PrefetchCount),
		drained: make(chan struct{}, 1),
		settled: make(chan struct{}, 1),
		stop:    make(chan struct{}),
		expired: make(chan struct{}),
		slots:   make(chan struct{}, s.config.Concurrency),
		logger:  s.logger.With(watermill.LogFields{"topic": topic, "queue_url": q.url}),
	}
	if q.fifo && s.config.Concurrency > 1 {
		sub.gate = newGroupGate()
	}
	sub.calls, sub.cancelCalls = context.WithCancel(context.Background())
	sub.msgs, sub.cancelMsgs = context.WithCancel(context.WithoutCancel(ctx))
	sub.src.Store(sub.newSource(ctx, q))
	sub.logger.Info("Subscribing to SQS queue", nil)
	go sub.run()
	return sub.out, nil
}

// Close stops every subscription and returns within CloseTimeout plus closeMargin (2 s),
// whatever the network does. Messages waiting in the prefetch buffers go back to their queues
// at once; a long poll still open is let finish (SQS would hide what it brings even if it
// were cancelled) and what it brings goes back too. Messages handed to handlers stay
// invisible and their Acks and Nacks are sent until CloseTimeout runs out; those still
// unsettled then are made visible again. Safe to call more than once.
func (s *Subscriber) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.closeAt = time.Now()
		close(s.closing)
		hard := s.closeAt.Add(s.config.CloseTimeout + closeMargin)
		waited := make(chan struct{})
		go func() {
			s.subs.Wait()
			close(waited)
		}()
		timer := time.NewTimer(time.Until(hard))
		defer timer.Stop()
		select {
		case <-waited:
		case <-timer.C:
			s.logger.Error("Subscriptions did not stop within CloseTimeout", nil, nil)
		}
		ctx, cancel := context.WithDeadline(context.Background(), hard)
		defer cancel()
		s.acks.close(ctx)
		s.sqsCalls.Close()
		s.workers.Close()
		s.logger.Debug("Subscriber closed", watermill.LogFields{"failed_acks": s.failed.Load()})
	})
	return nil
}

// source is the queue a subscription receives from, with the visibility its messages get.
// It is replaced when the queue is created again, which may have another VisibilityTimeout.
type source struct {
	q *queue
	// visibility is what the heartbeat extends messages by, before a third of it is left.
	visibility time.Duration
	// receiveVisibility, when not 0, is the VisibilityTimeout every receive asks for: the
	// queue's own could not be read, or is 0, and visibility is the configured one.
	receiveVisibility int32
}

// newSource reads the VisibilityTimeout of q for the subscription's receives.
func (sub *subscription) newSource(ctx context.Context, q *queue) *source {
	cfg := sub.s.config
	vis, ask, err := q.visibilityTimeout(ctx, cfg.VisibilityTimeout)
	src := &source{q: q, visibility: vis}
	if ask {
		// The receives ask for exactly what the heartbeat counts on, whatever the queue's
		// own timeout.
		src.receiveVisibility = int32(vis / time.Second)
	}
	if err != nil {
		sub.logger.Error("Could not read the queue's VisibilityTimeout; the messages received get the configured VisibilityTimeout instead",
			classify("get queue attributes", q.name, "", err), watermill.LogFields{"visibility_timeout": vis.String()})
	}
	return src
}

// inbound is a received SQS message waiting in the prefetch buffer.
type inbound struct {
	raw          types.Message
	held         held // its acker state
	q            *queue
	receiveCount int
	// group is the MessageGroupId and rx the receive it came with, on a FIFO queue handled
	// concurrently (see groupGate).
	group string
	rx    *receiveBatch
}

type subscription struct {
	s       *Subscriber
	src     atomic.Pointer[source] // replaced when the queue is created again
	ctx     context.Context
	out     chan *message.Message
	buf     chan *inbound
	drained chan struct{}
	logger  watermill.LoggerAdapter

	// stop is closed when the subscription stops taking work (Close, or its context ended);
	// expired when the handlers' time to settle what they hold (CloseTimeout) has run out.
	// calls bounds the SQS calls of the subscription; it is cancelled closeMargin after that.
	stop, expired chan struct{}
	stopOnce      sync.Once
	calls         context.Context
	cancelCalls   context.CancelFunc
	// msgs is the parent of the handed-out messages' contexts: the Subscribe context's values
	// without its cancellation, cancelled once expired is closed. A handler keeps its context
	// while CloseTimeout lets it finish, as it keeps its message.
	msgs       context.Context
	cancelMsgs context.CancelFunc

	// slots holds one token per message handed out and not settled yet: Concurrency of them.
	slots    chan struct{}
	handlers sync.WaitGroup
	// deliverers are the goroutines of deliver; with a gate, takeMu makes taking a message
	// from the buffer and admitting it to its FIFO group one step.
	deliverers sync.WaitGroup
	takeMu     sync.Mutex
	// gate keeps each FIFO message group in order when Concurrency is above 1; nil otherwise.
	gate *groupGate
	// backBehind is set, without a gate on a FIFO queue, when a message went back to the
	// queue: see keepOrderBehind.
	backBehind atomic.Bool

	// unsettled counts messages received and not yet acked, nacked or returned with SQS's
	// answer; settled is signalled when it drops. FIFO queues with Concurrency 1 receive only
	// when it is 0 (see poll).
	unsettled atomic.Int64
	settled   chan struct{}

	// etaTimers are deferrals waiting out the fraction of a second before their visibility
	// is set.
	etaMu     sync.Mutex
	etaTimers map[*held]etaDeferral
}

type etaDeferral struct {
	timer *time.Timer
	eta   time.Time
}

func (sub *subscription) onSettled() {
	sub.unsettled.Add(-1)
	select {
	case sub.settled <- struct{}{}:
	default:
	}
}

// beginStop stops the subscription taking work and starts the clocks of CloseTimeout.
func (sub *subscription) beginStop() {
	sub.stopOnce.Do(func() {
		start := time.Now()
		select {
		case <-sub.s.closing:
			start = sub.s.closeAt
		default:
		}
		timeout := sub.s.config.CloseTimeout
		close(sub.stop)
		time.AfterFunc(time.Until(start.Add(timeout)), func() {
			close(sub.expired)
			sub.cancelMsgs()
		})
		time.AfterFunc(time.Until(start.Add(timeout+closeMargin)), sub.cancelCalls)
	})
}

func (sub *subscription) run() {
	defer sub.s.subs.Done()
	defer sub.cancelCalls()
	defer sub.cancelMsgs()
	// A Subscribe still looking its queue up when Close began, or when its context ended,
	// stops before poll starts: left to the goroutine below, the stop could come after a
	// first receive, which would hide messages and count a delivery after Close.
	select {
	case <-sub.s.closing:
		sub.beginStop()
	case <-sub.ctx.Done():
		sub.beginStop()
	default:
	}
	go func() {
		select {
		case <-sub.s.closing:
		case <-sub.ctx.Done():
		}
		sub.beginStop()
	}()
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		sub.poll()
	}()

	sub.deliver()

	// Stopping: what waits in the buffer goes back at once; handlers keep their messages until
	// CloseTimeout. A receive under way is let finish, and what it brings is handed out if
	// the consumer still takes messages (a Router does while it closes): SQS counted that
	// receive already, so handing the message out is the only way its next delivery does not
	// count twice. What nobody takes goes back.
	left := sub.drainBuffer()
	if sub.gate != nil {
		left = append(left, sub.gate.close()...)
	}
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		sub.requeue(helds(left))
	}()
	<-polled
	late := sub.drainBuffer()
	lateReturned := sub.handOutLate(late)
	<-returned
	// Deliverers count their messages in handlers: once they are gone, nothing adds to it but
	// the messages it counts.
	sub.deliverers.Wait()
	sub.handlers.Wait()
	sub.flushETATimers()
	close(sub.out)
	sub.logger.Info("Subscription closed", watermill.LogFields{"returned_to_queue": len(left) + lateReturned})
}

// lateHandOutGrace is how long a message received by the last long poll of a stopping
// subscription waits for the consumer to take it before it goes back to the queue.
const lateHandOutGrace = time.Second

// handOutLate hands out the messages of the receive that finished after the subscription
// stopped, while the consumer takes them within lateHandOutGrace and CloseTimeout lasts, and
// returns the others to the queue. It returns how many went back.
func (sub *subscription) handOutLate(late []*inbound) int {
	if len(late) == 0 {
		return 0
	}
	giveUp := make(chan struct{})
	grace := time.AfterFunc(lateHandOutGrace, func() { close(giveUp) })
	defer grace.Stop()
	// Without a gate, a FIFO queue's messages are handed out one at a time (Concurrency 1):
	// once one of this receive goes back, the rest follow it.
	sub.backBehind.Store(false)
	back := 0
	for i, in := range late {
		select {
		case sub.slots <- struct{}{}:
		case <-giveUp:
			sub.requeue(helds(late[i:]))
			return back + len(late) - i
		case <-sub.expired:
			sub.requeue(helds(late[i:]))
			return back + len(late) - i
		}
		if sub.backBehind.Load() {
			<-sub.slots
			sub.requeue(helds(late[i:]))
			return back + len(late) - i
		}
		if sub.gate != nil && sub.gate.admit(in, false) != handOut {
			<-sub.slots
			sub.requeue([]*held{&in.held})
			back++
			continue
		}
		if !sub.handle(in, giveUp) {
			back++
		}
	}
	return back
}

func helds(ins []*inbound) []*held {
	hs := make([]*held, len(ins))
	for i, in := range ins {
		hs[i] = &in.held
	}
	return hs
}

func (sub *subscription) stopped() bool {
	select {
	case <-sub.stop:
		return true
	default:
		return false
	}
}

// requeue makes messages visible again at once and waits until SQS has answered, or the
// subscription's calls were cut off.
func (sub *subscription) requeue(hs []*held) {
	waits := make([]<-chan struct{}, 0, len(hs))
	for _, h := range hs {
		waits = append(waits, sub.s.acks.settle(h, 0))
	}
	if len(waits) > 0 {
		sub.s.acks.kick()
	}
	for _, w := range waits {
		select {
		case <-w:
		case <-sub.calls.Done():
			sub.logger.Error("Timed out returning messages to the queue; they come back after their visibility timeout", nil, watermill.LogFields{"messages": len(hs)})
			return
		}
	}
}
