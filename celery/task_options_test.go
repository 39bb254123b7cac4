package celery

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// sendTaskCase is one call of Celery's app.send_task (interop/send_task_cases.py) and the
// NewTask options that must write the same SQS message.
type sendTaskCase struct {
	name string
	// Python is what send_task_cases.py reads: protocol, args, kwargs and send_task options.
	Python map[string]any
	args   []any
	kwargs map[string]any
	opts   []TaskOption
}

// advancingClock returns a clock that starts at start and moves on by step at each reading,
// as time.Now does between two calls.
func advancingClock(start time.Time, step time.Duration) TaskOption {
	var mu sync.Mutex
	next := start
	return withClock(func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now := next
		next = next.Add(step)
		return now
	})
}

func pyDateTime(t time.Time) map[string]any {
	return map[string]any{"__datetime__": t.Format("2006-01-02T15:04:05.999999-07:00:00")}
}

// TestNewTaskMatchesCelerySendTask has Celery's send_task, with its clock, task id, reply_to
// and origin pinned, write a task with each option NewTask offers, and checks that NewTask
// writes the same SQS message, byte for byte but for the delivery tag.
func TestNewTaskMatchesCelerySendTask(t *testing.T) {
	// A Go clock reads the machine's local time; Celery's app.now() is in its timezone
	// setting, UTC by default.
	berlin := time.FixedZone("CET", 3600)
	localClock := withClock(func() time.Time { return goldenNow.In(berlin) })
	lmt := time.FixedZone("LMT", 19*60+32) // Amsterdam's offset before 1937
	stamps := func(t *Task, _ *taskBuild) {
		t.StampedHeaders = []string{"stamp1"}
		t.Stamps = map[string]any{"stamp1": "value"}
	}
	cases := []sendTaskCase{
		{name: "plain", Python: map[string]any{"args": []any{1, "two"}, "kwargs": map[string]any{"k": nil}},
			args: []any{1, "two"}, kwargs: map[string]any{"k": nil}},
		{name: "countdown_zero", Python: map[string]any{"options": map[string]any{"countdown": 0}},
			opts: []TaskOption{WithCountdown(0)}},
		{name: "countdown_local_clock", Python: map[string]any{"options": map[string]any{"countdown": 1.5}},
			opts: []TaskOption{localClock, WithCountdown(1500 * time.Millisecond)}},
		{name: "expires_in_local_clock", Python: map[string]any{"options": map[string]any{"expires": 90}},
			opts: []TaskOption{localClock, WithExpiresIn(90 * time.Second)}},
		{name: "expires_in_running_clock", Python: map[string]any{"options": map[string]any{"expires": 60, "countdown": 5}},
			opts: []TaskOption{advancingClock(goldenNow, time.Microsecond), WithExpiresIn(time.Minute), WithCountdown(5 * time.Second)}},
		{name: "expires_past", Python: map[string]any{"options": map[string]any{"expires": pyDateTime(goldenNow.Add(-time.Hour))}},
			opts: []TaskOption{WithExpires(goldenNow.Add(-time.Hour))}},
		{name: "eta_offset_seconds", Python: map[string]any{"options": map[string]any{
			"eta": pyDateTime(time.Date(1930, 1, 2, 3, 4, 5, 6000, lmt))}},
			opts: []TaskOption{WithETA(time.Date(1930, 1, 2, 3, 4, 5, 6000, lmt))}},
		{name: "eta_other_zone", Python: map[string]any{"options": map[string]any{"eta": pyDateTime(goldenNow.In(berlin))}},
			opts: []TaskOption{WithETA(goldenNow.In(berlin))}},
		{name: "ignore_result_unset", Python: map[string]any{}},
		{name: "ignore_result", Python: map[string]any{"options": map[string]any{"ignore_result": true}},
			opts: []TaskOption{WithIgnoreResult()}},
		{name: "limits_retries_priority", Python: map[string]any{"options": map[string]any{
			"time_limit": 60, "soft_time_limit": 0.5, "retries": 4, "priority": 9, "shadow": "alias"}},
			opts: []TaskOption{WithTimeLimit(60, 0.5), WithRetryCount(4), WithPriority(9), WithShadow("alias")}},
		{name: "stamps", Python: map[string]any{"options": map[string]any{"stamped_headers": []string{"stamp1"}, "stamp1": "value"}},
			opts: []TaskOption{stamps}},
		{name: "v1_countdown_zero", Python: map[string]any{"protocol": 1, "options": map[string]any{"countdown": 0}},
			opts: []TaskOption{WithProtocol(1), WithCountdown(0)}},
		{name: "v1_local_clock", Python: map[string]any{"protocol": 1, "options": map[string]any{"countdown": 2, "expires": 30}},
			opts: []TaskOption{WithProtocol(1), localClock, WithCountdown(2 * time.Second), WithExpiresIn(30 * time.Second)}},
	}
	in := make([]map[string]any, len(cases))
	for i, c := range cases {
		in[i] = c.Python
	}
	bodies := celerySendTask(t, in)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := []TaskOption{WithTaskID(goldenTaskID(1)), WithReplyTo(goldenReplyTo), WithOrigin(goldenOrigin),
				withClock(func() time.Time { return goldenNow })}
			if proto, _ := c.Python["protocol"].(int); proto != 1 {
				opts = append(opts, pyLang)
			}
			msg, err := NewTask("proj.tasks.remote", c.args, c.kwargs, append(opts, c.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			sameEnvelope(t, msg, bodies[i])
		})
	}
}

// celerySendTask runs interop/send_task_cases.py on cases and returns the SQS bodies.
func celerySendTask(t *testing.T, cases []map[string]any) []string {
	t.Helper()
	stdin, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.Python(t), filepath.Join(testenv.RepoRoot(t), "interop", "send_task_cases.py"))
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("send_task_cases.py: %v\n%s", err, stderr.String())
	}
	var bodies []string
	if err := json.Unmarshal(out, &bodies); err != nil {
		t.Fatal(err)
	}
	if len(bodies) != len(cases) {
		t.Fatalf("%d bodies for %d cases", len(bodies), len(cases))
	}
	return bodies
}

// sameEnvelope checks that msg, published to the queue "celery", is the SQS body Celery
// wrote, but for the delivery tag (a fresh UUID on each publish).
func sameEnvelope(t *testing.T, msg *message.Message, celeryBody string) {
	t.Helper()
	out, err := kombu.EnvelopeMarshaler{}.Marshal(kombu.Destination{Queue: "celery"}, msg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := kombu.DecodeEnvelope(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	want, err := kombu.DecodeEnvelope(celeryBody)
	if err != nil {
		t.Fatal(err)
	}
	got.Properties.DeliveryTag = want.Properties.DeliveryTag
	if g, w := string(got.Headers), string(want.Headers); g != w {
		t.Errorf("headers differ from Celery's\n got %s\nwant %s", g, w)
	}
	if g, w := got.EncodeJSON(), want.EncodeJSON(); g != w {
		t.Errorf("envelope differs from Celery's\n got %s\nwant %s", g, w)
	}
	if string(got.Body) != string(want.Body) {
		t.Errorf("body differs from Celery's\n got %s\nwant %s", got.Body, want.Body)
	}
}
