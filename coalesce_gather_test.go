package kombu

import (
	"testing"
	"time"
)

// TestCoalescerGather: after a send, a run waits for the callers it answered to publish again
// only while a partial batch is pending, and no longer than the batch takes to fill.
func TestCoalescerGather(t *testing.T) {
	newC := func(pending int) *coalescer {
		c := &coalescer{company: make(chan struct{}, 1)}
		for range pending {
			c.pending = append(c.pending, &coalesced{})
		}
		return c
	}
	timed := func(c *coalescer) time.Duration {
		start := time.Now()
		c.gather()
		return time.Since(start)
	}

	// Nothing pending, or a full batch: the run goes on at once (a caller alone never waits).
	// Returning without waiting leaves a signal sitting in company untouched.
	for _, n := range []int{0, maxMessagesPerRequest} {
		c := newC(n)
		c.company <- struct{}{}
		c.gather()
		if len(c.company) != 1 {
			t.Fatalf("gather with %d pending waited for company", n)
		}
	}

	// A partial batch that fills: gather returns once it is full.
	c := newC(6)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.gather()
	}()
	for range 4 {
		c.mu.Lock()
		c.pending = append(c.pending, &coalesced{})
		c.mu.Unlock()
		select {
		case c.company <- struct{}{}:
		default:
		}
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("gather did not return once the batch was full")
	}

	// A partial batch nobody joins: gather gives up after gatherWait (with room for a busy
	// machine's timer).
	if d := timed(newC(6)); d < gatherWait || d > gatherWait+time.Second {
		t.Fatalf("gather with a partial batch nobody joins took %v, want about %v", d, gatherWait)
	}
}
