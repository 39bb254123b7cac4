package kombu

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"github.com/watermill-kombu/watermill-kombu/internal/gopool"
)

// maxParallelBatches bounds the SendMessageBatch calls one Publish runs at once on a standard
// queue. FIFO queues send their batches one after the other, to keep the order.
const maxParallelBatches = 8

// sendRetries is how many times entries that SQS failed without blaming the sender are sent again.
const sendRetries = 3

// Publisher publishes Watermill messages to SQS queues in Kombu's format. The topic is the
// Kombu queue name (a Celery queue such as "celery"). It is safe for concurrent use.
type Publisher struct {
	*sqsConn
	config PublisherConfig
	logger watermill.LoggerAdapter

	closeOnce sync.Once
	inflight  sync.WaitGroup
	mu        sync.RWMutex // guards closed against inflight.Add
	closed    bool
	// calls is cancelled when Close gives up waiting for Publish calls under way.
	calls       context.Context
	cancelCalls context.CancelFunc

	coalMu     sync.Mutex
	coalescers map[*queue]*coalescer
	// workers run the batch sends, keeping their goroutines.
	workers *gopool.Pool
}

// NewPublisher creates a Publisher. A nil logger logs nothing.
func NewPublisher(config PublisherConfig, logger watermill.LoggerAdapter) (*Publisher, error) {
	config.setDefaults()
	if err := config.Validate(); err != nil {
		return nil, err
	}
	conn, err := newSQSConn(config.Config, nil)
	if err != nil {
		return nil, err
	}
	p := &Publisher{sqsConn: conn, config: config, logger: componentLogger(logger, "kombu.Publisher"), workers: gopool.NewDeep()}
	p.fanout = newSNSFanout(config.Config, conn, p.logger)
	p.calls, p.cancelCalls = context.WithCancel(context.Background())
	return p, nil
}

// Stats returns the SQS requests this Publisher has sent so far.
func (p *Publisher) Stats() RequestCounts { return p.stats.Snapshot() }

// Publish sends messages to the queue named by topic and returns once SQS has accepted every
// one of them. Messages go in SendMessageBatch calls of up to 10 entries. A single message is
// sent together with those of other Publish calls to the same queue under way at the same
// time (see PublisherConfig.DisableCoalescing); alone, it leaves at once. A message over the
// size limit fails the whole call before any request. When SQS rejects some entries, the
// error is a *PublishError naming them; the others were sent. On a FIFO queue the batches go
// one after the other, and the call stops at the first batch with a failed request or entry:
// the *PublishError then names every message not accepted, those never sent marked NotSent,
// and no message is accepted ahead of one of the call that was not. Entries SQS failed on its
// side are sent again, on a FIFO queue only when no entry after them in their batch was
// accepted.
//
// The context of the first message bounds the call, and each SQS request is bounded by
// RequestTimeout. When SQS says the queue does not exist (deleted, or lost by a broker
// restart), its URL is looked up again, the queue created again unless DisableQueueCreation is
// set, and the messages sent once more.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return ErrPublisherClosed
	}
	p.inflight.Add(1)
	p.mu.RUnlock()
	defer p.inflight.Done()

	if len(msgs) == 0 {
		return nil
	}
	for i, msg := range msgs {
		if msg == nil {
			return fmt.Errorf("kombu: publishing to %q: message %d of %d is nil", topic, i+1, len(msgs))
		}
	}
	ctx := msgs[0].Context()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kombu: publishing to %q: %w", topic, err)
	}
	if p.fanout != nil && p.config.snsExchange(topic) {
		ctx, cancel := p.bound(ctx)
		defer cancel()
		return p.publishToTopic(ctx, topic, msgs)
	}
	if ex, ok := p.config.Exchanges[topic]; ok {
		ctx, cancel := p.bound(ctx)
		defer cancel()
		return classify("publish", topic, "", p.publishToExchange(ctx, topic, ex, msgs))
	}
	return p.publishToQueue(ctx, topic, Destination{Queue: topic, RoutingKey: topic}, msgs)
}

// bound returns ctx, also cancelled when Close gives up waiting (p.calls), for the SQS and
// SNS calls of a Publish. The common path, one message to a known queue, does without it:
// deriving a context and registering it with p.calls costs every concurrent Publish a turn
// at p.calls' lock.
func (p *Publisher) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(p.calls, cancel)
	return ctx, func() { stop(); cancel() }
}

