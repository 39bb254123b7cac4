package kombu

import (
	"context"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
)

// deliver runs Concurrency deliverers, which hand buffered messages to the output channel
// and each wait for its message to be acked or nacked before taking the next: waiting in the
// goroutine that handed the message out spares a hand-off per message. It returns when the
// subscription stops; deliverers still waiting for their messages go on until those are
// settled (run waits for them).
func (sub *subscription) deliver() {
	n := cap(sub.slots)
	sub.deliverers.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			defer sub.deliverers.Done()
			sub.deliverLoop()
		}()
	}
	<-sub.stop
}

// deliverLoop takes a slot and a buffered message, hands it out and waits for it to be
// settled, until the subscription stops.
func (sub *subscription) deliverLoop() {
	for {
		select {
		case sub.slots <- struct{}{}:
		case <-sub.stop:
			return
		}
		if in := sub.take(); in != nil {
			if msg, cancel, _ := sub.handOut(in, sub.stop); msg != nil {
				sub.serve(in, msg, cancel)
			}
		}
		if sub.stopped() {
			return
		}
	}
}

// take returns the next buffered message to hand out, holding the caller's slot; nil when
// the subscription stopped, or the message waits behind its FIFO group or went back (the slot
// is then freed). With a gate, taking and admitting a message is one step, so that the
// messages of a group are admitted in the order of the buffer.
func (sub *subscription) take() *inbound {
	// Without a gate there is no group to admit in order: the deliverers wait on the buffer
	// side by side, and a message wakes one of them. Under takeMu, the one taking a message
	// would also wake the next to wait on the buffer, a second wake-up per message.
	if sub.gate != nil {
		sub.takeMu.Lock()
		defer sub.takeMu.Unlock()
	}
	select {
	case in := <-sub.buf:
		sub.signalDrained()
		if sub.gate != nil {
			switch sub.gate.admit(in, true) {
			case waitBehind:
				<-sub.slots
				return nil
			case giveBack:
				<-sub.slots
				sub.requeue([]*held{&in.held})
				return nil
			}
		}
		return in
	case <-sub.stop:
		<-sub.slots
		return nil
	}
}

// handle hands one message out, holding a slot taken by the caller, and has it settled by a
// worker when the handler acks or nacks it; the slot is freed then (or passed on to the next
// message of its FIFO group). When giveUp is closed before the consumer takes the message, it
// goes back to the queue at once. It reports whether the message was handed out (or deferred
// to its eta).
func (sub *subscription) handle(in *inbound, giveUp <-chan struct{}) bool {
	msg, cancel, deferred := sub.handOut(in, giveUp)
	if msg == nil {
		return deferred
	}
	sub.s.workers.Go(func() { sub.serve(in, msg, cancel) })
	return true
}

// handOut hands one message out, holding a slot taken by the caller, and returns it with the
// cancel func of its context, counted in handlers; the caller must then serve it. msg is nil
// when the message went back to the queue (giveUp was closed before the consumer took it) or
// was deferred to its eta (deferred true); the slot is then freed.
func (sub *subscription) handOut(in *inbound, giveUp <-chan struct{}) (msg *message.Message, cancel context.CancelFunc, deferred bool) {
	select {
	case <-giveUp:
		sub.requeue([]*held{&in.held})
		sub.release(in, false)
		return nil, nil, false
	default:
	}
	msg = sub.unmarshal(in)
	if !sub.s.config.DisableETADeferral && sub.deferUntilETA(in, msg) {
		sub.keepOrderBehind(in) // before the slot is freed: no deliverer takes a message meanwhile
		sub.release(in, false)
		return nil, nil, true
	}
	ctx, cancel := context.WithCancel(sub.msgs)
	msg.SetContext(ctx)

	select {
	case sub.out <- msg:
	case <-giveUp:
		cancel()
		sub.requeue([]*held{&in.held})
		sub.release(in, false)
		return nil, nil, false
	}
	sub.handlers.Add(1)
	return msg, cancel, false
}

