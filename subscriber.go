package kombu

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// MetadataDecodeError is set, with the reason, on a message whose SQS body could not be
// decoded. Such a message is handed to the handler with the raw SQS body as payload rather than
// dropped; a Nack returns it to the queue under the backoff policy, and an SQS redrive policy
// (CreationAttributes["RedrivePolicy"]) can move it to a dead-letter queue.
const MetadataDecodeError = "kombu_decode_error"

// maxReconnectRetrySleep is the longest pause between failed receives.
const maxReconnectRetrySleep = 30 * time.Second

// Subscriber consumes SQS queues in Kombu's format. The topic is the Kombu queue name. Each
// Subscribe call polls its queue on its own, so a busy queue never starves a quiet one.
type Subscriber struct {
	*sqsConn
	config SubscriberConfig
	logger watermill.LoggerAdapter
	failed atomic.Int64
	acks   *acker

	closing   chan struct{}
	closeOnce sync.Once
	subs      sync.WaitGroup
	mu        sync.Mutex
	closed    bool
}

// NewSubscriber creates a Subscriber. A nil logger logs nothing.
func NewSubscriber(config SubscriberConfig, logger watermill.LoggerAdapter) (*Subscriber, error) {
	config.setDefaults()
	if err := config.Validate(); err != nil {
		return nil, err
	}
	conn, err := newSQSConn(config.Config, NewBackoffPolicy(config.BackoffPolicy, config.BackoffTasks))
	if err != nil {
		return nil, err
	}
	logger = componentLogger(logger, "kombu.Subscriber")
	s := &Subscriber{sqsConn: conn, config: config, logger: logger, closing: make(chan struct{})}
	s.acks = newAcker(logger, config.AckBatchWindow, !config.HeartbeatDisabled, &s.failed)
	return s, nil
}

// Stats returns the SQS requests this Subscriber has sent so far.
func (s *Subscriber) Stats() RequestCounts { return s.stats.Snapshot() }

// FailedAcks is the number of deletes and visibility changes given up after retries (each
// reported in the log). Such messages come back after their visibility timeout: nothing is lost.
func (s *Subscriber) FailedAcks() int64 { return s.failed.Load() }

// SubscribeInitialize resolves (and, unless configured otherwise, creates) the queue, so that
// messages published before Subscribe are kept.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	_, err := s.resolver.resolve(context.Background(), topic)
	return err
}

// Subscribe starts consuming the queue named by topic. The returned channel is closed when ctx
// is cancelled or the Subscriber is closed; messages then held are returned to the queue at once.
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
	q, err := s.resolver.resolve(ctx, topic)
	if err != nil {
		s.subs.Done()
		return nil, classify("resolve queue", topic, "", err)
	}
	sub := &subscription{
		s:       s,
		q:       q,
		ctx:     ctx,
		out:     make(chan *message.Message),
		buf:     make(chan *inbound, s.config.PrefetchCount),
		drained: make(chan struct{}, 1),
		settled: make(chan struct{}, 1),
		stop:    make(chan struct{}),
		logger:  s.logger.With(watermill.LogFields{"topic": topic, "queue_url": q.url}),
	}
	sub.visibility = q.visibilityTimeout(ctx, s.config.VisibilityTimeout)
	sub.logger.Info("Subscribing to SQS queue", nil)
	go sub.run()
	return sub.out, nil
}

// Close stops every subscription, returns every message received and not yet acked or nacked
// to its queue with visibility 0, sends pending acks, and waits for its goroutines. A long poll
// still open is waited for (at most WaitTimeSeconds), and what it brings is returned at once too,
// so that no message stays invisible for a visibility timeout. Safe to call more than once.
func (s *Subscriber) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.closing)
		s.subs.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), s.config.CloseTimeout)
		defer cancel()
		s.acks.close(ctx)
		s.logger.Debug("Subscriber closed", watermill.LogFields{"failed_acks": s.failed.Load()})
	})
	return nil
}

// inbound is a received SQS message waiting in the prefetch buffer.
type inbound struct {
	raw          types.Message
	h            *held
	receiveCount int
}

type subscription struct {
	s          *Subscriber
	q          *queue
	ctx        context.Context
	out        chan *message.Message
	buf        chan *inbound
	drained    chan struct{}
	stop       chan struct{}
	visibility time.Duration
	logger     watermill.LoggerAdapter

	// unsettled counts messages received and not yet acked, nacked or returned with SQS's
	// answer; settled is signalled when it drops. FIFO queues receive only when it is 0: a
	// group stays locked while any of its messages is in flight, so an earlier receive would
	// just wait out its long poll.
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

// waitSettled waits until every received message is settled; it reports false when the
// subscription stopped meanwhile.
func (sub *subscription) waitSettled() bool {
	for sub.unsettled.Load() > 0 {
		select {
		case <-sub.settled:
		case <-sub.stop:
			return false
		}
	}
	return true
}

func (sub *subscription) run() {
	defer sub.s.subs.Done()
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		sub.poll()
	}()

	sub.deliver()

	// Shut down: stop polling, wait for a long poll under way, return all that was received.
	close(sub.stop)
	<-polled
	close(sub.buf)
	var left []*held
	for in := range sub.buf {
		left = append(left, in.h)
	}
	sub.requeue(left)
	sub.flushETATimers()
	close(sub.out)
	sub.logger.Info("Subscription closed", watermill.LogFields{"returned_to_queue": len(left)})
}

