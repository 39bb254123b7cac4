package celery

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	kombu "github.com/watermill-kombu/watermill-kombu"
)

// keptMessages is a message.Publisher that keeps the messages it is given, as they are.
type keptMessages struct {
	mu   sync.Mutex
	msgs []*message.Message
}

func (p *keptMessages) Publish(_ string, msgs ...*message.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, msgs...)
	return nil
}

func (p *keptMessages) Close() error { return nil }

// timeFields returns the eta and expires headers and the expiration property (the message
// TTL) of msg as an SQS message carries them.
func timeFields(t *testing.T, env *kombu.Envelope) [3]string {
	t.Helper()
	var h map[string]json.RawMessage
	if err := json.Unmarshal(env.Headers, &h); err != nil {
		t.Fatal(err)
	}
	return [3]string{string(h["eta"]), string(h["expires"]), env.Properties.Expiration}
}

// TestWorkerTimesMatchCelery has the worker retry a task and send its link, with the
// worker's clock in a zone other than UTC, and checks that the eta, expires and message TTL
// it writes are those Celery's send_task writes with the same options and clock
// (interop/send_task_cases.py): no eta at all for a zero countdown ("if countdown:"), times
// in UTC (the app timezone's default), and the TTL counted from the clock expires is.
func TestWorkerTimesMatchCelery(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	expires := goldenNow.Add(90 * time.Second)
	link := func(options map[string]any) TaskOption {
		return WithLink(Signature{Task: "proj.tasks.remote", Options: options})
	}
	cases := []struct {
		name   string
		python map[string]any
		result error
		opts   []TaskOption
	}{
		{name: "retry_countdown_zero", result: Retry(0, nil), opts: []TaskOption{WithExpires(expires)},
			python: map[string]any{"options": map[string]any{"countdown": 0, "expires": pyDateTime(expires)}}},
		{name: "retry_countdown", result: Retry(1500*time.Millisecond, nil), opts: []TaskOption{WithExpires(expires)},
			python: map[string]any{"options": map[string]any{"countdown": 1.5, "expires": pyDateTime(expires)}}},
		{name: "link_countdown_zero", opts: []TaskOption{link(map[string]any{"countdown": 0, "expires": 30})},
			python: map[string]any{"options": map[string]any{"countdown": 0, "expires": 30}}},
		{name: "link_countdown", opts: []TaskOption{link(map[string]any{"countdown": 1.5, "expires": 30})},
			python: map[string]any{"options": map[string]any{"countdown": 1.5, "expires": 30}}},
	}
	in := make([]map[string]any, len(cases))
	for i, c := range cases {
		in[i] = c.python
	}
	bodies := celerySendTask(t, in)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pub := &keptMessages{}
			w, err := NewWorker(WorkerConfig{Publisher: pub}, watermill.NopLogger{})
			if err != nil {
				t.Fatal(err)
			}
			// A clock in another zone than UTC, as a machine's local time is. The TTL must be
			// counted from the same clock as expires.
			w.now = func() time.Time { return goldenNow.In(berlin) }
			w.Register("proj.tasks.remote", func(context.Context, *Task) (any, error) { return 1, c.result })
			msg, err := NewTask("proj.tasks.remote", nil, nil, append([]TaskOption{withClock(func() time.Time { return goldenNow })}, c.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			msg.SetContext(context.Background())
			if err := w.Handle(msg); err != nil {
				t.Fatal(err)
			}
			if len(pub.msgs) != 1 {
				t.Fatalf("%d messages sent, want 1", len(pub.msgs))
			}
			out, err := kombu.EnvelopeMarshaler{}.Marshal(kombu.Destination{Queue: "celery"}, pub.msgs[0])
			if err != nil {
				t.Fatal(err)
			}
			got, err := kombu.DecodeEnvelope(out.Body)
			if err != nil {
				t.Fatal(err)
			}
			want, err := kombu.DecodeEnvelope(bodies[i])
			if err != nil {
				t.Fatal(err)
			}
			if g, w := timeFields(t, got), timeFields(t, want); g != w {
				t.Errorf("eta, expires, TTL = %q, Celery writes %q", g, w)
			}
		})
	}
}
