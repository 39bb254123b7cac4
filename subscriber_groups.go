package kombu

import (
	"sync"
	"sync/atomic"
)

// receiveBatch is what one ReceiveMessage brought. On a FIFO queue SQS hands out a message
// group to one receive at a time (no more of its messages while one is in flight), so the
// messages of a group that must go back after a Nack are those of the same receive.
type receiveBatch struct {
	// returned holds the groups whose messages of this receive go back to the queue: one of
	// them was nacked (or deferred, or given back), so the later ones must not overtake it.
	// Guarded by groupGate.mu.
	returned map[string]bool
}

// groupGate keeps the messages of one FIFO MessageGroupId strictly one after the other while
// different groups are handled concurrently. A group is busy while one of its messages is
// handed out; the group's next messages wait behind it, outside the prefetch buffer, and are
// handed out in order, each once the previous one was acked. When a message is nacked (or
// deferred, or given back at Close), the group's waiting messages go back to the queue with it:
// SQS then delivers the group again from that message on, in order.
type groupGate struct {
	mu      sync.Mutex
	busy    map[string][]*inbound // group -> its waiting messages, in order; present while busy
	closed  bool
	waiting atomic.Int64 // messages waiting behind their group, counted against the prefetch
}

func newGroupGate() *groupGate { return &groupGate{busy: map[string][]*inbound{}} }

// verdict is what to do with a message taken from the prefetch buffer.
type verdict int

const (
	handOut    verdict = iota // its group was free: it is now busy with this message
	waitBehind                // parked behind the group's message in flight
	giveBack                  // goes back to the queue (a group whose earlier message went back)
)

// admit decides for a message taken from the buffer. With canWait false (the late hand-out of
// a stopping subscription) a message of a busy group goes back instead of waiting.
func (g *groupGate) admit(in *inbound, canWait bool) verdict {
	g.mu.Lock()
	defer g.mu.Unlock()
	if in.rx != nil && in.rx.returned[in.group] {
		return giveBack
	}
	if waiting, busy := g.busy[in.group]; busy {
		if !canWait || g.closed {
			// The group's later messages of this receive must go back too, even once the
			// group is free again: none may overtake this one.
			g.markReturned(in)
			return giveBack
		}
		g.busy[in.group] = append(waiting, in)
		g.waiting.Add(1)
		return waitBehind
	}
	g.busy[in.group] = nil
	return handOut
}

// acked frees the group of an acked message, or hands back its next waiting message, which
// is now the group's message in flight. After close nothing is handed on.
func (g *groupGate) acked(in *inbound) *inbound {
	g.mu.Lock()
	defer g.mu.Unlock()
	waiting := g.busy[in.group]
	if len(waiting) == 0 || g.closed {
		delete(g.busy, in.group)
		return nil
	}
	next := waiting[0]
	waiting[0] = nil
	g.busy[in.group] = waiting[1:]
	g.waiting.Add(-1)
	return next
}

// failed frees the group of a message that went back to the queue and returns the group's
// waiting messages, which must go back too. Messages of the group from the same receive that
// are still in the buffer will go back when they come out of it.
func (g *groupGate) failed(in *inbound) []*inbound {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.markReturned(in)
	waiting := g.busy[in.group]
	delete(g.busy, in.group)
	g.waiting.Add(-int64(len(waiting)))
	return waiting
}

// close stops handing on, and returns every waiting message (they go back to the queue).
func (g *groupGate) close() []*inbound {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	var all []*inbound
	for group, waiting := range g.busy {
		all = append(all, waiting...)
		g.busy[group] = nil
	}
	g.waiting.Add(-int64(len(all)))
	return all
}

// markReturned records that in went back to the queue, so that the later messages of its
// group from the same receive go back as well. Called with mu held.
func (g *groupGate) markReturned(in *inbound) {
	if in.rx == nil {
		return
	}
	if in.rx.returned == nil {
		in.rx.returned = map[string]bool{}
	}
	in.rx.returned[in.group] = true
}
