package kombu_test

import (
	"bytes"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// goroutineSnapshot identifies the goroutines running when it was taken, but the one that
// took it (the test's own).
type goroutineSnapshot struct {
	running map[int]bool
	self    int
}

var (
	goroutineHeader = regexp.MustCompile(`^goroutine (\d+) `)
	goroutineParent = regexp.MustCompile(`created by .* in goroutine (\d+)`)
)

// goroutineStacks returns the stack of every goroutine by id, and the id of the goroutine that
// started each one (0 when unknown).
func goroutineStacks() (stacks map[int]string, parents map[int]int) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	stacks, parents = map[int]string{}, map[int]int{}
	for _, block := range bytes.Split(buf, []byte("\n\n")) {
		m := goroutineHeader.FindSubmatch(block)
		if m == nil {
			continue
		}
		id, _ := strconv.Atoi(string(m[1]))
		stacks[id] = string(block)
		if p := goroutineParent.FindSubmatch(block); p != nil {
			parents[id], _ = strconv.Atoi(string(p[1]))
		}
	}
	return stacks, parents
}

// snapshotGoroutines records the goroutines running now. Call it from the test's goroutine.
func snapshotGoroutines() goroutineSnapshot {
	stacks, _ := goroutineStacks()
	s := goroutineSnapshot{running: map[int]bool{}}
	for id := range stacks {
		s.running[id] = true
	}
	buf := make([]byte, 64)
	if m := goroutineHeader.FindSubmatch(buf[:runtime.Stack(buf, false)]); m != nil {
		s.self, _ = strconv.Atoi(string(m[1]))
	}
	return s
}

// requireNoNewGoroutines fails the test when, within 5 s, goroutines remain that were started
// after the snapshot by the test itself: goroutines started later by ones that were already
// running (another test's subscription still polling, say) are not this test's, and neither
// are the idle connections of HTTP clients (their stacks contain one of ignore).
func (before goroutineSnapshot) requireNoNewGoroutines(t *testing.T, ignore ...string) {
	t.Helper()
	var leaked []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		stacks, parents := goroutineStacks()
		// Old: started, directly or not, by a goroutine that ran before, other than the test's.
		old := func(id int) bool {
			for seen := 0; id != 0 && seen < 1000; seen++ {
				if id == before.self {
					return false
				}
				if before.running[id] {
					return true
				}
				id = parents[id]
			}
			return false
		}
		leaked = leaked[:0]
	next:
		for id, stack := range stacks {
			if id == before.self || old(id) {
				continue
			}
			for _, s := range ignore {
				if strings.Contains(stack, s) {
					continue next
				}
			}
			leaked = append(leaked, stack)
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(leaked) > 0 {
		t.Fatalf("%d goroutines left running:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
	}
}
