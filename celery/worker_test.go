package celery_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
)

// sentMessages is a message.Publisher that keeps what is published.
type sentMessages struct {
	mu   sync.Mutex
	sent []sentMessage
}

type sentMessage struct {
	topic string
	task  *celery.Task
}

func (p *sentMessages) Publish(topic string, msgs ...*message.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range msgs {
		t, err := celery.TaskFromMessage(m)
		if err != nil {
			return err
		}
		p.sent = append(p.sent, sentMessage{topic, t})
	}
	return nil
}

func (p *sentMessages) Close() error { return nil }

func (p *sentMessages) all() []sentMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]sentMessage(nil), p.sent...)
}

// memoryResults is a ResultBackend in memory.
type memoryResults struct {
	mu sync.Mutex
	m  map[string][]celery.TaskResult
}

func (b *memoryResults) Store(_ context.Context, r celery.TaskResult) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string][]celery.TaskResult{}
	}
	b.m[r.TaskID] = append(b.m[r.TaskID], r)
	return nil
}

func (b *memoryResults) Get(_ context.Context, id string) (*celery.TaskResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rs := b.m[id]
	if len(rs) == 0 {
		return nil, celery.ErrResultNotFound
	}
	r := rs[len(rs)-1]
	return &r, nil
}

func (b *memoryResults) states(id string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var s []string
	for _, r := range b.m[id] {
		s = append(s, r.Status)
	}
	return s
}

func newTestWorker(t *testing.T, cfg celery.WorkerConfig) (*celery.Worker, *sentMessages, *memoryResults) {
	t.Helper()
	pub, res := &sentMessages{}, &memoryResults{}
	cfg.Publisher = pub
	if cfg.Results == nil {
		cfg.Results = res
	}
	w, err := celery.NewWorker(cfg, watermill.NopLogger{})
	require.NoError(t, err)
	return w, pub, res
}

// received builds the message a worker receives on topic for a task.
func received(t *testing.T, topic, name string, args []any, kwargs map[string]any, opts ...celery.TaskOption) (*message.Message, string) {
	t.Helper()
	msg, err := celery.NewTask(name, args, kwargs, opts...)
	require.NoError(t, err)
	msg.SetContext(context.Background())
	msg.Metadata.Set(kombu.MetadataQueue, topic)
	return msg, msg.UUID
}

func sig(name string, args []any, options map[string]any) celery.Signature {
	return celery.Signature{Task: name, Args: args, Options: options}
}