// publishToQueue resolves a queue and sends to it; when SQS says the queue does not exist, it
// resolves it again (creating it when allowed) and sends once more.
func (p *Publisher) publishToQueue(ctx context.Context, name string, dest Destination, msgs []*message.Message) error {
	for attempt := 0; ; attempt++ {
		q := p.resolver.known(name)
		if q == nil {
			var err error
			bctx, cancel := p.bound(ctx)
			q, err = p.resolver.resolve(bctx, name)
			cancel()
			if err != nil {
				return classify("resolve queue", name, "", err)
			}
		}
		dest.FIFO = q.fifo
		err := p.publishTo(ctx, q, dest, msgs)
		if attempt == 0 && p.resolver.recoverable(q, err) {
			p.forgetCoalescer(q)
			p.logger.Info("Queue was gone; resolving it again and publishing once more", watermill.LogFields{"topic": name})
			continue
		}
		return err
	}
}

// entryFor marshals msg and checks its size; the entry has no Id yet.
func (p *Publisher) entryFor(q *queue, dest Destination, msg *message.Message) (types.SendMessageBatchRequestEntry, int, error) {
	out, err := p.config.Marshaler.Marshal(dest, msg)
	if err != nil {
		return types.SendMessageBatchRequestEntry{}, 0, channelError("marshal", q.name, msg.UUID, err)
	}
	size := out.size()
	if size > p.config.MaxMessageSize {
		return types.SendMessageBatchRequestEntry{}, 0, &MessageTooLargeError{Queue: q.name, MessageUUID: msg.UUID, Size: size, Limit: p.config.MaxMessageSize}
	}
	e := types.SendMessageBatchRequestEntry{
		MessageBody:       aws.String(out.Body),
		MessageAttributes: out.MessageAttributes,
		DelaySeconds:      out.DelaySeconds,
	}
	if out.MessageGroupID != "" {
		e.MessageGroupId = aws.String(out.MessageGroupID)
	}
	if out.DeduplicationID != "" && q.fifo {
		e.MessageDeduplicationId = aws.String(out.DeduplicationID)
	}
	return e, size, nil
}

// publishTo marshals, checks sizes, batches and sends.
func (p *Publisher) publishTo(ctx context.Context, q *queue, dest Destination, msgs []*message.Message) error {
	if len(msgs) == 1 {
		entry, size, err := p.entryFor(q, dest, msgs[0])
		if err != nil {
			return err
		}
		if !p.config.DisableCoalescing {
			return p.coalescerFor(q).send(ctx, msgs[0].UUID, entry, size)
		}
		ctx, cancel := p.bound(ctx)
		defer cancel()
		return p.sendOne(ctx, q, msgs[0], &entry)
	}
	entries := make([]types.SendMessageBatchRequestEntry, len(msgs))
	sizes := make([]int, len(msgs))
	for i, msg := range msgs {
		e, size, err := p.entryFor(q, dest, msg)
		if err != nil {
			return err
		}
		e.Id = aws.String(strconv.Itoa(i))
		entries[i], sizes[i] = e, size
	}
	ctx, cancel := p.bound(ctx)
	defer cancel()

	run := sendBatches(ctx, p.workers, entries, splitBatches(sizes, p.config.MaxMessageSize), q.fifo,
		func(batch []types.SendMessageBatchRequestEntry) ([]FailedMessage, []int, error) {
			return p.sendBatch(ctx, q, batch, msgs)
		})
	if err := run.outcome(msgs, q.fifo, &PublishError{Queue: q.name}, func(err error) error {
		return fmt.Errorf("kombu: publishing to queue %q: %w", q.name, err)
	}); err != nil {
		return err
	}
	p.logger.Trace("Published batch", watermill.LogFields{"topic": q.name, "messages": len(msgs)})
	return nil
}

// batchRun is what sendBatches did.
type batchRun struct {
	failed   []FailedMessage // messages not accepted, in the order of msgs on a FIFO queue
	requests []failedRequest // the requests that failed
	next     int             // index of the first message not handed to a request
	ctxErr   error           // the context's error, when it ended before every batch was handed on
}

// failedRequest is a request that failed: the indexes in msgs of its entries, in order, and
// the error. A resend of a batch's entries failed on the service's side holds those entries
// only, not the ones of the batch an earlier request took.
type failedRequest struct {
	refused []int
	err     error
}

// errs returns the errors of the failed requests.
func (run batchRun) errs() []error {
	errs := make([]error, len(run.requests))
	for i, r := range run.requests {
		errs[i] = r.err
	}
	return errs
}

