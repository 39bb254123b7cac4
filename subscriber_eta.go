package kombu

import (
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/watermill-kombu/watermill-kombu/internal/pywire"
)

// etaHoldLimit is how close to its eta a task is held by the subscription instead of being
// made invisible.
const etaHoldLimit = 1500 * time.Millisecond

// etaVisibilityLimit is the longest deferral, in seconds: SQS's largest visibility timeout
// (12 h) less a minute.
const etaVisibilityLimit = maxVisibilityTimeout/time.Second - 60

// deferUntilETA keeps a Celery task whose eta lies ahead from the handler. It is made
// invisible until exactly its eta: visibility timeouts are whole seconds, so the fraction of a
// second is waited first (the heartbeat keeps the message invisible meanwhile, and delivery of
// other messages goes on). A task less than etaHoldLimit from its eta is held here until then.
// It reports whether the message was not handed over.
func (sub *subscription) deferUntilETA(in *inbound, msg *message.Message) bool {
	eta := msg.Metadata.Get("eta")
	if eta == "" || eta == "null" {
		return false
	}
	t, err := pywire.ParseTime(eta, true)
	if err != nil {
		return false
	}
	wait := time.Until(t)
	if wait <= 0 {
		return false
	}
	if wait <= etaHoldLimit {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case <-timer.C:
			return false
		case <-sub.stop:
		}
		sub.requeue([]*held{&in.held})
		return true
	}
	// Visibility timeouts are whole seconds: the fraction of a second is waited out first.
	// An eta beyond what one timeout covers is made invisible at once, for as long as SQS
	// allows; the task comes back then and is deferred again.
	secs, fraction := wait/time.Second, wait%time.Second
	if secs > etaVisibilityLimit {
		secs, fraction = etaVisibilityLimit, 0
	}
	sub.logger.Debug("Deferring task until its eta", watermill.LogFields{"message_uuid": msg.UUID, "eta": eta, "seconds": int(secs)})
	sub.etaMu.Lock()
	defer sub.etaMu.Unlock()
	if sub.etaTimers == nil {
		sub.etaTimers = map[*held]etaDeferral{}
	}
	sub.etaTimers[&in.held] = etaDeferral{eta: t, timer: time.AfterFunc(fraction, func() {
		// Settled with etaMu held: once flushETATimers has the lock, every deferral is either
		// in its map or queued to the acker, none on its way to a closed one.
		sub.etaMu.Lock()
		defer sub.etaMu.Unlock()
		if _, pending := sub.etaTimers[&in.held]; pending {
			delete(sub.etaTimers, &in.held)
			if sub.s.etaSettling != nil {
				sub.s.etaSettling()
			}
			sub.s.acks.settleAsync(&in.held, int32(secs))
		}
	})}
	return true
}

// flushETATimers settles at once the deferrals still waiting for their fraction of a second,
// so that none is left to an acker that has stopped.
func (sub *subscription) flushETATimers() {
	sub.etaMu.Lock()
	timers := sub.etaTimers
	sub.etaTimers = nil
	sub.etaMu.Unlock()
	var waits []<-chan struct{}
	for h, d := range timers {
		d.timer.Stop()
		// Rounded up: never visible before its eta.
		secs := min((max(time.Until(d.eta), 0)+time.Second-1)/time.Second, etaVisibilityLimit)
		waits = append(waits, sub.s.acks.settle(h, int32(secs)))
	}
	for _, w := range waits {
		select {
		case <-w:
		case <-sub.calls.Done():
			return
		}
	}
}