func TestWorkerSuccessCallbacksAndChain(t *testing.T) {
	w, pub, res := newTestWorker(t, celery.WorkerConfig{DefaultQueue: "dflt", TaskQueues: map[string]string{"py.routed": "routed-q", "py.*": "py-q", "py.r*": "never"}})
	type args struct{ A, B int }
	celery.RegisterFunc(w, "go.add", func(_ context.Context, a args) (int, error) { return a.A + a.B, nil })

	immutable := sig("py.log", []any{"fixed"}, nil)
	immutable.Immutable = true
	msg, id := received(t, "in-q", "go.add", []any{2, 3}, nil,
		celery.WithLink(sig("py.notify", []any{"x"}, map[string]any{"queue": "notify-q"}), immutable))
	task, err := celery.TaskFromMessage(msg)
	require.NoError(t, err)
	// A chain of three more steps: last element first.
	task.Chain = []celery.Signature{
		sig("py.last", nil, nil),
		sig("py.routed", nil, nil),
		sig("go.next", []any{10}, map[string]any{"routing_key": "rk-q", "task_id": "next-id"}),
	}
	msg, err = task.Message()
	require.NoError(t, err)
	msg.SetContext(context.Background())

	require.NoError(t, w.Handle(msg))
	r, err := res.Get(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, celery.StateSuccess, r.Status)
	assert.JSONEq(t, `5`, string(r.Result.(json.RawMessage)))

	sent := pub.all()
	require.Len(t, sent, 3)
	// As Celery's worker, two links are sent as one group: its tuple is a child, as the next
	// step of the chain is.
	gid := sent[0].task.Group
	require.NotEmpty(t, gid, "the links are sent as a group")
	for i, m := range sent[:2] {
		assert.Equal(t, gid, m.task.Group)
		require.NotNil(t, m.task.GroupIndex)
		assert.Equal(t, i, *m.task.GroupIndex)
	}
	assert.Empty(t, sent[2].task.Group, "the chain's next step is not in the group")
	assert.Equal(t, []any{
		[]any{[]any{gid, nil}, []any{
			[]any{[]any{sent[0].task.ID, nil}, nil},
			[]any{[]any{sent[1].task.ID, nil}, nil},
		}},
		[]any{[]any{"next-id", nil}, nil},
	}, r.Children, "the sent tasks are the result's children")
	assert.Equal(t, "notify-q", sent[0].topic)
	assert.Equal(t, "py.notify", sent[0].task.Name)
	assert.JSONEq(t, `[5, "x"]`, string(sent[0].task.RawArgs), "the result comes first")
	assert.Equal(t, id, sent[0].task.ParentID)
	assert.Equal(t, id, sent[0].task.RootID)
	assert.Equal(t, "py-q", sent[1].topic, "the glob pattern")
	assert.JSONEq(t, `["fixed"]`, string(sent[1].task.RawArgs), "an immutable signature keeps its args")

	next := sent[2]
	assert.Equal(t, "rk-q", next.topic)
	assert.Equal(t, "go.next", next.task.Name)
	assert.Equal(t, "next-id", next.task.ID)
	assert.JSONEq(t, `[5, 10]`, string(next.task.RawArgs))
	require.Len(t, next.task.Chain, 2, "the next step carries the rest of the chain")
	assert.Equal(t, "py.last", next.task.Chain[0].Task)
	assert.Equal(t, "py.routed", next.task.Chain[1].Task)

	// The step after that goes to its TaskQueues queue.
	next.task.ID = "next-id"
	w.Register("go.next", func(context.Context, *celery.Task) (any, error) { return "ok", nil })
	m2, err := next.task.Message()
	require.NoError(t, err)
	m2.SetContext(context.Background())
	require.NoError(t, w.Handle(m2))
	sent = pub.all()
	require.Len(t, sent, 4)
	assert.Equal(t, "routed-q", sent[3].topic)
	assert.Equal(t, "py.routed", sent[3].task.Name)
	require.Len(t, sent[3].task.Chain, 1)
	assert.Equal(t, id, sent[3].task.RootID)
}

func TestWorkerChainSignatureAsLink(t *testing.T) {
	w, pub, _ := newTestWorker(t, celery.WorkerConfig{DefaultQueue: "dflt"})
	w.Register("go.t", func(context.Context, *celery.Task) (any, error) { return 7, nil })
	steps := []celery.Signature{sig("a.first", []any{1}, map[string]any{"queue": "qa"}), sig("a.second", nil, nil), sig("a.third", nil, nil)}
	link := celery.Signature{Task: "celery.chain", SubtaskType: "chain", Kwargs: map[string]any{"tasks": steps}}
	group := celery.Signature{Task: "celery.group", SubtaskType: "group", Kwargs: map[string]any{"tasks": steps}}
	msg, _ := received(t, "q", "go.t", nil, nil, celery.WithLink(link, group))
	require.NoError(t, w.Handle(msg))
	sent := pub.all()
	// As Celery's worker sends several links: the group link first, then the others.
	require.Len(t, sent, 4, "each task of the group, then the chain's first step")
	for i, m := range sent[:3] {
		assert.Equal(t, steps[i].Task, m.task.Name)
		assert.NotEmpty(t, m.task.Group, "a group member carries the group id")
		assert.Equal(t, sent[0].task.Group, m.task.Group)
		require.NotNil(t, m.task.GroupIndex)
		assert.Equal(t, i, *m.task.GroupIndex)
		assert.Equal(t, float64(7), mustFirstArg(t, m.task), "the result is prepended")
	}
	chainStart := sent[3]
	assert.Equal(t, "qa", sent[0].topic)
	assert.Equal(t, "qa", chainStart.topic)
	assert.Equal(t, "a.first", chainStart.task.Name)
	assert.JSONEq(t, `[7, 1]`, string(chainStart.task.RawArgs))
	require.Len(t, chainStart.task.Chain, 2)
	assert.Equal(t, "a.third", chainStart.task.Chain[0].Task, "last step first")
	assert.Equal(t, "a.second", chainStart.task.Chain[1].Task)
}