// sendBatches hands the batches of entries (index ranges, from splitBatches) to send: at most
// maxParallelBatches at once on a standard queue or topic, one after the other on a FIFO one.
// There it stops at the first batch with a failed request or entry: a later batch would
// otherwise be accepted ahead of messages of the same group that were not.
func sendBatches[E any](ctx context.Context, workers *gopool.Pool, entries []E, batches [][2]int, fifo bool,
	send func(batch []E) ([]FailedMessage, []int, error)) batchRun {
	var (
		mu  sync.Mutex
		run = batchRun{next: len(entries)}
		wg  sync.WaitGroup
	)
	parallel := maxParallelBatches
	if fifo {
		parallel = 1
	}
	sem := make(chan struct{}, parallel)
	for _, b := range batches {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			run.ctxErr, run.next = ctx.Err(), b[0]
		}
		if run.ctxErr != nil {
			break
		}
		if fifo {
			// The batch before has released sem: its outcome is in.
			mu.Lock()
			stop := len(run.requests) > 0 || len(run.failed) > 0
			mu.Unlock()
			if stop {
				run.next = b[0]
				break
			}
		}
		wg.Add(1)
		batch := entries[b[0]:b[1]]
		workers.Go(func() {
			defer func() { <-sem; wg.Done() }()
			f, refused, err := send(batch)
			mu.Lock()
			run.failed = append(run.failed, f...)
			if err != nil {
				run.requests = append(run.requests, failedRequest{refused: refused, err: err})
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return run
}

// outcome returns the error of a Publish call whose batches went as run says, nil when every
// message was accepted. pe names the queue or exchange; wrap wraps the context's error.
//
// On a standard queue or topic, that is the context's error, else the failed requests'
// errors, else a PublishError of the failed entries. On a FIFO one, pe names every message
// not accepted (see PublishError), joined to the failed requests' errors and the context's.
func (run batchRun) outcome(msgs []*message.Message, fifo bool, pe *PublishError, wrap func(error) error) error {
	if !fifo {
		switch {
		case run.ctxErr != nil:
			return wrap(run.ctxErr)
		case len(run.requests) > 0:
			return errors.Join(run.errs()...)
		case len(run.failed) > 0:
			pe.Failed = run.failed
			return pe
		}
		return nil
	}
	if run.ctxErr == nil && len(run.requests) == 0 && len(run.failed) == 0 {
		return nil
	}
	pe.Failed = run.failed
	for _, m := range msgs[run.next:] {
		pe.Failed = append(pe.Failed, FailedMessage{MessageUUID: m.UUID, NotSent: true,
			Reason: "not sent: a message before it in the call was not accepted"})
	}
	errs := run.errs()
	if run.ctxErr != nil {
		errs = append(errs, wrap(run.ctxErr))
	}
	if len(errs) == 0 {
		return pe
	}
	return errors.Join(append(errs, pe)...)
}

// splitBatches groups consecutive messages into batches of at most 10 whose sizes add up to at
// most limit. It returns [start, end) index pairs.
func splitBatches(sizes []int, limit int) [][2]int {
	var out [][2]int
	start, total := 0, 0
	for i, s := range sizes {
		if i > start && (i-start == maxMessagesPerRequest || total+s > limit) {
			out = append(out, [2]int{start, i})
			start, total = i, 0
		}
		total += s
	}
	return append(out, [2]int{start, len(sizes)})
}

func (p *Publisher) sendOne(ctx context.Context, q *queue, msg *message.Message, e *types.SendMessageBatchRequestEntry) error {
	_, err := q.client.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:               aws.String(q.url),
		MessageBody:            e.MessageBody,
		MessageAttributes:      e.MessageAttributes,
		DelaySeconds:           e.DelaySeconds,
		MessageGroupId:         e.MessageGroupId,
		MessageDeduplicationId: e.MessageDeduplicationId,
	})
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
		return classify("send", q.name, msg.UUID, fmt.Errorf("sending message %s to queue %q: %w", msg.UUID, q.name, err))
	}
	return nil
}

// sendBatch sends one batch, resending entries SQS failed on its side (see resendFailed), and
// returns the entries that still failed. Entry ids are indexes into msgs.
func (p *Publisher) sendBatch(ctx context.Context, q *queue, batch []types.SendMessageBatchRequestEntry, msgs []*message.Message) ([]FailedMessage, []int, error) {
	return resendFailed(ctx, batch, msgs, q.fifo, func(e types.SendMessageBatchRequestEntry) string { return aws.ToString(e.Id) },
		func(batch []types.SendMessageBatchRequestEntry, attempt int) ([]batchFailure, error) {
			if attempt > 0 {
				p.logger.Debug("Resending entries SQS failed on its side", watermill.LogFields{"topic": q.name, "entries": len(batch), "attempt": attempt})
			}
			out, err := q.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.url), Entries: batch})
			if err != nil {
				if ctxErr := ctx.Err(); ctxErr != nil {
					err = ctxErr
				}
				return nil, classify("send", q.name, "", fmt.Errorf("sending %d message(s) to queue %q: %w", len(batch), q.name, err))
			}
			failures := make([]batchFailure, len(out.Failed))
			for i, f := range out.Failed {
				failures[i] = batchFailure{id: aws.ToString(f.Id), code: aws.ToString(f.Code), message: aws.ToString(f.Message), senderFault: f.SenderFault}
			}
			return failures, nil
		})
}

