package kombu

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// coalescer sends the single-message Publish calls of one queue together, in
// SendMessageBatch calls of up to 10 entries. A message that finds nothing under way is sent
// at once (after CoalesceLinger, if set); while calls are under way, messages wait for the
// next one and leave together. A further call is started only for a batch of at least
// furtherBatch messages, so the request count stays near one per ten messages under load, and
// at most maxParallelBatches calls run at once (one on a FIFO queue, so that messages leave in
// the order they came).
// Each caller gets the outcome of its own entry.
type coalescer struct {
	p        *Publisher
	q        *queue
	parallel int

	mu       sync.Mutex
	pending  []*coalesced
	inflight int
	company  chan struct{} // signalled when a batch is full, for a lingering sender
}

// coalesced is one message waiting to be sent, and where its outcome goes.
type coalesced struct {
	entry types.SendMessageBatchRequestEntry
	size  int
	uuid  string
	ctx   context.Context // the caller's
	done  chan error      // buffered: the sender never blocks on a caller that gave up
}

// coalescedPool keeps the items, and their channels, of messages whose callers got their
// outcome: the sender is done with an item once it has answered on done.
var coalescedPool = sync.Pool{New: func() any { return &coalesced{done: make(chan error, 1)} }}

func newCoalescer(p *Publisher, q *queue) *coalescer {
	parallel := maxParallelBatches
	if q.fifo {
		parallel = 1
	}
	return &coalescer{p: p, q: q, parallel: parallel, company: make(chan struct{}, 1)}
}

// coalescerFor returns the coalescer of a queue.
func (p *Publisher) coalescerFor(q *queue) *coalescer {
	p.coalMu.Lock()
	defer p.coalMu.Unlock()
	c, ok := p.coalescers[q]
	if !ok {
		if p.coalescers == nil {
			p.coalescers = map[*queue]*coalescer{}
		}
		c = newCoalescer(p, q)
		p.coalescers[q] = c
	}
	return c
}

// forgetCoalescer drops the coalescer of a queue that was resolved again.
func (p *Publisher) forgetCoalescer(q *queue) {
	p.coalMu.Lock()
	delete(p.coalescers, q)
	p.coalMu.Unlock()
}

// send queues one message and waits for its outcome, or for ctx or the Publisher's calls to
// end. A caller whose ctx ends while its message is under way gets ctx's error; the message
// may have been sent.
func (c *coalescer) send(ctx context.Context, uuid string, entry types.SendMessageBatchRequestEntry, size int) error {
	item := coalescedPool.Get().(*coalesced)
	item.entry, item.size, item.uuid, item.ctx = entry, size, uuid, ctx
	c.mu.Lock()
	c.pending = append(c.pending, item)
	full := len(c.pending) >= maxMessagesPerRequest
	start := c.inflight == 0 || (c.inflight < c.parallel && len(c.pending) >= furtherBatch)
	if start {
		c.inflight++
	}
	c.mu.Unlock()
	if start {
		c.p.workers.Go(c.run)
	} else if full {
		// A lingering run waits for a full batch: waking it for each message that joins
		// cost a wake-up and a look at pending per message.
		select {
		case c.company <- struct{}{}:
		default:
		}
	}
	answered, err := item.outcome(ctx, c.p.calls)
	if answered {
		// done is empty again and the sender holds on to nothing of the item.
		*item = coalesced{done: item.done}
		coalescedPool.Put(item)
		return err
	}
	c.mu.Lock()
	for i, it := range c.pending {
		if it == item {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			break
		}
	}
	c.mu.Unlock()
	return fmt.Errorf("kombu: publishing to queue %q: %w", c.q.name, err)
}

// outcome waits for the item's outcome (answered true), or for ctx or calls to end. An
// outcome already there when they end is still taken: select picks at random among ready
// cases, and the caller would be told of a context error for a message SQS accepted.
func (item *coalesced) outcome(ctx, calls context.Context) (answered bool, err error) {
	select {
	case err = <-item.done:
		return true, err
	case <-ctx.Done():
		err = ctx.Err()
	case <-calls.Done():
		err = calls.Err()
	}
	select {
	case answer := <-item.done:
		return true, answer
	default:
		return false, err
	}
}

// run sends batches until nothing is pending.
func (c *coalescer) run() {
	if linger := c.p.config.CoalesceLinger; linger > 0 {
		c.linger(linger)
	}
	for {
		c.mu.Lock()
		// Fewer than furtherBatch messages are left to the last call under way: they gather
		// while the others are in flight, so batches stay near full under load. That holds
		// for a run started for furtherBatch messages too, which finds fewer when another run
		// took them first. The run that sees itself alone takes whatever is pending.
		if len(c.pending) == 0 || (c.inflight > 1 && len(c.pending) < furtherBatch) {
			c.inflight--
			c.mu.Unlock()
			return
		}
		batch := c.take()
		// What is left may make a batch of its own: it goes out beside this one rather
		// than wait for this one's answer (its callers have nothing more to add).
		further := len(c.pending) >= furtherBatch && c.inflight < c.parallel
		if further {
			c.inflight++
		}
		c.mu.Unlock()
		if further {
			c.p.workers.Go(c.run)
		}
		c.sendBatch(batch)
		c.gather()
	}
}