func mustFirstArg(t *testing.T, task *celery.Task) any {
	t.Helper()
	var args []any
	require.NoError(t, json.Unmarshal(task.RawArgs, &args))
	require.NotEmpty(t, args)
	return args[0]
}

func TestWorkerFailureSendsErrbacks(t *testing.T) {
	w, pub, res := newTestWorker(t, celery.WorkerConfig{})
	w.Register("go.fail", func(context.Context, *celery.Task) (any, error) { return nil, errors.New("it broke") })
	w.Register("go.value", func(context.Context, *celery.Task) (any, error) {
		return nil, celery.NewTaskError("builtins", "ValueError", "bad value")
	})
	msg, id := received(t, "q", "go.fail", nil, nil,
		celery.WithLinkError(sig("py.on_error", nil, map[string]any{"queue": "err-q"})), celery.WithLink(sig("py.never", nil, nil)))
	require.NoError(t, w.Handle(msg), "a failed task is acked")
	r, err := res.Get(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, celery.StateFailure, r.Status)
	assert.Equal(t, &celery.ExceptionInfo{Type: "Exception", Module: "builtins", Message: []any{"it broke"}}, r.Result)
	assert.Contains(t, r.Traceback, "it broke")
	sent := pub.all()
	require.Len(t, sent, 1, "errbacks only")
	assert.Equal(t, "err-q", sent[0].topic)
	assert.JSONEq(t, `["`+id+`"]`, string(sent[0].task.RawArgs), "errbacks get the failed task's id")

	msg, id = received(t, "q", "go.value", nil, nil)
	require.NoError(t, w.Handle(msg))
	r, err = res.Get(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, &celery.ExceptionInfo{Type: "ValueError", Module: "builtins", Message: []any{"bad value"}}, r.Result)
}

func TestWorkerRetry(t *testing.T) {
	w, pub, res := newTestWorker(t, celery.WorkerConfig{})
	cause := errors.New("try later")
	w.Register("go.flaky", func(context.Context, *celery.Task) (any, error) { return nil, celery.Retry(5*time.Second, cause) },
		celery.MaxRetries(2))

	msg, id := received(t, "work-q", "go.flaky", []any{"a"}, map[string]any{"k": 1},
		celery.WithLinkError(sig("py.on_error", nil, nil)), celery.WithExpiresIn(time.Hour))
	before := time.Now()
	require.NoError(t, w.Handle(msg))
	sent := pub.all()
	require.Len(t, sent, 1)
	again := sent[0]
	assert.Equal(t, "work-q", again.topic, "sent back to the queue it came from")
	assert.Equal(t, id, again.task.ID)
	assert.Equal(t, 1, again.task.Retries)
	// As Celery's Task.retry, which sends the retry from within the task: a task without a
	// parent becomes its retry's parent, and the root stays the task.
	assert.Equal(t, id, again.task.ParentID)
	assert.Equal(t, id, again.task.RootID)
	require.NotNil(t, again.task.ETA)
	assert.WithinDuration(t, before.Add(5*time.Second), *again.task.ETA, time.Second)
	assert.NotNil(t, again.task.Expires)
	assert.JSONEq(t, `["a"]`, string(again.task.RawArgs))
	assert.JSONEq(t, `{"k": 1}`, string(again.task.RawKwargs))
	assert.Len(t, again.task.Errbacks, 1)
	assert.Equal(t, []string{celery.StateRetry}, res.states(id))

	// A task with a parent and a root keeps them.
	msg, _ = received(t, "work-q", "go.flaky", nil, nil, celery.WithParent("p-0", "r-0"))
	require.NoError(t, w.Handle(msg))
	sent = pub.all()
	require.Len(t, sent, 2)
	assert.Equal(t, [2]string{"p-0", "r-0"}, [2]string{sent[1].task.ParentID, sent[1].task.RootID})
	pub.mu.Lock()
	pub.sent = pub.sent[:1]
	pub.mu.Unlock()

	// Retried twice already: the third retry fails the task with the cause.
	msg, id = received(t, "work-q", "go.flaky", nil, nil, celery.WithRetryCount(2),
		celery.WithLinkError(sig("py.on_error", nil, nil)))
	require.NoError(t, w.Handle(msg))
	r, err := res.Get(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, celery.StateFailure, r.Status)
	assert.Equal(t, []any{"try later"}, r.Result.(*celery.ExceptionInfo).Message)
	sent = pub.all()
	require.Len(t, sent, 2)
	assert.Equal(t, "py.on_error", sent[1].task.Name, "errbacks are sent once the retries are used up")
}

