package kombu

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/watermill-kombu/watermill-kombu/internal/gopool"
)

// ackRetries is how many times a delete or visibility change is sent again after SQS failed it
// on its side or the request failed, before it is reported as lost.
const ackRetries = 4

// held is a message received and not yet acked, nacked or returned: the heartbeat keeps it
// invisible until then.
type held struct {
	q          *queue
	handle     string
	messageID  string
	visibility time.Duration
	extendAt   time.Time // when the heartbeat next extends its visibility
	done       bool      // acked, nacked or returned: no more heartbeats
	// extending is set while a heartbeat's extension of the message is under way: its
	// settling op waits for SQS's answer, so that an extension cannot land after a return and
	// hide the message again.
	extending bool
	onSettled func() // called once SQS has answered the settling op; may be nil
	op        ackOp  // the settling op: a held message is settled once
}

// ackOp is a pending DeleteMessage (visibility < 0) or ChangeMessageVisibility.
type ackOp struct {
	h          *held
	visibility int32 // seconds; -1 means delete
	attempts   int
	done       chan struct{} // closed when the op is settled; may be nil
	at         time.Time     // when it was queued
}

// acker sends Acks as DeleteMessageBatch and Nacks, returns and heartbeats as
// ChangeMessageVisibilityBatch, up to 10 entries per call, per queue. Ops wait at most the
// batch window for company. The heartbeat has a loop of its own: an SQS call of the ops slow
// to be answered must not hold up the extensions of the other held messages.
type acker struct {
	workers   *gopool.Pool // runs the batch calls
	logger    watermill.LoggerAdapter
	window    time.Duration
	heartbeat bool
	failed    *atomic.Int64

	mu      sync.Mutex
	pending map[*queue][]*ackOp
	held    map[*held]struct{}
	// extending is how many held messages have their heartbeat's extension under way.
	extending int
	closed    bool
	wake      chan struct{}
	due       chan struct{} // held partial batches have waited out the window
	stop      chan struct{}
	stopped   chan struct{} // closed when run has returned
	beatDone  chan struct{} // closed when beatLoop has returned

	// calls bounds the SQS calls of the background loop; close cancels it when its own
	// deadline passes.
	calls       context.Context
	cancelCalls context.CancelFunc

	// drained, when set (by tests), runs in close once everything pending was sent.
	drained func()
}

func newAcker(logger watermill.LoggerAdapter, window time.Duration, heartbeat bool, failed *atomic.Int64, workers *gopool.Pool) *acker {
	a := &acker{
		workers:   workers,
		logger:    logger,
		window:    window,
		heartbeat: heartbeat,
		failed:    failed,
		pending:   map[*queue][]*ackOp{},
		held:      map[*held]struct{}{},
		wake:      make(chan struct{}, 1),
		due:       make(chan struct{}, 1),
		stop:      make(chan struct{}),
		stopped:   make(chan struct{}),
		beatDone:  make(chan struct{}),
	}
	a.calls, a.cancelCalls = context.WithCancel(context.Background())
	go a.run()
	go a.beatLoop()
	return a
}

// hold fills h, the state of a message received at now, and tracks it for the heartbeat.
func (a *acker) hold(h *held, q *queue, handle, messageID string, visibility time.Duration, onSettled func(), now time.Time) {
	*h = held{q: q, handle: handle, messageID: messageID, visibility: visibility, extendAt: now.Add(visibility * 2 / 3), onSettled: onSettled}
	if a.heartbeat {
		a.mu.Lock()
		a.held[h] = struct{}{}
		a.mu.Unlock()
	}
}

// settle ends a held message: delete it (visibility < 0) or set its visibility. It returns a
// channel closed once SQS has answered (or the op was given up).
func (a *acker) settle(h *held, visibility int32) <-chan struct{} {
	done := make(chan struct{})
	a.enqueue(h, visibility, done)
	return done
}

// settleAsync is settle for a caller that does not wait for SQS's answer.
func (a *acker) settleAsync(h *held, visibility int32) { a.enqueue(h, visibility, nil) }

