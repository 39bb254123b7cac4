package kombu

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestBackoffPolicyDelay(t *testing.T) {
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

func TestSplitBatches(t *testing.T) {
	sizes := make([]int, 25)
	for i := range sizes {
		sizes[i] = 100
	}
	got := splitBatches(sizes, 1000)
	want := [][2]int{{0, 10}, {10, 20}, {20, 25}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("by count: %v, want %v", got, want)
	}
	got = splitBatches([]int{400, 400, 400, 1000, 1}, 1000)
	want = [][2]int{{0, 2}, {2, 3}, {3, 4}, {4, 5}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("by size: %v, want %v", got, want)
	}
}

func TestConfigValidateNamesFields(t *testing.T) {
	c := SubscriberConfig{
		Config: Config{
			VisibilityTimeout: 50000 * time.Second,
			StsTokenTimeout:   100 * time.Second,
			AccessKeyID:       "AKIDSECRETLOOKING",
			PredefinedQueues: map[string]PredefinedQueue{
				"q.fifo": {URL: "https://sqs.us-east-1.amazonaws.com/1/q"},
				"other":  {},
			},
		},
		WaitTimeSeconds: 21,
		PrefetchCount:   -1,
		BackoffPolicy:   map[int]int{0: 5},
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("expected errors")
	}
	if !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("errors.Is(err, ErrInvalidConfig) is false for %v", err)
	}
	for _, field := range []string{"VisibilityTimeout", "StsTokenTimeout", "AccessKeyID/SecretAccessKey", "PredefinedQueues[q.fifo].URL",
		"PredefinedQueues[other].URL", "WaitTimeSeconds", "PrefetchCount", "BackoffPolicy", "between 0 and 20"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error does not name %q:\n%v", field, err)
		}
	}
	if strings.Contains(err.Error(), "AKIDSECRETLOOKING") {
		t.Error("error shows a credential")
	}
}

func TestConfigStringHidesCredentials(t *testing.T) {
	c := Config{
		AccessKeyID: "AKIAEXAMPLEKEY", SecretAccessKey: "very/secret+key", SessionToken: "tok3n",
		PredefinedQueues: map[string]PredefinedQueue{"q": {URL: "http://x/1/q", AccessKeyID: "AKIAQUEUEKEY", SecretAccessKey: "queue-secret"}},
	}
	for _, s := range []string{c.String(), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), fmt.Sprintf("%v %#v", c.PredefinedQueues["q"], c.PredefinedQueues["q"])} {
		for _, secret := range []string{"AKIAEXAMPLEKEY", "very/secret+key", "tok3n", "AKIAQUEUEKEY", "queue-secret"} {
			if strings.Contains(s, secret) {
				t.Errorf("%q appears in %q", secret, s)
			}
		}
	}
}
