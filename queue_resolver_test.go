package kombu

import (
	"testing"
)

// A caller told that its queue is gone forgets it while another caller, told the same, is
// already looking the queue up again: forget must leave that entry alone, and not read it
// before it is ready (go test -race caught the read).
func TestForgetKeepsALookupUnderWay(t *testing.T) {
	r := newQueueResolver(Config{}, nil, nil)
	old := &queue{name: "q"}
	fresh := &queue{name: "q"}
	e := &queueEntry{ready: make(chan struct{})}
	r.queues["q"] = e
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.q = fresh // what resolve does, without the resolver's lock, before it closes ready
		close(e.ready)
	}()
	r.forget(old)
	<-done
	if r.queues["q"] != e {
		t.Fatal("forget dropped the entry of a lookup under way")
	}
	r.forget(fresh)
	if _, ok := r.queues["q"]; ok {
		t.Fatal("forget kept the entry of the queue it was told is gone")
	}
}