// enqueue queues the op that settles h; done, if not nil, is closed once it is settled.
func (a *acker) enqueue(h *held, visibility int32, done chan struct{}) {
	closeDone := func() {
		if done != nil {
			close(done)
		}
	}
	a.mu.Lock()
	if h.done {
		a.mu.Unlock()
		closeDone()
		return
	}
	h.done = true
	if a.closed {
		// The Subscriber is closed: nothing sends this any more.
		delete(a.held, h)
		a.mu.Unlock()
		a.failed.Add(1)
		what := "acked"
		if visibility >= 0 {
			what = "nacked"
		}
		a.logger.Error("Message "+what+" after the Subscriber was closed; not sent, SQS will deliver it again after its visibility timeout", nil,
			watermill.LogFields{"topic": h.q.name, "sqs_message_id": h.messageID})
		if h.onSettled != nil {
			h.onSettled()
		}
		closeDone()
		return
	}
	if visibility >= 0 {
		// A Nack, return or deferral ends the heartbeat at once: an extension would undo it.
		// An Ack's message stays in it until SQS has answered the delete (see finish), so
		// that a delete slow to be answered does not let the message show again.
		delete(a.held, h)
	}
	h.op = ackOp{h: h, visibility: visibility, done: done, at: time.Now()}
	ops := append(a.pending[h.q], &h.op)
	a.pending[h.q] = ops
	a.mu.Unlock()
	// The loop is woken by the queue's first op, which starts the batch window, and by each
	// op that fills a batch; the ops in between wait for either without waking it (a wake-up
	// per Ack cost more CPU than the Ack's share of its batch call). Ops held back by flush
	// have a timer of their own.
	if len(ops) == 1 || len(ops)%maxMessagesPerRequest == 0 || a.window == 0 {
		a.kick()
	}
}

func (a *acker) kick() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *acker) run() {
	defer close(a.stopped)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-a.wake:
			a.waitForCompany()
			a.flush(a.calls, false)
		case <-a.due:
			a.flush(a.calls, false)
		case <-tick.C:
			a.flush(a.calls, false)
		}
	}
}

// beatLoop runs the heartbeat until the acker stops.
func (a *acker) beatLoop() {
	defer close(a.beatDone)
	if !a.heartbeat {
		return
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-tick.C:
			a.beat()
		}
	}
}

// waitForCompany waits up to the batch window for ops to fill a batch.
func (a *acker) waitForCompany() {
	if a.window == 0 {
		return
	}
	deadline := time.NewTimer(a.window)
	defer deadline.Stop()
	for {
		a.mu.Lock()
		full := false
		for _, ops := range a.pending {
			if len(ops) >= maxMessagesPerRequest {
				full = true
			}
		}
		a.mu.Unlock()
		if full {
			return
		}
		select {
		case <-deadline.C:
			return
		case <-a.wake:
		case <-a.stop:
			return
		}
	}
}

// flush sends the pending ops, in batches of up to 10 per queue, batches of different queues
// in parallel. Without all, the ops beyond whole batches that were queued less than the batch
// window ago wait for company until it has passed; with all set it sends everything and keeps
// going until nothing is pending, retries included, and then marks the acker closed in the
// same step, so that an op queued meanwhile is either sent or reported, never left pending.
func (a *acker) flush(ctx context.Context, all bool) {
	for {
		a.mu.Lock()
		work := a.pending
		a.pending = map[*queue][]*ackOp{}
		if a.extending > 0 {
			a.holdExtending(work)
		}
		if !all && a.window > 0 {
			a.holdPartialBatches(work)
		}
		if all && len(work) == 0 {
			a.closed = true
		}
		a.mu.Unlock()
		if len(work) == 0 {
			return
		}
		var wg sync.WaitGroup
		for q, ops := range work {
			var deletes, changes []*ackOp
			for _, op := range ops {
				if op.visibility < 0 {
					deletes = append(deletes, op)
				} else {
					changes = append(changes, op)
				}
			}
			for _, group := range [][]*ackOp{deletes, changes} {
				for len(group) > 0 {
					n := min(len(group), maxMessagesPerRequest)
					batch := group[:n]
					group = group[n:]
					wg.Add(1)
					a.workers.Go(func() {
						defer wg.Done()
						a.send(ctx, q, batch)
					})
				}
			}
		}
		wg.Wait()
		if !all {
			return
		}
	}
}

