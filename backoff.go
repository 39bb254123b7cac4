package kombu

import (
	"fmt"
	"sort"
	"time"
)

// backoffTable is a backoff policy (SubscriberConfig.BackoffPolicy and BackoffTasks, or a
// predefined queue's) ready to answer: the delay of a Nacked message from its task name and
// receive count.
type backoffTable struct {
	counts  []int // sorted receive counts
	seconds map[int]int
	tasks   map[string]struct{}
}

// newBackoffTable builds a table from a receive-count → seconds table and the task names it
// applies to (all messages when tasks is empty). It returns nil for an empty table.
func newBackoffTable(table map[int]int, tasks []string) *backoffTable {
	if len(table) == 0 {
		return nil
	}
	p := &backoffTable{seconds: make(map[int]int, len(table))}
	for count, secs := range table {
		p.counts = append(p.counts, count)
		p.seconds[count] = secs
	}
	sort.Ints(p.counts)
	if len(tasks) > 0 {
		p.tasks = make(map[string]struct{}, len(tasks))
		for _, t := range tasks {
			p.tasks[t] = struct{}{}
		}
	}
	return p
}

// Delay returns the visibility timeout in seconds for a message of the given task, Nacked on
// its receiveCount-th delivery. A nil policy returns 0.
func (p *backoffTable) Delay(task string, receiveCount int) int {
	if p == nil || !p.AppliesTo(task) {
		return 0
	}
	i := sort.SearchInts(p.counts, receiveCount+1) - 1 // largest key <= receiveCount
	if i < 0 {
		return 0
	}
	return p.seconds[p.counts[i]]
}

// AppliesTo reports whether the policy covers messages of this task.
func (p *backoffTable) AppliesTo(task string) bool {
	if p == nil {
		return false
	}
	if p.tasks == nil {
		return true
	}
	_, ok := p.tasks[task]
	return ok
}

// validateBackoffPolicy checks a receive-count → seconds table.
func validateBackoffPolicy(p map[int]int) error {
	for _, count := range sortedKeys(p) {
		secs := p[count]
		if count < 1 {
			return fmt.Errorf("receive counts must be at least 1, got %d", count)
		}
		if secs < 0 || secs > 43200 {
			return fmt.Errorf("seconds must be between 0 and 43200, got %d for receive count %d", secs, count)
		}
	}
	return nil
}

// Defaults of the backoff for Nacked messages no backoff policy entry covers.
const (
	defaultNackBackoffImmediate = 3
	defaultNackBackoffInitial   = time.Second
	defaultNackBackoffMax       = 5 * time.Minute
)

// nackBackoff is the delay of a Nacked message that no backoff policy entry covers: none for
// the first `immediate` receives, then initial, doubled with each receive, up to max.
type nackBackoff struct {
	disabled     bool
	immediate    int
	initial, max time.Duration
}

// delay returns the visibility timeout in whole seconds for a message Nacked on its
// receiveCount-th delivery.
func (b nackBackoff) delay(receiveCount int) int {
	immediate := max(b.immediate, 0)
	if b.disabled || receiveCount <= immediate {
		return 0
	}
	d := b.initial
	for i := immediate + 1; i < receiveCount && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	secs := int((d + time.Second - 1) / time.Second)
	return max(secs, 1)
}

// nackDelay is the visibility timeout in seconds of a Nacked message: the queue's
// backoff policy where it has an entry for the task and receive count, else the default backoff.
func nackDelay(p *backoffTable, def nackBackoff, task string, receiveCount int) int {
	if p.AppliesTo(task) {
		i := sort.SearchInts(p.counts, receiveCount+1) - 1
		if i >= 0 {
			return p.seconds[p.counts[i]]
		}
	}
	return def.delay(receiveCount)
}
