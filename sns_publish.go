package kombu

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// snsMaxMessageSize is SNS's limit on one message (body and attributes) and on a whole
// PublishBatch request.
const snsMaxMessageSize = 256 * 1024

// publishToTopic sends messages to the SNS topic of a fanout exchange: one Publish for a single
// message, PublishBatch calls of up to 10 (and 256 KiB) otherwise. The queues Config.Exchanges
// binds to the exchange are subscribed first (once). When SNS says the topic does not exist
// (deleted meanwhile), it is created and subscribed to again, and the messages it refused are
// sent once more: only those, so that none of the batches it took is delivered twice.
func (p *Publisher) publishToTopic(ctx context.Context, exchange string, msgs []*message.Message) error {
	f := p.fanout
	for attempt := 0; ; attempt++ {
		if err := f.bindExchange(ctx, exchange); err != nil {
			return err
		}
		ref, err := f.topic(ctx, exchange)
		if err != nil {
			return err
		}
		var again []*message.Message
		again, err = p.sendToTopic(ctx, exchange, ref, msgs)
		if attempt == 0 && len(again) > 0 && f.forgetTopic(exchange, ref) {
			p.logger.Info("SNS topic was gone; creating it again and publishing once more", watermill.LogFields{"exchange": exchange, "messages": len(again)})
			msgs = again
			continue
		}
		return err
	}
}

// snsMarshaler is the Publisher's marshaler for SNS: a EnvelopeMarshaler writes the JSON envelope
// without the base64 layer, as Kombu's _put_fanout does; other marshalers are used as they are.
func (p *Publisher) snsMarshaler() Marshaler {
	switch m := p.config.Marshaler.(type) {
	case EnvelopeMarshaler:
		m.RawEnvelope = true
		return m
	case *EnvelopeMarshaler:
		c := *m
		c.RawEnvelope = true
		return c
	}
	return p.config.Marshaler
}

// sendToTopic publishes msgs to the topic. When SNS said the topic does not exist, again holds
// the messages to send once it is created again: those of the requests it refused (and, on a
// FIFO topic, the ones after them, not sent), provided nothing else failed.
func (p *Publisher) sendToTopic(ctx context.Context, exchange string, ref topicRef, msgs []*message.Message) (again []*message.Message, err error) {
	marshaler := p.snsMarshaler()
	limit := min(p.config.MaxMessageSize, snsMaxMessageSize)
	entries := make([]snstypes.PublishBatchRequestEntry, len(msgs))
	sizes := make([]int, len(msgs))
	for i, msg := range msgs {
		dest := Destination{Exchange: exchange, RoutingKey: msg.Metadata.Get(MetadataRoutingKey), FIFO: ref.fifo}
		out, err := marshaler.Marshal(dest, msg)
		if err != nil {
			return nil, &Error{Op: "marshal", Exchange: exchange, MessageID: msg.UUID, Class: ErrChannel, Err: err}
		}
		sizes[i] = out.size()
		if sizes[i] > limit {
			return nil, &Error{Op: "publish", Exchange: exchange, MessageID: msg.UUID, Class: ErrChannel, Err: fmt.Errorf(
				"message %s is %d bytes once encoded, over the SNS limit of %d bytes; nothing was sent: %w", msg.UUID, sizes[i], limit, ErrMessageTooLarge)}
		}
		entries[i] = snstypes.PublishBatchRequestEntry{
			Id:                aws.String(strconv.Itoa(i)),
			Message:           aws.String(out.Body),
			MessageAttributes: snsAttributes(out.MessageAttributes),
		}
		// As Kombu: group and deduplication ids on FIFO topics only; SNS has no per-message
		// delay, so DelaySeconds does not apply.
		if ref.fifo {
			entries[i].MessageGroupId = aws.String(out.MessageGroupID)
			entries[i].MessageDeduplicationId = aws.String(out.DeduplicationID)
		}
	}
	if len(entries) == 1 {
		e := entries[0]
		_, err := ref.client.Publish(ctx, &sns.PublishInput{
			TopicArn:               aws.String(ref.arn),
			Message:                e.Message,
			MessageAttributes:      e.MessageAttributes,
			MessageGroupId:         e.MessageGroupId,
			MessageDeduplicationId: e.MessageDeduplicationId,
		})
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				err = ctxErr
			} else if isTopicNotFound(err) {
				again = msgs
			}
			return again, exchangeError("publish", exchange, "", fmt.Errorf("publishing message %s to topic %s: %w", msgs[0].UUID, ref.arn, err))
		}
		return nil, nil
	}

	run := sendBatches(ctx, p.workers, entries, splitBatches(sizes, limit), ref.fifo,
		func(batch []snstypes.PublishBatchRequestEntry) ([]FailedMessage, []int, error) {
			return p.publishBatch(ctx, exchange, ref, batch, msgs)
		})
	err = run.outcome(msgs, ref.fifo, &PublishError{Exchange: exchange}, func(err error) error {
		return fmt.Errorf("kombu: publishing to exchange %q: %w", exchange, err)
	})
	// Only requests refused for want of the topic are sent again: when anything else failed
	// too (another request's error, an entry refused, the context's end), the error is
	// returned as it is.
	if len(run.requests) == 0 || run.ctxErr != nil ||
		slices.ContainsFunc(run.requests, func(r failedRequest) bool { return !isTopicNotFound(r.err) }) ||
		slices.ContainsFunc(run.failed, func(f FailedMessage) bool { return !f.request }) {
		return nil, err
	}
	var refused []int
	for _, r := range run.requests {
		refused = append(refused, r.refused...)
	}
	if len(refused) == 0 {
		return nil, err
	}
	slices.Sort(refused)
	if ref.fifo {
		// The refused request was the last one sent, and the entries it held the last of their
		// batch: they and every message after them go again.
		return msgs[refused[0]:], err
	}
	for _, i := range refused {
		again = append(again, msgs[i])
	}
	return again, err
}

