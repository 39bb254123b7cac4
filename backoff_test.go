package kombu

import "testing"

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
