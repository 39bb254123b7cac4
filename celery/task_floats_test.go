package celery

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	kombu "github.com/watermill-kombu/watermill-kombu"
)

// TestPythonFloatArguments: a Celery client sends float('nan') and the infinities as the bare
// words NaN, Infinity and -Infinity (json.dumps's allow_nan), which Celery's worker reads.
// The Go worker reads the task too (it was rejected as ErrInvalidTask and Nacked until it
// was dead-lettered): the floats reach the task function, DecodeArgs and RegisterFunc; a
// retry sends them as Celery wrote them; and one nested where encoding/json cannot decode it
// fails the task with a TypeError naming the argument, stored like any failure.
func TestPythonFloatArguments(t *testing.T) {
	pyFloat := func(s string) map[string]any { return map[string]any{"__float__": s} }
	bodies := celerySendTask(t, []map[string]any{
		{"args": []any{pyFloat("nan"), pyFloat("inf"), pyFloat("-inf"), "NaN"}, "kwargs": map[string]any{"x": pyFloat("nan")}},
		{"args": []any{[]any{pyFloat("nan")}}},
	})
	receive := func(body string) *Task {
		t.Helper()
		msg, err := kombu.EnvelopeMarshaler{}.Unmarshal("celery", &types.Message{
			Body: aws.String(body), MessageId: aws.String("m-1"), ReceiptHandle: aws.String("r-1")})
		if err != nil {
			t.Fatal(err)
		}
		task, err := TaskFromMessage(msg)
		if err != nil {
			t.Fatalf("TaskFromMessage: %v", err)
		}
		return task
	}

	task := receive(bodies[0])
	if got := string(task.RawArgs); got != `[NaN, Infinity, -Infinity, "NaN"]` {
		t.Errorf("RawArgs %s, as Celery wrote them", got)
	}
	if len(task.Args) != 4 || !isNaN(task.Args[0]) || task.Args[1] != math.Inf(1) || task.Args[2] != math.Inf(-1) || task.Args[3] != "NaN" {
		t.Errorf("Args %#v", task.Args)
	}
	if !isNaN(task.Kwargs["x"]) {
		t.Errorf("Kwargs %#v", task.Kwargs)
	}
	var a, b float64
	var c any
	var d string
	if err := task.DecodeArgs(&a, &b, &c, &d); err != nil || !math.IsNaN(a) || b != math.Inf(1) || c != math.Inf(-1) || d != "NaN" {
		t.Errorf("DecodeArgs: %v %v %v %v %q", err, a, b, c, d)
	}
	if vs, err := task.ArgValues(); err != nil || len(vs) != 4 || string(vs[0]) != "NaN" || string(vs[2]) != "-Infinity" {
		t.Errorf("ArgValues: %v %q", err, vs)
	}
	if kw, err := task.KwargValues(); err != nil || string(kw["x"]) != "NaN" {
		t.Errorf("KwargValues: %v %q", err, kw)
	}

	// The worker runs it, and a retry sends the words again.
	pub := &keptMessages{}
	res := &storedResults{}
	w, err := NewWorker(WorkerConfig{Publisher: pub, Results: res}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	type params struct {
		A, B float64
		C    any
		D    string
		X    float64
	}
	var got params
	RegisterFunc(w, "proj.tasks.remote", func(_ context.Context, p params) (any, error) {
		got = p
		return nil, Retry(0, nil)
	})
	msg, err := task.Message()
	if err != nil {
		t.Fatalf("Message: %v", err)
	}
	msg.SetContext(context.Background())
	if err := w.Handle(msg); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(got.A) || got.B != math.Inf(1) || got.C != math.Inf(-1) || got.D != "NaN" || !math.IsNaN(got.X) {
		t.Errorf("RegisterFunc got %+v", got)
	}
	if len(pub.msgs) != 1 || !strings.HasPrefix(string(pub.msgs[0].Payload), `[[NaN, Infinity, -Infinity, "NaN"], {"x": NaN}, `) {
		t.Fatalf("retry %d messages", len(pub.msgs))
	}

	// A NaN inside a list fails the task visibly.
	RegisterFunc(w, "proj.tasks.remote", func(_ context.Context, xs []float64) (any, error) { return nil, nil })
	nested := receive(bodies[1])
	msg, err = nested.Message()
	if err != nil {
		t.Fatal(err)
	}
	msg.SetContext(context.Background())
	if err := w.Handle(msg); err != nil {
		t.Fatal(err)
	}
	r := res.last(nested.ID)
	if r == nil || r.Status != StateFailure {
		t.Fatalf("stored %+v", r)
	}
	if b, _ := json.Marshal(r.Result); !strings.Contains(string(b), "TypeError") || !strings.Contains(string(b), "NaN") {
		t.Errorf("failure %s", b)
	}
}

func isNaN(v any) bool {
	f, ok := v.(float64)
	return ok && math.IsNaN(f)
}

// storedResults is a ResultBackend in memory.
type storedResults struct{ results map[string]TaskResult }

func (s *storedResults) Store(_ context.Context, r TaskResult) error {
	if s.results == nil {
		s.results = map[string]TaskResult{}
	}
	s.results[r.TaskID] = r
	return nil
}

func (s *storedResults) Get(_ context.Context, id string) (*TaskResult, error) {
	if r, ok := s.results[id]; ok {
		return &r, nil
	}
	return nil, ErrResultNotFound
}

func (s *storedResults) last(id string) *TaskResult {
	r, _ := s.Get(context.Background(), id)
	return r
}
