package kombu

import (
	"testing"
	"time"
)

func TestBackoffTableDelay(t *testing.T) {
	p := newBackoffTable(map[int]int{1: 10, 2: 20, 3: 40, 4: 80, 5: 320, 6: 640}, []string{"proj.tasks.add"})
	cases := []struct {
		task  string
		count int
		want  int
	}{
		{"proj.tasks.add", 1, 10},
		{"proj.tasks.add", 2, 20},
		{"proj.tasks.add", 3, 40},
		{"proj.tasks.add", 6, 640},
		{"proj.tasks.add", 7, 640},   // past the table: the largest key below
		{"proj.tasks.add", 100, 640}, // likewise
		{"proj.tasks.add", 0, 0},     // no receive count known
		{"proj.tasks.other", 2, 0},   // task not listed
		{"", 2, 0},                   // not a task
	}
	for _, c := range cases {
		if got := p.Delay(c.task, c.count); got != c.want {
			t.Errorf("Delay(%q, %d) = %d, want %d", c.task, c.count, got, c.want)
		}
	}

	all := newBackoffTable(map[int]int{2: 20, 4: 80}, nil)
	for count, want := range map[int]int{1: 0, 2: 20, 3: 20, 4: 80, 9: 80} {
		if got := all.Delay("anything", count); got != want {
			t.Errorf("empty task list: Delay(%d) = %d, want %d", count, got, want)
		}
	}
	var none *backoffTable
	if got := none.Delay("x", 3); got != 0 {
		t.Errorf("nil policy: Delay = %d, want 0", got)
	}
	if newBackoffTable(nil, []string{"x"}) != nil {
		t.Error("an empty table must give a nil policy")
	}
}

func TestNackBackoffGrowsWithReceiveCount(t *testing.T) {
	b := nackBackoff{immediate: 3, initial: time.Second, max: 5 * time.Minute}
	want := map[int]int{1: 0, 2: 0, 3: 0, 4: 1, 5: 2, 6: 4, 7: 8, 8: 16, 12: 256, 13: 300, 100: 300, 1 << 20: 300}
	for rc, w := range want {
		if got := b.delay(rc); got != w {
			t.Errorf("delay(%d) = %d s, want %d s", rc, got, w)
		}
	}
	// A failing message costs at most one receive and one visibility change per delay: after
	// its first 10 s, that is well under one request per second.
	var elapsed, requests int
	for rc := 1; elapsed < 3600; rc++ {
		d := b.delay(rc)
		if elapsed >= 10 {
			requests += 2
		}
		elapsed += d
	}
	if rate := float64(requests) / float64(elapsed-10); rate > 1 {
		t.Errorf("a failing message costs %.2f requests/s after its first 10 s", rate)
	}
}

func TestNackBackoffEdges(t *testing.T) {
	if got := (nackBackoff{disabled: true, immediate: 3, initial: time.Second, max: time.Minute}).delay(50); got != 0 {
		t.Errorf("disabled backoff delays %d s", got)
	}
	// No immediate redeliveries, sub-second initial delays round up to SQS's whole seconds.
	if got := (nackBackoff{immediate: -1, initial: 100 * time.Millisecond, max: time.Minute}).delay(1); got != 1 {
		t.Errorf("delay(1) with a negative immediate count = %d s, want 1", got)
	}
	if got := (nackBackoff{immediate: 0, initial: 3 * time.Second, max: 10 * time.Second}).delay(4); got != 10 {
		t.Errorf("capped delay = %d s, want 10", got)
	}
}

func TestNackDelayPrefersPolicy(t *testing.T) {
	def := nackBackoff{immediate: 3, initial: time.Second, max: 5 * time.Minute}
	p := newBackoffTable(map[int]int{2: 10, 4: 40}, []string{"proj.tasks.add"})
	cases := []struct {
		task string
		rc   int
		want int
	}{
		{"proj.tasks.add", 1, 0},  // below the table: default (immediate)
		{"proj.tasks.add", 2, 10}, // table
		{"proj.tasks.add", 3, 10},
		{"proj.tasks.add", 9, 40},
		{"proj.tasks.other", 9, 32}, // not a backoff task: default
		{"", 5, 2},
	}
	for _, c := range cases {
		if got := nackDelay(p, def, c.task, c.rc); got != c.want {
			t.Errorf("nackDelay(%q, %d) = %d, want %d", c.task, c.rc, got, c.want)
		}
	}
	if got := nackDelay(nil, def, "x", 6); got != 4 {
		t.Errorf("nackDelay without policy = %d, want 4", got)
	}
}