func (sub *subscription) done() bool {
	select {
	case <-sub.s.closing:
		return true
	case <-sub.ctx.Done():
		return true
	default:
		return false
	}
}

// requeue makes messages visible again at once and waits until SQS has answered.
func (sub *subscription) requeue(hs []*held) {
	waits := make([]<-chan struct{}, 0, len(hs))
	for _, h := range hs {
		waits = append(waits, sub.s.acks.settle(h, 0))
	}
	if len(waits) > 0 {
		sub.s.acks.kick()
	}
	timeout := time.After(sub.s.config.CloseTimeout)
	for _, w := range waits {
		select {
		case <-w:
		case <-timeout:
			sub.logger.Error("Timed out returning messages to the queue; they come back after their visibility timeout", nil, watermill.LogFields{"messages": len(hs)})
			return
		}
	}
}

// poll fills the prefetch buffer. It receives only when a whole batch (10, or PrefetchCount if
// lower) fits, so receives stay full under load, and waits PollingInterval after an empty one.
// A receive under way when the subscription stops is let finish: its messages go to the buffer
// and are returned to the queue, rather than left invisible to everyone.
func (sub *subscription) poll() {
	cfg := sub.s.config
	batch := min(cfg.PrefetchCount, MaxMessagesPerRequest)
	retrySleep := cfg.ReconnectRetrySleep
	for {
		select {
		case <-sub.stop:
			return
		default:
		}
		free := cap(sub.buf) - len(sub.buf)
		if free < batch {
			select {
			case <-sub.drained:
				continue
			case <-sub.stop:
				return
			}
		}
		if sub.q.fifo && !sub.waitSettled() {
			return
		}
		n, err := sub.receive(min(free, MaxMessagesPerRequest))
		if err != nil {
			// Connection and channel errors alike wait, longer after each failure: a channel
			// error (a missing queue, a revoked permission) can heal too, e.g. a queue being
			// created again or restored by a restarting broker.
			if sub.sleep(retrySleep) {
				return
			}
			retrySleep = min(retrySleep*2, maxReconnectRetrySleep)
			continue
		}
		retrySleep = cfg.ReconnectRetrySleep
		if n == 0 && cfg.PollingInterval > 0 && sub.sleep(cfg.PollingInterval) {
			return
		}
	}
}

// sleep waits d; it reports true when the subscription stopped meanwhile.
func (sub *subscription) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return false
	case <-sub.stop:
		return true
	}
}

func (sub *subscription) receive(n int) (int, error) {
	cfg := sub.s.config
	timeout := time.Duration(cfg.WaitTimeSeconds)*time.Second + 10*time.Second
	if cfg.RequestTimeout > 0 {
		timeout = time.Duration(cfg.WaitTimeSeconds)*time.Second + cfg.RequestTimeout
	}
	// Not cancelled by Close: see poll.
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := sub.q.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(sub.q.url),
		MaxNumberOfMessages:         int32(n),
		WaitTimeSeconds:             int32(cfg.WaitTimeSeconds),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	})
	if err != nil {
		err = classify("receive", sub.q.name, "", err)
		sub.logger.Error("Could not receive messages; retrying", err, nil)
		return 0, err
	}
	sub.unsettled.Add(int64(len(out.Messages)))
	for _, m := range out.Messages {
		count, _ := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
		h := sub.s.acks.hold(sub.q, aws.ToString(m.ReceiptHandle), aws.ToString(m.MessageId), sub.visibility, sub.onSettled)
		sub.buf <- &inbound{raw: m, h: h, receiveCount: count}
	}
	return len(out.Messages), nil
}

// deliver hands buffered messages to the output channel one at a time, each after the previous
// one was acked or nacked. It returns when the subscription stops.
func (sub *subscription) deliver() {
	for {
		select {
		case in := <-sub.buf:
			sub.signalDrained()
			if !sub.handle(in) {
				return
			}
		case <-sub.s.closing:
			return
		case <-sub.ctx.Done():
			return
		}
	}
}