// TestWorkerRetryState: the RETRY state is stored as Celery 5.7's worker stores it. For a task
// that runs self.retry(countdown=0.5) Celery stores
//
//	{"status": "RETRY", "result": null, "traceback": "...celery.exceptions.Retry: Retry in 0.5s\n", ...}
//
// and for self.retry(countdown=0.5, exc=KeyError("k")) the result is the KeyError and the
// traceback ends with "celery.exceptions.Retry: Retry in 0.5s: KeyError('k')" (read from
// Redis after a Celery worker ran the two tasks).
func TestWorkerRetryState(t *testing.T) {
	w, _, res := newTestWorker(t, celery.WorkerConfig{})
	w.Register("go.bare", func(context.Context, *celery.Task) (any, error) { return nil, celery.Retry(500*time.Millisecond, nil) })
	w.Register("go.cause", func(context.Context, *celery.Task) (any, error) {
		return nil, celery.Retry(500*time.Millisecond, celery.NewTaskError("builtins", "KeyError", "k"))
	})
	lastLine := func(tb string) string {
		lines := strings.Split(strings.TrimRight(tb, "\n"), "\n")
		return lines[len(lines)-1]
	}

	msg, id := received(t, "q", "go.bare", nil, nil)
	require.NoError(t, w.Handle(msg))
	r, err := res.Get(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, celery.StateRetry, r.Status)
	assert.Nil(t, r.Result, "no cause: the result is null")
	doc, err := json.Marshal(r)
	require.NoError(t, err)
	assert.Contains(t, string(doc), `"result":null`)
	assert.Equal(t, "celery.exceptions.Retry: Retry in 0.5s", lastLine(r.Traceback))

	msg, id = received(t, "q", "go.cause", nil, nil)
	require.NoError(t, w.Handle(msg))
	r, err = res.Get(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, celery.StateRetry, r.Status)
	assert.Equal(t, &celery.ExceptionInfo{Type: "KeyError", Module: "builtins", Message: []any{"k"}}, r.Result)
	assert.Equal(t, "celery.exceptions.Retry: Retry in 0.5s: KeyError('k')", lastLine(r.Traceback))
}

// TestWorkerMaxRetriesExceededMessage: a task retried once too often without a cause fails
// with Celery 5.7's MaxRetriesExceededError message, which names the arguments. The expected
// texts are what a Celery worker stored for a task with max_retries=0 that runs
// self.retry(countdown=0.5), called with these arguments.
func TestWorkerMaxRetriesExceededMessage(t *testing.T) {
	w, _, res := newTestWorker(t, celery.WorkerConfig{})
	w.Register("x.retryargs", func(context.Context, *celery.Task) (any, error) { return nil, celery.Retry(500*time.Millisecond, nil) },
		celery.MaxRetries(0))
	for _, c := range []struct {
		args, kwargs string
		want         string
	}{
		{`[1, "a"]`, `{"k": 1}`, "args:(1, 'a') kwargs:{'k': 1}"},
		{`[7]`, `{}`, "args:(7,) kwargs:{}"},
		{`[]`, `{"x": [1, 2.5, null, true]}`, "args:() kwargs:{'x': [1, 2.5, None, True]}"},
	} {
		msg, id := received(t, "q", "x.retryargs", nil, nil,
			celery.WithRawArgs(json.RawMessage(c.args)), celery.WithRawKwargs(json.RawMessage(c.kwargs)))
		require.NoError(t, w.Handle(msg))
		r, err := res.Get(context.Background(), id)
		require.NoError(t, err)
		assert.Equal(t, celery.StateFailure, r.Status)
		assert.Equal(t, &celery.ExceptionInfo{Type: "MaxRetriesExceededError", Module: "celery.exceptions",
			Message: []any{"Can't retry x.retryargs[" + id + "] " + c.want}}, r.Result)
	}
}

