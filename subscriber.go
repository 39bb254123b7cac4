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
	"github.com/watermill-kombu/watermill-kombu/internal/pywire"
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

	closing   chan struct{}
	closeOnce sync.Once
	closeAt   time.Time // when Close began; read after closing is closed
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
	conn, err := newSQSConn(config.Config, newBackoffTable(config.BackoffPolicy, config.BackoffTasks))
	if err != nil {
		return nil, err
	}
	logger = componentLogger(logger, "kombu.Subscriber")
	s := &Subscriber{sqsConn: conn, config: config, logger: logger, closing: make(chan struct{})}
	s.fanout = newSNSFanout(config.Config, conn, logger)
	s.backoff = nackBackoff{disabled: config.DisableNackBackoff, immediate: config.NackBackoffImmediate,
		initial: config.NackBackoffInitial, max: config.NackBackoffMax}
	s.acks = newAcker(logger, config.AckBatchWindow, !config.DisableHeartbeat, &s.failed)
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
	q, err := s.resolver.resolve(ctx, topic)
	if err != nil {
		s.subs.Done()
		return nil, classify("resolve queue", topic, "", err)
	}
	if err := s.bindFanout(ctx, topic); err != nil {
		s.subs.Done()
		return nil, err
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
		slots:   make(chan struct{}, 1),
		logger:  s.logger.With(watermill.LogFields{"topic": topic, "queue_url": q.url}),
	}
	sub.q.Store(q)
	sub.calls, sub.cancelCalls = context.WithCancel(context.Background())
	sub.visibility = q.visibilityTimeout(ctx, s.config.VisibilityTimeout)
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
		s.logger.Debug("Subscriber closed", watermill.LogFields{"failed_acks": s.failed.Load()})
	})
	return nil
}

// inbound is a received SQS message waiting in the prefetch buffer.
type inbound struct {
	raw          types.Message
	h            *held
	q            *queue
	receiveCount int
}

type subscription struct {
	s          *Subscriber
	q          atomic.Pointer[queue] // replaced when the queue is created again
	ctx        context.Context
	out        chan *message.Message
	buf        chan *inbound
	drained    chan struct{}
	visibility time.Duration
	logger     watermill.LoggerAdapter

	// stop is closed when the subscription stops taking work (Close, or its context ended);
	// expired when the handlers' time to settle what they hold (CloseTimeout) has run out.
	// calls bounds the SQS calls of the subscription; it is cancelled closeMargin after that.
	stop, expired chan struct{}
	stopOnce      sync.Once
	calls         context.Context
	cancelCalls   context.CancelFunc

	// slots holds one token per message handed out and not settled yet.
	slots    chan struct{}
	handlers sync.WaitGroup

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
		time.AfterFunc(time.Until(start.Add(timeout)), func() { close(sub.expired) })
		time.AfterFunc(time.Until(start.Add(timeout+closeMargin)), sub.cancelCalls)
	})
}

func (sub *subscription) run() {
	defer sub.s.subs.Done()
	defer sub.cancelCalls()
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
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		sub.requeue(helds(left))
	}()
	<-polled
	late := sub.drainBuffer()
	lateReturned := sub.handOutLate(late)
	<-returned
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
		if !sub.handle(in, giveUp) {
			back++
		}
	}
	return back
}