// handle delivers one message and settles it. It reports false when the subscription stopped.
func (sub *subscription) handle(in *inbound) bool {
	if sub.done() {
		sub.requeue([]*held{in.h})
		return false
	}
	msg := sub.unmarshal(in)
	if !sub.s.config.ETADeferralDisabled && sub.deferUntilETA(in, msg) {
		return true
	}
	ctx, cancel := context.WithCancel(sub.ctx)
	defer cancel()
	msg.SetContext(ctx)

	select {
	case sub.out <- msg:
	case <-sub.s.closing:
		sub.requeue([]*held{in.h})
		return false
	case <-sub.ctx.Done():
		sub.requeue([]*held{in.h})
		return false
	}
	select {
	case <-msg.Acked():
		sub.s.acks.settle(in.h, -1)
		return true
	case <-msg.Nacked():
		delay := sub.q.backoff.Delay(msg.Metadata.Get(MetadataTask), in.receiveCount)
		if delay > 0 {
			sub.logger.Debug("Nacked message backs off", watermill.LogFields{"message_uuid": msg.UUID, "receive_count": in.receiveCount, "seconds": delay})
		}
		sub.s.acks.settle(in.h, int32(delay))
		if sub.q.fifo {
			// The messages after it in the buffer must not overtake it: give them back too, so
			// that SQS delivers the group again in order.
			sub.requeue(sub.drainBuffer())
		}
		return true
	case <-sub.s.closing:
		sub.requeue([]*held{in.h})
		return false
	case <-sub.ctx.Done():
		sub.requeue([]*held{in.h})
		return false
	}
}

// signalDrained wakes the poller waiting for room in the buffer.
func (sub *subscription) signalDrained() {
	select {
	case sub.drained <- struct{}{}:
	default:
	}
}

// drainBuffer takes every message waiting in the prefetch buffer.
func (sub *subscription) drainBuffer() []*held {
	var hs []*held
	for {
		select {
		case in := <-sub.buf:
			hs = append(hs, in.h)
		default:
			sub.signalDrained()
			return hs
		}
	}
}

func (sub *subscription) unmarshal(in *inbound) *message.Message {
	msg, err := sub.s.config.Unmarshaler.Unmarshal(sub.q.name, &in.raw)
	if err != nil {
		id := aws.ToString(in.raw.MessageId)
		sub.logger.Error("Could not decode an SQS message; handing it on raw", channelError("decode", sub.q.name, id, err), watermill.LogFields{"sqs_message_id": id})
		msg = message.NewMessage(aws.ToString(in.raw.MessageId), []byte(aws.ToString(in.raw.Body)))
		msg.Metadata.Set(MetadataDecodeError, err.Error())
	}
	msg.Metadata.Set(MetadataSQSMessageID, aws.ToString(in.raw.MessageId))
	msg.Metadata.Set(MetadataReceiveCount, strconv.Itoa(in.receiveCount))
	msg.Metadata.Set(MetadataQueue, sub.q.name)
	return msg
}

// etaHoldLimit is how close to its eta a task is held by the subscription instead of being
// made invisible.
const etaHoldLimit = 1500 * time.Millisecond

// deferUntilETA keeps a Celery task whose eta lies ahead from the handler. It is made
// invisible until exactly its eta: visibility timeouts are whole seconds, so the fraction of a
// second is waited first (the heartbeat keeps the message invisible meanwhile, and delivery of
// other messages goes on). A task less than etaHoldLimit from its eta is held here until then.
// It reports whether the message was not handed over.
func (sub *subscription) deferUntilETA(in *inbound, msg *message.Message) bool {
	eta := msg.Metadata.Get("eta")
	if eta == "" || eta == "null" {
		return false
	}
	t, err := ParseCeleryTime(eta, true)
	if err != nil {
		return false
	}
	wait := time.Until(t)
	if wait <= 0 {
		return false
	}
	if wait <= etaHoldLimit {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case <-timer.C:
			return false
		case <-sub.s.closing:
		case <-sub.ctx.Done():
		}
		sub.requeue([]*held{in.h})
		return true
	}
	secs := wait / time.Second
	if limit := MaxVisibilityTimeout/time.Second - 60; secs > limit {
		secs = limit
	}
	sub.logger.Debug("Deferring task until its eta", watermill.LogFields{"message_uuid": msg.UUID, "eta": eta, "seconds": int(secs)})
	sub.etaMu.Lock()
	defer sub.etaMu.Unlock()
	if sub.etaTimers == nil {
		sub.etaTimers = map[*held]etaDeferral{}
	}
	sub.etaTimers[in.h] = etaDeferral{eta: t, timer: time.AfterFunc(wait-secs*time.Second, func() {
		sub.etaMu.Lock()
		_, pending := sub.etaTimers[in.h]
		delete(sub.etaTimers, in.h)
		sub.etaMu.Unlock()
		if pending {
			sub.s.acks.settle(in.h, int32(secs))
		}
	})}
	return true
}

// flushETATimers settles at once the deferrals still waiting for their fraction of a second,
// so that none is left to an acker that has stopped.
func (sub *subscription) flushETATimers() {
	sub.etaMu.Lock()
	timers := sub.etaTimers
	sub.etaTimers = nil
	sub.etaMu.Unlock()
	var waits []<-chan struct{}
	for h, d := range timers {
		d.timer.Stop()
		// Rounded up: never visible before its eta.
		waits = append(waits, sub.s.acks.settle(h, int32((max(time.Until(d.eta), 0)+time.Second-1)/time.Second)))
	}
	for _, w := range waits {
		<-w
	}
}