// serve waits until the handler acks or nacks a message handed out and settles it, freeing
// its slot; on a FIFO queue the slot may pass on to the next message of the group, which it
// then hands out and serves in turn.
func (sub *subscription) serve(in *inbound, msg *message.Message, cancel context.CancelFunc) {
	for msg != nil {
		acked := sub.await(in, msg)
		cancel() // the message's context ends with its Ack or Nack
		next := sub.release(in, acked)
		var nextMsg *message.Message
		var nextCancel context.CancelFunc
		if next != nil {
			nextMsg, nextCancel, _ = sub.handOut(next, sub.stop)
		}
		sub.handlers.Done() // once the next message, if any, is counted
		in, msg, cancel = next, nextMsg, nextCancel
	}
}

// release frees the slot of a message that was acked, or went back to the queue (nacked,
// deferred or returned). On a FIFO queue handled concurrently, an acked message passes its
// slot on to the next message of its group, which it returns for the caller to hand out, and
// one that went back takes the group's waiting messages back with it, so none overtakes it.
func (sub *subscription) release(in *inbound, acked bool) (next *inbound) {
	if sub.gate != nil {
		if acked {
			if next := sub.gate.acked(in); next != nil {
				sub.signalDrained() // room in the prefetch for the poller
				return next
			}
		} else if back := sub.gate.failed(in); len(back) > 0 {
			sub.signalDrained()
			sub.requeue(helds(back))
		}
	}
	<-sub.slots
	return nil
}

// await settles a handed-out message when its handler acks or nacks it, and reports whether
// it was acked. After Close it waits as long as CloseTimeout allows; a message still unsettled
// then is made visible again.
func (sub *subscription) await(in *inbound, msg *message.Message) bool {
	select {
	case <-msg.Acked():
		sub.s.acks.settleAsync(&in.held, -1)
		return true
	case <-msg.Nacked():
		sub.nack(in, msg)
	case <-sub.expired:
		// A message settled just as CloseTimeout ran out is settled: select picks at random
		// among ready cases, and returning an acked message would have it run twice.
		select {
		case <-msg.Acked():
			sub.s.acks.settleAsync(&in.held, -1)
			return true
		case <-msg.Nacked():
			sub.nack(in, msg)
			return false
		default:
		}
		sub.logger.Error("A handler still held a message when CloseTimeout ran out; it goes back to the queue", nil,
			watermill.LogFields{"message_uuid": msg.UUID, "sqs_message_id": in.held.messageID})
		sub.requeue([]*held{&in.held})
		go sub.watchLateAck(in, msg)
	}
	return false
}

// watchLateAck reports an Ack that came after its message was given back at Close: it can no
// longer be sent, and SQS delivers the message again.
func (sub *subscription) watchLateAck(in *inbound, msg *message.Message) {
	t := time.NewTimer(in.held.visibility)
	defer t.Stop()
	select {
	case <-msg.Acked():
		sub.s.failed.Add(1)
		sub.logger.Error("Message acked after CloseTimeout; the ack was not sent and SQS will deliver it again", nil,
			watermill.LogFields{"message_uuid": msg.UUID, "sqs_message_id": in.held.messageID})
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
	sub.s.acks.settleAsync(&in.held, int32(delay))
	sub.keepOrderBehind(in)
}

// keepOrderBehind is called when a message went back to its queue (nacked, or deferred to its
// eta). On a FIFO queue handled one message at a time (no gate), the messages received after
// it must not overtake it: those in the buffer go back too, so that SQS delivers the group
// again in order, and backBehind tells a late hand-out to give back the rest of its receive.
func (sub *subscription) keepOrderBehind(in *inbound) {
	if !in.q.fifo || sub.gate != nil {
		return
	}
	sub.backBehind.Store(true)
	sub.requeue(helds(sub.drainBuffer()))
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
