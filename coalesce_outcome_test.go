package kombu

import (
	"context"
	"testing"
)

// A coalesced caller whose context ends as its outcome arrives gets the outcome: a message
// SQS accepted is not reported as failed with the context's error.
func TestCoalescedOutcomeWinsOverEndedContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := 0; i < 100; i++ {
		item := &coalesced{done: make(chan error, 1)}
		item.done <- nil
		if answered, err := item.outcome(ctx, context.Background()); !answered || err != nil {
			t.Fatalf("round %d: outcome = %v, %v; want the sender's answer (nil)", i, err, answered)
		}
	}
}
