package kombu

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/watermill-kombu/watermill-kombu/internal/gopool"
)

// An Ack that arrives while the acker closes, after its last flush found nothing pending, is
// reported as not sent (and its waiter released) instead of staying pending for good.
func TestAckerCloseKeepsNoLateAckPending(t *testing.T) {
	var failed atomic.Int64
	a := newAcker(watermill.NopLogger{}, 50*time.Millisecond, true, &failed, gopool.New())
	q := &queue{name: "q"}
	var h held
	a.hold(&h, q, "receipt", "m-1", time.Minute, nil, time.Now())

	var done <-chan struct{}
	a.drained = func() { done = a.settle(&h, -1) }
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.close(ctx)

	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("the Ack settled as the acker closed was neither sent nor reported: its waiter never returned")
	}
	if got := failed.Load(); got != 1 {
		t.Fatalf("failed = %d, want 1: the late Ack is counted as not sent", got)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.pending) != 0 {
		t.Fatalf("%d queues with ops still pending after close", len(a.pending))
	}
}