// send sends one batch and requeues the entries worth another try.
func (a *acker) send(ctx context.Context, q *queue, batch []*ackOp) {
	isDelete := batch[0].visibility < 0
	var failedIDs map[string]types.BatchResultErrorEntry
	var err error
	if isDelete {
		entries := make([]types.DeleteMessageBatchRequestEntry, len(batch))
		for i, op := range batch {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(op.h.handle)}
		}
		var out *sqs.DeleteMessageBatchOutput
		out, err = q.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q.url), Entries: entries})
		if err == nil {
			failedIDs = indexFailures(out.Failed)
		}
	} else {
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(batch))
		for i, op := range batch {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(op.h.handle), VisibilityTimeout: op.visibility}
		}
		var out *sqs.ChangeMessageVisibilityBatchOutput
		out, err = q.client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(q.url), Entries: entries})
		if err == nil {
			failedIDs = indexFailures(out.Failed)
		}
	}
	what := "change the visibility of"
	if isDelete {
		what = "delete"
	}
	var retry, finished []*ackOp
	for i, op := range batch {
		var reason, code string
		var opErr error
		if err != nil {
			reason = err.Error()
			opErr = classify(what, q.name, op.h.messageID, err)
		} else if f, ok := failedIDs[strconv.Itoa(i)]; ok {
			code, reason = aws.ToString(f.Code), aws.ToString(f.Message)
			opErr = &Error{Op: what, Queue: q.name, MessageID: op.h.messageID, Class: batchEntryClass(f), Err: errors.New(code + ": " + reason)}
			if f.SenderFault || isStaleReceipt(code) {
				// The receipt is no longer valid: the message was redelivered or is gone. SQS
				// will deliver it again if it still exists, so nothing is lost.
				a.logger.Debug("Could not "+what+" a message: its receipt is no longer valid", watermill.LogFields{
					"topic": q.name, "sqs_message_id": op.h.messageID, "code": code, "reason": reason})
				finished = append(finished, op)
				continue
			}
		} else {
			finished = append(finished, op)
			continue
		}
		op.attempts++
		if op.attempts <= ackRetries && ctx.Err() == nil {
			retry = append(retry, op)
			continue
		}
		a.failed.Add(1)
		a.logger.Error("Could not "+what+" a message; SQS will deliver it again after its visibility timeout", opErr, watermill.LogFields{
			"topic": q.name, "sqs_message_id": op.h.messageID, "code": code, "reason": reason, "attempts": op.attempts})
		finished = append(finished, op)
	}
	a.finish(finished)
	if len(retry) > 0 {
		pause := time.NewTimer(time.Duration(retry[0].attempts) * 100 * time.Millisecond)
		select {
		case <-pause.C:
		case <-ctx.Done():
		}
		pause.Stop()
		a.mu.Lock()
		a.pending[q] = append(a.pending[q], retry...)
		a.mu.Unlock()
		a.kick()
	}
}

// holdPartialBatches moves back to pending, per queue and kind, the ops beyond whole batches
// while the oldest of them is younger than the batch window, and arranges a flush for when it
// is not. Called with mu held.
func (a *acker) holdPartialBatches(work map[*queue][]*ackOp) {
	now := time.Now()
	var due time.Time
	for q, ops := range work {
		var deletes, changes []*ackOp
		for _, op := range ops {
			if op.visibility < 0 {
				deletes = append(deletes, op)
			} else {
				changes = append(changes, op)
			}
		}
		send := ops[:0]
		for _, group := range [][]*ackOp{deletes, changes} {
			whole := len(group) / maxMessagesPerRequest * maxMessagesPerRequest
			rest := group[whole:]
			if len(rest) > 0 && now.Sub(rest[0].at) < a.window {
				a.pending[q] = append(a.pending[q], rest...)
				if d := rest[0].at.Add(a.window); due.IsZero() || d.Before(due) {
					due = d
				}
				group = group[:whole]
			}
			send = append(send, group...)
		}
		if len(send) == 0 {
			delete(work, q)
		} else {
			work[q] = send
		}
	}
	if !due.IsZero() {
		time.AfterFunc(time.Until(due), func() {
			select {
			case a.due <- struct{}{}:
			default:
			}
		})
	}
}

// holdExtending moves back to pending the ops of messages whose heartbeat's extension is
// under way: sent meanwhile, a return could reach SQS before the extension, which would then
// hide the message again. The heartbeat kicks a flush once it has SQS's answer. Called with mu
// held.
func (a *acker) holdExtending(work map[*queue][]*ackOp) {
	for q, ops := range work {
		send := ops[:0]
		for _, op := range ops {
			if op.h.extending {
				a.pending[q] = append(a.pending[q], op)
			} else {
				send = append(send, op)
			}
		}
		if len(send) == 0 {
			delete(work, q)
		} else {
			work[q] = send
		}
	}
}

