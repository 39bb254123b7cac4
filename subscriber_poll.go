package kombu

import (
	"context"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// maxReceivesInFlight bounds the ReceiveMessage calls one subscription has open at once.
const maxReceivesInFlight = 4

// receiveResult is the outcome of one ReceiveMessage.
type receiveResult struct {
	q          *queue
	asked, got int
	err        error
}

// poll fills the prefetch buffer. It receives only when a whole batch (10, or PrefetchCount if
// lower) fits, so receives stay full under load, and waits PollingInterval after an empty one.
// While receives come back full and the buffer has room for more than one batch, more than
// one receive is under way at once (up to maxReceivesInFlight; on a standard queue only): the
// round trips overlap instead of adding up. An idle queue has a single long poll open.
// FIFO queues keep one receive at a time; with Concurrency 1 they receive only once every
// message received before is settled (a group stays locked while any of its messages is in
// flight, so an earlier receive would just wait out its long poll).
//
// Receives under way when the subscription stops are let finish: SQS hides the messages of a
// cancelled long poll all the same, so they go to the buffer and are handed out late or
// returned to the queue rather than left invisible to everyone.
func (sub *subscription) poll() {
	cfg := sub.s.config
	batch := min(cfg.PrefetchCount, maxMessagesPerRequest)
	parallel := 1
	fifo := sub.src.Load().q.fifo
	if !fifo {
		parallel = min(max(cfg.PrefetchCount/batch, 1), maxReceivesInFlight)
	}
	strict := fifo && sub.gate == nil
	var settled chan struct{}
	if strict {
		settled = sub.settled
	}
	results := make(chan receiveResult, parallel)
	inflight, reserved := 0, 0
	full := false // the last receive came back with all it asked for
	var pauseUntil time.Time
	retrySleep := cfg.ReconnectRetrySleep
	for !sub.stopped() {
		limit := 1
		if full {
			limit = parallel
		}
		for inflight < limit && !time.Now().Before(pauseUntil) {
			room := cap(sub.buf) - len(sub.buf) - int(sub.waitingInGroups()) - reserved
			if room < batch || (strict && (inflight > 0 || sub.unsettled.Load() > 0)) {
				break
			}
			n := min(room, maxMessagesPerRequest)
			src := sub.src.Load()
			reserved += n
			inflight++
			sub.s.sqsCalls.Go(func() {
				got, err := sub.receive(src, n)
				results <- receiveResult{q: src.q, asked: n, got: got, err: err}
			})
		}
		var pause <-chan time.Time
		var pauseTimer *time.Timer
		if d := time.Until(pauseUntil); d > 0 && inflight < limit {
			pauseTimer = time.NewTimer(d)
			pause = pauseTimer.C
		}
		select {
		case r := <-results:
			inflight--
			reserved -= r.asked
			full = false
			switch {
			case r.err != nil:
				if sub.s.resolver.recoverable(r.q, r.err) && sub.reresolve(r.q) {
					retrySleep = cfg.ReconnectRetrySleep
					continue
				}
				// Connection and channel errors alike wait, longer after each failure: a
				// channel error (a missing queue, a revoked permission) can heal too, e.g. a
				// queue being created again or restored by a restarting broker.
				pauseUntil = time.Now().Add(retrySleep)
				retrySleep = min(retrySleep*2, maxReconnectRetrySleep)
			case r.got == 0:
				retrySleep = cfg.ReconnectRetrySleep
				pauseUntil = time.Now().Add(cfg.PollingInterval)
			default:
				retrySleep = cfg.ReconnectRetrySleep
				full = r.got == r.asked
			}
		case <-sub.drained:
		case <-settled:
		case <-pause:
		case <-sub.stop:
		}
		if pauseTimer != nil {
			pauseTimer.Stop()
		}
	}
	for ; inflight > 0; inflight-- {
		<-results
	}
}

// waitingInGroups is how many received messages wait behind their FIFO group.
func (sub *subscription) waitingInGroups() int64 {
	if sub.gate == nil {
		return 0
	}
	return sub.gate.waiting.Load()
}

// reresolve looks the queue up again after SQS said it does not exist, creating it when
// allowed, and reads its VisibilityTimeout: a queue created again elsewhere may have another.
// It reports whether a queue was found.
func (sub *subscription) reresolve(old *queue) bool {
	q, err := sub.s.resolver.resolve(sub.calls, old.name)
	if err != nil {
		sub.logger.Error("Queue does not exist and could not be resolved again; retrying", classify("resolve queue", old.name, "", err), nil)
		return false
	}
	sub.logger.Info("Queue was gone; resolved it again", watermill.LogFields{"queue_url": q.url})
	sub.src.Store(sub.newSource(sub.calls, q))
	return true
}

// receiveAttributes are the system attributes the subscription reads; asking for all of them
// made every response several attributes per message larger to send and parse.
var receiveAttributes = []types.MessageSystemAttributeName{
	types.MessageSystemAttributeNameApproximateReceiveCount,
	types.MessageSystemAttributeNameMessageGroupId,
}

func (sub *subscription) receive(src *source, n int) (int, error) {
	cfg := sub.s.config
	q := src.q
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
		MessageSystemAttributeNames: receiveAttributes,
		MessageAttributeNames:       []string{"All"},
		VisibilityTimeout:           src.receiveVisibility,
	})
	if err != nil {
		err = classify("receive", q.name, "", err)
		sub.logger.Error("Could not receive messages; retrying", err, nil)
		return 0, err
	}
	sub.unsettled.Add(int64(len(out.Messages)))
	var rx *receiveBatch
	if sub.gate != nil && len(out.Messages) > 0 {
		rx = &receiveBatch{}
	}
	now := time.Now()
	// One allocation for the batch's messages and their acker state: they are settled
	// within the prefetch and concurrency bounds, so the batch is not kept for long.
	ins := make([]inbound, len(out.Messages))
	for i, m := range out.Messages {
		count, _ := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
		in := &ins[i]
		*in = inbound{raw: m, q: q, receiveCount: count, rx: rx}
		sub.s.acks.hold(&in.held, q, aws.ToString(m.ReceiptHandle), aws.ToString(m.MessageId), src.visibility, sub.onSettled, now)
		if rx != nil {
			in.group = m.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)]
		}
		sub.buf <- in
	}
	return len(out.Messages), nil
}