// furtherBatch is how many messages must be waiting for a further SendMessageBatch to start
// while others are under way. Batches sent beside others then hold at least 8 messages (at
// most 0.125 requests per message), and from 16 callers on two calls are in flight, where
// waiting for a full batch left six callers idle for a whole round trip.
const furtherBatch = 8

// gatherWait bounds how long a run that has just answered its callers waits for them to
// publish again when fewer than a full batch are pending.
const gatherWait = 30 * time.Microsecond

// gather lets the callers a send just answered publish again before the next batch is
// taken: they often do so at once, and their messages then join that batch instead of
// following in a batch of their own. With messages pending but less than a full batch, it
// lingers for gatherWait at most; those messages have waited for a whole send already. With
// nothing pending it returns at once: the run ends, and a caller alone is never kept waiting.
func (c *coalescer) gather() {
	if c.pendingLen() > 0 {
		c.linger(gatherWait)
	}
}

func (c *coalescer) pendingLen() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// linger waits up to d for a full batch.
func (c *coalescer) linger(d time.Duration) {
	if c.pendingLen() >= maxMessagesPerRequest {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return
		case <-c.company:
		}
		if c.pendingLen() >= maxMessagesPerRequest {
			return
		}
	}
}

// take removes the next batch from pending: up to 10 messages whose sizes add up to at most
// MaxMessageSize. When a further call may start, it leaves furtherBatch messages for it if
// that leaves as many for this one: 16 pending go out as two batches of 8 at once, not as 10
// followed by 6 a round trip later. Called with mu held.
func (c *coalescer) take() []*coalesced {
	limit := maxMessagesPerRequest
	if p := len(c.pending); c.inflight < c.parallel && p-limit < furtherBatch && p >= 2*furtherBatch {
		limit = p - furtherBatch
	}
	n, total := 0, 0
	for n < len(c.pending) && n < limit {
		s := c.pending[n].size
		if n > 0 && total+s > c.p.config.MaxMessageSize {
			break
		}
		total += s
		n++
	}
	batch := make([]*coalesced, n)
	copy(batch, c.pending[:n])
	rest := copy(c.pending, c.pending[n:])
	clear(c.pending[rest:])
	c.pending = c.pending[:rest]
	return batch
}

// sendBatch sends one batch, resends the entries SQS failed on its side, and gives every
// caller its own outcome. On a FIFO queue a resent entry may land behind entries of other
// callers, concurrent messages with no order between them; never behind a later message of
// its own caller, which joins a later batch, taken only once the resends are done.
func (c *coalescer) sendBatch(batch []*coalesced) {
	q := c.q
	ctx, cancel := c.batchContext(batch)
	defer cancel()
	pause := 100 * time.Millisecond
	for attempt := 0; len(batch) > 0; attempt++ {
		if attempt > 0 {
			c.p.logger.Debug("Resending entries SQS failed on its side", watermill.LogFields{"topic": q.name, "entries": len(batch), "attempt": attempt})
			select {
			case <-time.After(pause):
			case <-ctx.Done():
				for _, it := range batch {
					it.done <- fmt.Errorf("kombu: publishing to queue %q: %w", q.name, ctx.Err())
				}
				return
			}
			pause *= 2
		}
		entries := make([]types.SendMessageBatchRequestEntry, len(batch))
		for i, it := range batch {
			entries[i] = it.entry
			entries[i].Id = aws.String(strconv.Itoa(i))
		}
		out, err := q.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.url), Entries: entries})
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				err = ctxErr
			}
			for _, it := range batch {
				it.done <- classify("send", q.name, it.uuid, fmt.Errorf("sending message %s to queue %q: %w", it.uuid, q.name, err))
			}
			return
		}
		failed := make(map[int]types.BatchResultErrorEntry, len(out.Failed))
		for _, f := range out.Failed {
			if i, err := strconv.Atoi(aws.ToString(f.Id)); err == nil && i >= 0 && i < len(batch) {
				failed[i] = f
			}
		}
		var retry []*coalesced
		for i, it := range batch {
			f, ok := failed[i]
			switch {
			case !ok:
				it.done <- nil
			case !f.SenderFault && attempt < sendRetries:
				retry = append(retry, it)
			default:
				it.done <- &PublishError{Queue: q.name, Failed: []FailedMessage{{
					MessageUUID: it.uuid, Code: aws.ToString(f.Code), Reason: aws.ToString(f.Message), SenderFault: f.SenderFault}}}
			}
		}
		batch = retry
	}
}

// batchContext returns the context of a batch's requests: the Publisher's calls, also
// cancelled once every caller of the batch has given up (its context ended). Without
// RequestTimeout nothing else bounds a request that gets no answer, and the messages of later
// callers wait behind it. A caller whose context never ends keeps the batch going.
func (c *coalescer) batchContext(batch []*coalesced) (context.Context, context.CancelFunc) {
	for _, it := range batch {
		if it.ctx.Done() == nil {
			return c.p.calls, func() {}
		}
	}
	ctx, cancel := context.WithCancel(c.p.calls)
	var left atomic.Int32
	left.Store(int32(len(batch)))
	stops := make([]func() bool, len(batch))
	for i, it := range batch {
		stops[i] = context.AfterFunc(it.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}