// finish ends the ops of a batch that SQS has answered (or that were given up), and the
// heartbeat of their messages, under one lock for the batch.
func (a *acker) finish(ops []*ackOp) {
	if len(ops) == 0 {
		return
	}
	if ops[0].visibility < 0 && a.heartbeat {
		a.mu.Lock()
		for _, op := range ops {
			delete(a.held, op.h)
		}
		a.mu.Unlock()
	}
	for _, op := range ops {
		op.finishOne()
	}
}

func (op *ackOp) finishOne() {
	if op.h.onSettled != nil {
		op.h.onSettled()
	}
	if op.done != nil {
		close(op.done)
	}
}

func indexFailures(failed []types.BatchResultErrorEntry) map[string]types.BatchResultErrorEntry {
	if len(failed) == 0 {
		return nil
	}
	m := make(map[string]types.BatchResultErrorEntry, len(failed))
	for _, f := range failed {
		m[aws.ToString(f.Id)] = f
	}
	return m
}

// batchEntryClass is the class of a failed batch entry: the sender's fault or SQS's.
func batchEntryClass(f types.BatchResultErrorEntry) error {
	if f.SenderFault {
		return ErrChannel
	}
	return ErrConnection
}

func isStaleReceipt(code string) bool {
	switch code {
	case "ReceiptHandleIsInvalid", "InvalidParameterValue", "MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight":
		return true
	}
	return false
}

// beat extends the visibility of held messages that have a third of it left.
func (a *acker) beat() {
	if !a.heartbeat {
		return
	}
	now := time.Now()
	byQueue := map[*queue][]*held{}
	a.mu.Lock()
	for h := range a.held {
		if !now.Before(h.extendAt) {
			h.extendAt = now.Add(h.visibility * 2 / 3)
			h.extending = true
			a.extending++
			byQueue[h.q] = append(byQueue[h.q], h)
		}
	}
	a.mu.Unlock()
	for q, hs := range byQueue {
		for len(hs) > 0 {
			n := min(len(hs), maxMessagesPerRequest)
			batch := hs[:n]
			hs = hs[n:]
			entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(batch))
			for i, h := range batch {
				entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{
					Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(h.handle), VisibilityTimeout: int32(h.visibility / time.Second)}
			}
			ctx, cancel := context.WithTimeout(a.calls, 10*time.Second)
			out, err := q.client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(q.url), Entries: entries})
			cancel()
			a.extended(batch)
			if err != nil {
				a.logger.Error("Could not extend the visibility of held messages; will try again", classify("extend visibility", q.name, "", err), watermill.LogFields{"topic": q.name, "messages": len(batch)})
				a.mu.Lock()
				for _, h := range batch {
					h.extendAt = now // try again on the next tick
				}
				a.mu.Unlock()
				continue
			}
			for _, f := range out.Failed {
				i, _ := strconv.Atoi(aws.ToString(f.Id))
				if i < 0 || i >= len(batch) {
					continue
				}
				h := batch[i]
				a.mu.Lock()
				if f.SenderFault || isStaleReceipt(aws.ToString(f.Code)) {
					// The message is gone (settled elsewhere, or its receipt expired).
					a.logger.Debug("Stopped extending the visibility of a message", watermill.LogFields{
						"topic": q.name, "sqs_message_id": h.messageID, "code": aws.ToString(f.Code)})
					delete(a.held, h)
				} else {
					// SQS failed on its side: try again on the next tick, while a third of
					// the visibility is left.
					a.logger.Info("Could not extend the visibility of a held message; will try again", watermill.LogFields{
						"topic": q.name, "sqs_message_id": h.messageID, "code": aws.ToString(f.Code)})
					h.extendAt = now
				}
				a.mu.Unlock()
			}
		}
	}
}

// extended ends the extension under way of a batch of held messages, and has the ops that
// settled some of them meanwhile sent.
func (a *acker) extended(batch []*held) {
	settled := false
	a.mu.Lock()
	for _, h := range batch {
		h.extending = false
		settled = settled || h.done
	}
	a.extending -= len(batch)
	a.mu.Unlock()
	if settled {
		a.kick()
	}
}

// close stops the background loops and sends everything pending, bounded by ctx. Ops settled
// later are not sent: they are reported and counted as failed.
func (a *acker) close(ctx context.Context) {
	close(a.stop)
	for _, loop := range []chan struct{}{a.stopped, a.beatDone} {
		select {
		case <-loop:
		case <-ctx.Done():
			a.cancelCalls()
			<-loop
		}
	}
	a.flush(ctx, true)
	if a.drained != nil {
		a.drained()
	}
	a.cancelCalls()
}