// batchFailure is an entry a batch call (SQS SendMessageBatch, SNS PublishBatch) failed.
type batchFailure struct {
	id, code, message string
	senderFault       bool
}

// resendFailed calls send with the batch, then again (after a growing pause) with the entries
// the service failed on its side, up to sendRetries times. It returns the entries that failed
// for good, named by the message whose index in msgs is the entry's id (those of one request
// in the batch's order); when a request fails, its entries too, their indexes in msgs (refused),
// and its error. Entries an earlier request of the batch took are not among refused: sending
// refused again after that error delivers nothing twice.
//
// On a FIFO queue or topic, failed entries are sent again only when they are the last of the
// batch and the service failed each of them on its side: nothing after them was accepted, so
// sent again they still follow the entries before them. A failed entry followed by an accepted
// one is not sent again, as it would land behind it: it is returned, and the call stops there
// (see sendBatches).
func resendFailed[E any](ctx context.Context, batch []E, msgs []*message.Message, fifo bool, entryID func(E) string,
	send func(batch []E, attempt int) ([]batchFailure, error)) (failed []FailedMessage, refused []int, err error) {
	var retrying []FailedMessage
	pause := 100 * time.Millisecond
	for attempt := 0; len(batch) > 0; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(pause):
			case <-ctx.Done():
				return append(failed, retrying...), indexes(batch, entryID), fmt.Errorf("kombu: sending %d message(s) again: %w", len(batch), ctx.Err())
			}
			pause *= 2
		}
		failures, err := send(batch, attempt)
		if err != nil {
			code, reason := requestFailure(err)
			for _, e := range batch {
				failed = append(failed, FailedMessage{MessageUUID: messageUUID(msgs, entryID(e)), Code: code, Reason: reason,
					SenderFault: errors.Is(err, ErrChannel), request: true})
			}
			return failed, indexes(batch, entryID), err
		}
		pos := make(map[string]int, len(batch))
		for i, e := range batch {
			pos[entryID(e)] = i
		}
		slices.SortStableFunc(failures, func(a, b batchFailure) int { return cmp.Compare(position(pos, a.id), position(pos, b.id)) })
		resend := attempt < sendRetries && (!fifo || failedTail(pos, len(batch), failures))
		var retry []E
		retrying = retrying[:0]
		for _, f := range failures {
			fm := FailedMessage{MessageUUID: messageUUID(msgs, f.id), Code: f.code, Reason: f.message, SenderFault: f.senderFault}
			if i, ok := pos[f.id]; ok && resend && !f.senderFault {
				retry = append(retry, batch[i])
				retrying = append(retrying, fm)
				continue
			}
			failed = append(failed, fm)
		}
		batch = retry
	}
	return failed, nil, nil
}

// indexes returns the indexes in msgs that the ids of the entries of batch are, in order.
func indexes[E any](batch []E, entryID func(E) string) []int {
	out := make([]int, 0, len(batch))
	for _, e := range batch {
		if i, err := strconv.Atoi(entryID(e)); err == nil {
			out = append(out, i)
		}
	}
	return out
}

// position returns the index in the batch of the entry with id, -1 for an unknown id.
func position(pos map[string]int, id string) int {
	if i, ok := pos[id]; ok {
		return i
	}
	return -1
}

// failedTail reports whether failures, sorted by position, are the last entries of a batch of
// n, each failed by the service on its side.
func failedTail(pos map[string]int, n int, failures []batchFailure) bool {
	for k, f := range failures {
		if i, ok := pos[f.id]; !ok || i != n-len(failures)+k || f.senderFault {
			return false
		}
	}
	return true
}

// messageUUID returns the UUID of the message whose index in msgs is id, "" when there is none.
func messageUUID(msgs []*message.Message, id string) string {
	if idx, err := strconv.Atoi(id); err == nil && idx >= 0 && idx < len(msgs) {
		return msgs[idx].UUID
	}
	return ""
}

// requestFailure returns the code and reason of a failed batch request for its entries: the
// service's error code and message when it answered, else no code.
func requestFailure(err error) (code, reason string) {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode(), apiErr.ErrorMessage()
	}
	return "", err.Error()
}

// Close makes later Publish calls fail with ErrPublisherClosed and waits for those under way,
// at most CloseTimeout: those still running then are cancelled, and Close returns after they
// have (each SQS call is bounded by RequestTimeout anyway). It is safe to call more than once.
func (p *Publisher) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		done := make(chan struct{})
		go func() {
			p.inflight.Wait()
			close(done)
		}()
		timer := time.NewTimer(p.config.CloseTimeout)
		defer timer.Stop()
		select {
		case <-done:
		case <-timer.C:
			p.logger.Error("Publish calls still under way after CloseTimeout; cancelling them", nil, nil)
			p.cancelCalls()
			<-done
		}
		p.cancelCalls()
		p.workers.Close()
	})
	return nil
}