func TestWorkerExpiredTaskIsRevoked(t *testing.T) {
	w, pub, res := newTestWorker(t, celery.WorkerConfig{})
	ran := false
	w.Register("go.t", func(context.Context, *celery.Task) (any, error) { ran = true; return nil, nil })
	msg, id := received(t, "q", "go.t", nil, nil, celery.WithExpires(time.Now().Add(-time.Second)),
		celery.WithLink(sig("py.never", nil, nil)), celery.WithLinkError(sig("py.never", nil, nil)))
	require.NoError(t, w.Handle(msg))
	assert.False(t, ran)
	r, err := res.Get(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, celery.StateRevoked, r.Status)
	assert.Equal(t, &celery.ExceptionInfo{Type: "TaskRevokedError", Module: "celery.exceptions", Message: []any{"expired"}}, r.Result)
	assert.Empty(t, pub.all())
}

func TestWorkerNeverRunsEarly(t *testing.T) {
	w, _, _ := newTestWorker(t, celery.WorkerConfig{MaxETAWait: 2 * time.Second})
	var ranAt time.Time
	w.Register("go.t", func(context.Context, *celery.Task) (any, error) { ranAt = time.Now(); return nil, nil })
	eta := time.Now().Add(300 * time.Millisecond)
	msg, _ := received(t, "q", "go.t", nil, nil, celery.WithETA(eta))
	require.NoError(t, w.Handle(msg))
	assert.False(t, ranAt.Before(eta), "ran %v before its eta", eta.Sub(ranAt))

	ranAt = time.Time{}
	msg, _ = received(t, "q", "go.t", nil, nil, celery.WithCountdown(time.Hour))
	require.Error(t, w.Handle(msg), "a task due later is Nacked")
	assert.True(t, ranAt.IsZero())
}

func TestWorkerUnknownTask(t *testing.T) {
	// As Celery: a NotRegistered failure is stored and the message acked (deleted).
	w, pub, res := newTestWorker(t, celery.WorkerConfig{})
	msg, unknownID := received(t, "q", "no.such", nil, nil)
	require.NoError(t, w.Handle(msg))
	assert.Empty(t, pub.all())
	r, err := res.Get(context.Background(), unknownID)
	require.NoError(t, err)
	assert.Equal(t, celery.StateFailure, r.Status)
	assert.Equal(t, &celery.ExceptionInfo{Type: "NotRegistered", Module: "celery.exceptions", Message: []any{"no.such"}}, r.Result)

	w, pub, _ = newTestWorker(t, celery.WorkerConfig{UnknownTaskTopic: "elsewhere"})
	msg, id := received(t, "q", "no.such", []any{1}, nil)
	require.NoError(t, w.Handle(msg))
	sent := pub.all()
	require.Len(t, sent, 1)
	assert.Equal(t, "elsewhere", sent[0].topic)
	assert.Equal(t, id, sent[0].task.ID)
}

func TestWorkerTrackStarted(t *testing.T) {
	w, _, res := newTestWorker(t, celery.WorkerConfig{TrackStarted: true, Hostname: "h1"})
	w.Register("go.t", func(context.Context, *celery.Task) (any, error) { return 1, nil })
	msg, id := received(t, "q", "go.t", nil, nil)
	require.NoError(t, w.Handle(msg))
	assert.Equal(t, []string{celery.StateStarted, celery.StateSuccess}, res.states(id))
	assert.Equal(t, "h1", res.m[id][0].Result.(map[string]any)["hostname"])
}

func TestWorkerIgnoreResult(t *testing.T) {
	w, _, res := newTestWorker(t, celery.WorkerConfig{})
	w.Register("go.t", func(context.Context, *celery.Task) (any, error) { return 1, nil })
	w.Register("go.quiet", func(context.Context, *celery.Task) (any, error) { return 1, nil }, celery.IgnoreResult())
	msg, id := received(t, "q", "go.t", nil, nil, celery.WithIgnoreResult())
	require.NoError(t, w.Handle(msg))
	assert.Empty(t, res.states(id))
	msg, id = received(t, "q", "go.quiet", nil, nil)
	require.NoError(t, w.Handle(msg))
	assert.Empty(t, res.states(id))
}