// publishBatch sends one PublishBatch, resending entries SNS failed on its side (see
// resendFailed), and returns the entries that still failed. Entry ids are indexes into msgs.
func (p *Publisher) publishBatch(ctx context.Context, exchange string, ref topicRef, batch []snstypes.PublishBatchRequestEntry, msgs []*message.Message) ([]FailedMessage, []int, error) {
	return resendFailed(ctx, batch, msgs, ref.fifo, func(e snstypes.PublishBatchRequestEntry) string { return aws.ToString(e.Id) },
		func(batch []snstypes.PublishBatchRequestEntry, _ int) ([]batchFailure, error) {
			out, err := ref.client.PublishBatch(ctx, &sns.PublishBatchInput{TopicArn: aws.String(ref.arn), PublishBatchRequestEntries: batch})
			if err != nil {
				if ctxErr := ctx.Err(); ctxErr != nil {
					err = ctxErr
				}
				return nil, exchangeError("publish", exchange, "", fmt.Errorf("publishing %d message(s) to topic %s: %w", len(batch), ref.arn, err))
			}
			failures := make([]batchFailure, len(out.Failed))
			for i, f := range out.Failed {
				failures[i] = batchFailure{id: aws.ToString(f.Id), code: aws.ToString(f.Code), message: aws.ToString(f.Message), senderFault: f.SenderFault}
			}
			return failures, nil
		})
}

// snsAttributes converts SQS message attributes to SNS ones; with raw message delivery SNS
// hands them on to the queues as SQS message attributes.
func snsAttributes(attrs map[string]sqstypes.MessageAttributeValue) map[string]snstypes.MessageAttributeValue {
	if len(attrs) == 0 {
		return nil
	}
	out := make(map[string]snstypes.MessageAttributeValue, len(attrs))
	for name, v := range attrs {
		out[name] = snstypes.MessageAttributeValue{DataType: v.DataType, StringValue: v.StringValue, BinaryValue: v.BinaryValue}
	}
	return out
}
