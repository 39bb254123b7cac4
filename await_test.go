package kombu

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/watermill-kombu/watermill-kombu/internal/gopool"
)

// A message acked by the time CloseTimeout runs out counts as acked, not as held: when both
// are ready, await settles the message instead of returning it to the queue, where it would
// run a second time.
func TestAwaitPrefersAnAckToCloseTimeout(t *testing.T) {
	expired := make(chan struct{})
	close(expired)
	for i := 0; i < 100; i++ {
		s := &Subscriber{}
		s.acks = newAcker(watermill.NopLogger{}, 0, false, &s.failed, gopool.New())
		// A closed acker reports each settle at once instead of sending it to SQS.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.acks.close(ctx)
		sub := &subscription{s: s, logger: watermill.NopLogger{}, expired: expired, calls: ctx}
		in := &inbound{q: &queue{name: "q"}}
		s.acks.hold(&in.held, in.q, "receipt", "m", time.Minute, nil, time.Now())
		msg := message.NewMessage("id", nil)
		msg.Ack()
		acked := sub.await(in, msg)
		cancel()
		if !acked {
			t.Fatalf("round %d: a message acked before CloseTimeout ran out was returned to the queue", i)
		}
	}
}