func TestWorkerTimeLimits(t *testing.T) {
	w, _, res := newTestWorker(t, celery.WorkerConfig{})
	release := make(chan struct{})
	defer close(release)
	type seen struct {
		deadline, soft       time.Time
		hasDeadline, hasSoft bool
	}
	seenCh := make(chan seen, 1)
	w.Register("go.slow", func(ctx context.Context, _ *celery.Task) (any, error) {
		var s seen
		s.deadline, s.hasDeadline = ctx.Deadline()
		s.soft, s.hasSoft = celery.SoftTimeLimit(ctx)
		seenCh <- s
		<-release
		return nil, nil
	})
	start := time.Now()
	msg, id := received(t, "q", "go.slow", nil, nil, celery.WithTimeLimit(0.2, 0.1))
	require.NoError(t, w.Handle(msg))
	assert.Less(t, time.Since(start), 2*time.Second, "the worker stops waiting at the hard limit")
	s := <-seenCh
	assert.True(t, s.hasDeadline)
	assert.WithinDuration(t, start.Add(200*time.Millisecond), s.deadline, 100*time.Millisecond)
	assert.True(t, s.hasSoft)
	assert.WithinDuration(t, start.Add(100*time.Millisecond), s.soft, 100*time.Millisecond)
	r, err := res.Get(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, celery.StateFailure, r.Status)
	assert.Equal(t, "TimeLimitExceeded", r.Result.(*celery.ExceptionInfo).Type)
}

func TestRegisterFuncArguments(t *testing.T) {
	type params struct {
		A    int     `json:"a"`
		B    string  `json:"b"`
		Opt  *string `json:"opt"`
		skip int
	}
	w, _, res := newTestWorker(t, celery.WorkerConfig{})
	var got params
	celery.RegisterFunc(w, "go.p", func(_ context.Context, p params) (string, error) { got = p; return "ok", nil })
	celery.RegisterFunc(w, "go.one", func(_ context.Context, n float64) (float64, error) { return n * 2, nil })

	for _, tc := range []struct {
		name   string
		args   []any
		kwargs map[string]any
		want   params
		err    string
	}{
		{name: "positional", args: []any{1, "x"}, want: params{A: 1, B: "x"}},
		{name: "keywords", kwargs: map[string]any{"b": "y", "A": 2}, want: params{A: 2, B: "y"}},
		{name: "mixed", args: []any{3}, kwargs: map[string]any{"b": "z", "opt": "o"}, want: params{A: 3, B: "z", Opt: ptr("o")}},
		{name: "wrong type", args: []any{"no", "x"}, err: "task go.p (ID): argument a: json: cannot unmarshal string"},
		{name: "missing", args: []any{1}, err: "task go.p (ID): argument b: missing"},
		{name: "too many", args: []any{1, "x", "o", 4}, err: "task go.p (ID): argument args: takes 3 positional arguments but 4 were given"},
		{name: "unknown keyword", args: []any{1, "x"}, kwargs: map[string]any{"c": 1}, err: "argument c: unexpected keyword argument"},
		{name: "twice", args: []any{1, "x"}, kwargs: map[string]any{"a": 1}, err: "argument a: given both by position and by keyword"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got = params{}
			msg, id := received(t, "q", "go.p", tc.args, tc.kwargs)
			require.NoError(t, w.Handle(msg))
			r, err := res.Get(context.Background(), id)
			require.NoError(t, err)
			if tc.err == "" {
				assert.Equal(t, celery.StateSuccess, r.Status)
				assert.Equal(t, tc.want, got)
				return
			}
			assert.Equal(t, celery.StateFailure, r.Status)
			exc := r.Result.(*celery.ExceptionInfo)
			assert.Equal(t, "TypeError", exc.Type)
			require.Len(t, exc.Message, 1)
			want := tc.err
			if i := len("task go.p ("); len(want) > i && want[:i] == "task go.p (" {
				want = "task go.p (" + id + want[i+2:]
			}
			assert.Contains(t, exc.Message[0], want)
		})
	}

	msg, id := received(t, "q", "go.one", []any{1.5}, nil)
	require.NoError(t, w.Handle(msg))
	r, err := res.Get(context.Background(), id)
	require.NoError(t, err)
	assert.JSONEq(t, `3`, string(r.Result.(json.RawMessage)))

	w.Register("go.chan", func(context.Context, *celery.Task) (any, error) { return make(chan int), nil })
	msg, id = received(t, "q", "go.chan", nil, nil)
	require.NoError(t, w.Handle(msg))
	r, err = res.Get(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, celery.StateFailure, r.Status)
	assert.Equal(t, "EncodeError", r.Result.(*celery.ExceptionInfo).Type)
}

func ptr[T any](v T) *T { return &v }