func helds(ins []*inbound) []*held {
	hs := make([]*held, len(ins))
	for i, in := range ins {
		hs[i] = in.h
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

// poll fills the prefetch buffer. It receives only when a whole batch (10, or PrefetchCount if
// lower) fits, so receives stay full under load, and waits PollingInterval after an empty one.
// A receive under way when the subscription stops is let finish: SQS hides the messages of a
// cancelled long poll all the same, so they go to the buffer and are returned to the queue
// rather than left invisible to everyone.
func (sub *subscription) poll() {
	cfg := sub.s.config
	batch := min(cfg.PrefetchCount, maxMessagesPerRequest)
	retrySleep := cfg.ReconnectRetrySleep
	for {
		if sub.stopped() {
			return
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
		q := sub.q.Load()
		if q.fifo && !sub.waitSettled() {
			return
		}
		n, err := sub.receive(q, min(free, maxMessagesPerRequest))
		if err != nil {
			if sub.s.resolver.recoverable(q, err) && sub.reresolve(q) {
				retrySleep = cfg.ReconnectRetrySleep
				continue
			}
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

// reresolve looks the queue up again after SQS said it does not exist, creating it when
// allowed. It reports whether a queue was found.
func (sub *subscription) reresolve(old *queue) bool {
	q, err := sub.s.resolver.resolve(sub.calls, old.name)
	if err != nil {
		sub.logger.Error("Queue does not exist and could not be resolved again; retrying", classify("resolve queue", old.name, "", err), nil)
		return false
	}
	sub.logger.Info("Queue was gone; resolved it again", watermill.LogFields{"queue_url": q.url})
	sub.q.Store(q)
	return true
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

func (sub *subscription) receive(q *queue, n int) (int, error) {
	cfg := sub.s.config
	margin := cfg.RequestTimeout
	if margin <= 0 {
		margin = defaultRequestTimeout
	}
	// Not cancelled when the subscription stops (see poll), only when its calls are cut off.
	ctx, cancel := context.WithTimeout(sub.calls, time.Duration(cfg.WaitTimeSeconds)*time.Second+margin)
	defer cancel()
	out, err := q.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(q.url),
		MaxNumberOfMessages:         int32(n),
		WaitTimeSeconds:             int32(cfg.WaitTimeSeconds),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	})
	if err != nil {
		err = classify("receive", q.name, "", err)
		sub.logger.Error("Could not receive messages; retrying", err, nil)
		return 0, err
	}
	sub.unsettled.Add(int64(len(out.Messages)))
	for _, m := range out.Messages {
		count, _ := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
		h := sub.s.acks.hold(q, aws.ToString(m.ReceiptHandle), aws.ToString(m.MessageId), sub.visibility, sub.onSettled)
		sub.buf <- &inbound{raw: m, h: h, q: q, receiveCount: count}
	}
	return len(out.Messages), nil
}

// deliver hands buffered messages to the output channel, as many at once as there are slots,
// each slot freed when its message is acked or nacked. It returns when the subscription stops.
func (sub *subscription) deliver() {
	for {
		select {
		case sub.slots <- struct{}{}:
		case <-sub.stop:
			return
		}
		select {
		case in := <-sub.buf:
			sub.signalDrained()
			sub.handle(in, sub.stop)
		case <-sub.stop:
			<-sub.slots
			return
		}
	}
}

// handle hands one message out, holding a slot taken by the caller, and has it settled when
// the handler acks or nacks it; the slot is freed then. When giveUp is closed before the
// consumer takes the message, it goes back to the queue at once. It reports whether the
// message was handed out (or deferred to its eta).
func (sub *subscription) handle(in *inbound, giveUp <-chan struct{}) bool {
	release := func() { <-sub.slots }
	select {
	case <-giveUp:
		release()
		sub.requeue([]*held{in.h})
		return false
	default:
	}
	msg := sub.unmarshal(in)
	if !sub.s.config.DisableETADeferral && sub.deferUntilETA(in, msg) {
		release()
		return true
	}
	ctx, cancel := context.WithCancel(sub.ctx)
	msg.SetContext(ctx)

	select {
	case sub.out <- msg:
	case <-giveUp:
		cancel()
		release()
		sub.requeue([]*held{in.h})
		return false
	}
	sub.handlers.Add(1)
	go func() {
		defer sub.handlers.Done()
		defer release()
		defer cancel()
		sub.await(in, msg)
	}()
	return true
}

// await settles a handed-out message when its handler acks or nacks it. After Close it waits
// as long as CloseTimeout allows; a message still unsettled then is made visible again.
func (sub *subscription) await(in *inbound, msg *message.Message) {
	select {
	case <-msg.Acked():
		sub.s.acks.settle(in.h, -1)
	case <-msg.Nacked():
		sub.nack(in, msg)
	case <-sub.expired:
		sub.logger.Error("A handler still held a message when CloseTimeout ran out; it goes back to the queue", nil,
			watermill.LogFields{"message_uuid": msg.UUID, "sqs_message_id": in.h.messageID})
		sub.requeue([]*held{in.h})
		go sub.watchLateAck(in, msg)
	}
}

// watchLateAck reports an Ack that came after its message was given back at Close: it can no
// longer be sent, and SQS delivers the message again.
func (sub *subscription) watchLateAck(in *inbound, msg *message.Message) {
	t := time.NewTimer(sub.visibility)
	defer t.Stop()
	select {
	case <-msg.Acked():
		sub.s.failed.Add(1)
		sub.logger.Error("Message acked after CloseTimeout; the ack was not sent and SQS will deliver it again", nil,
			watermill.LogFields{"message_uuid": msg.UUID, "sqs_message_id": in.h.messageID})
	case <-msg.Nacked():
	case <-t.C:
	}
}

// nack makes a Nacked message visible again after its backoff.
func (sub *subscription) nack(in *inbound, msg *message.Message) {
	delay := nackDelay(in.q.backoff, sub.s.backoff, msg.Metadata.Get(MetadataTask), in.receiveCount)
	if delay > 0 {
		sub.logger.Debug("Nacked message backs off", watermill.LogFields{"message_uuid": msg.UUID, "receive_count": in.receiveCount, "seconds": delay})
	}
	sub.s.acks.settle(in.h, int32(delay))
	if in.q.fifo {
		// The messages after it in the buffer must not overtake it: give them back too, so
		// that SQS delivers the group again in order.
		sub.requeue(helds(sub.drainBuffer()))
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
func (sub *subscription) drainBuffer() []*inbound {
	var ins []*inbound
	for {
		select {
		case in := <-sub.buf:
			ins = append(ins, in)
		default:
			sub.signalDrained()
			return ins
		}
	}
}

func (sub *subscription) unmarshal(in *inbound) *message.Message {
	msg, err := sub.s.config.Unmarshaler.Unmarshal(in.q.name, &in.raw)
	if err != nil {
		id := aws.ToString(in.raw.MessageId)
		sub.logger.Error("Could not decode an SQS message; handing it on raw", channelError("decode", in.q.name, id, err), watermill.LogFields{"sqs_message_id": id})
		msg = message.NewMessage(aws.ToString(in.raw.MessageId), []byte(aws.ToString(in.raw.Body)))
		msg.Metadata.Set(MetadataDecodeError, err.Error())
	}
	msg.Metadata.Set(MetadataSQSMessageID, aws.ToString(in.raw.MessageId))
	if sub.s.config.KeepSQSBody {
		msg.Metadata.Set(metadataSQSBody, aws.ToString(in.raw.Body))
	}
	msg.Metadata.Set(MetadataReceiveCount, strconv.Itoa(in.receiveCount))
	msg.Metadata.Set(MetadataQueue, in.q.name)
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
	t, err := pywire.ParseTime(eta, true)
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
		case <-sub.stop:
		}
		sub.requeue([]*held{in.h})
		return true
	}
	secs := wait / time.Second
	if limit := maxVisibilityTimeout/time.Second - 60; secs > limit {
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
		select {
		case <-w:
		case <-sub.calls.Done():
			return
		}
	}
}
