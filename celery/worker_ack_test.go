package celery_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
)

// failingStore is a result backend in memory whose Store fails for one state, failures
// times.
type failingStore struct {
	memoryResults
	mu       sync.Mutex
	state    string
	failures int
}

func (b *failingStore) Store(ctx context.Context, r celery.TaskResult) error {
	b.mu.Lock()
	if r.Status == b.state && b.failures > 0 {
		b.failures--
		b.mu.Unlock()
		return errors.New("result store down")
	}
	b.mu.Unlock()
	return b.memoryResults.Store(ctx, r)
}

// loggedErrors returns the Error-level messages a capture logger holds for task id.
func loggedErrors(logger *watermill.CaptureLoggerAdapter, id string) []watermill.CapturedMessage {
	var out []watermill.CapturedMessage
	for _, m := range logger.Captured()[watermill.ErrorLogLevel] {
		if m.Fields["task_id"] == id {
			out = append(out, m)
		}
	}
	return out
}

// TestWorkerRetryStoreFailureAcks: once the retry is sent, a failure to store RETRY is
// logged and the message acked; a Nack would run the task again and send a second retry.
func TestWorkerRetryStoreFailureAcks(t *testing.T) {
	pub, res := &sentMessages{}, &failingStore{state: celery.StateRetry, failures: 1}
	logger := watermill.NewCaptureLogger()
	w, err := celery.NewWorker(celery.WorkerConfig{Publisher: pub, Results: res}, logger)
	require.NoError(t, err)
	var runs atomic.Int32
	w.Register("go.flaky", func(context.Context, *celery.Task) (any, error) {
		runs.Add(1)
		return nil, celery.Retry(time.Second, errors.New("later"))
	})
	msg, id := received(t, "work-q", "go.flaky", nil, nil)
	require.NoError(t, w.Handle(msg), "the retry was sent: the message is acked")
	assert.Equal(t, int32(1), runs.Load())
	sent := pub.all()
	require.Len(t, sent, 1, "one retry")
	assert.Equal(t, id, sent[0].task.ID)
	assert.Equal(t, 1, sent[0].task.Retries)
	assert.Empty(t, res.states(id), "RETRY could not be stored")
	assert.Len(t, loggedErrors(logger, id), 1, "the lost RETRY state is logged as an error")
}

// chordResults is a result backend in memory that keeps chord parts; its ChordPartReturn
// fails failures times, then records the part (the chord never completes).
type chordResults struct {
	memoryResults
	mu       sync.Mutex
	failures int
	parts    []celery.ChordPart
	gets     atomic.Int32
}

func (b *chordResults) Get(ctx context.Context, id string) (*celery.TaskResult, error) {
	b.gets.Add(1)
	return b.memoryResults.Get(ctx, id)
}

func (b *chordResults) ChordPartReturn(_ context.Context, part celery.ChordPart) (celery.ChordJoin, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.parts = append(b.parts, part)
	if b.failures > 0 {
		b.failures--
		return nil, errors.New("chord state unavailable")
	}
	return nil, nil
}

func (b *chordResults) recorded() []celery.ChordPart {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]celery.ChordPart(nil), b.parts...)
}

// redeliver marks msg as delivered count times by SQS.
func redeliver(msg *message.Message, count int) *message.Message {
	msg.Metadata.Set(kombu.MetadataReceiveCount, strconv.Itoa(count))
	return msg
}

// TestWorkerCallbacksSentBeforeSuccess: as in Celery, the callbacks are sent before SUCCESS
// is stored, so that a failure to send them leaves no SUCCESS behind: the task runs again on
// redelivery and sends them.
func TestWorkerCallbacksSentBeforeSuccess(t *testing.T) {
	pub, res := &flakyPublisher{failures: 1}, &memoryResults{}
	w, err := celery.NewWorker(celery.WorkerConfig{Publisher: pub, Results: res}, watermill.NopLogger{})
	require.NoError(t, err)
	var runs atomic.Int32
	w.Register("go.t", func(context.Context, *celery.Task) (any, error) { runs.Add(1); return 5, nil })
	msg, id := received(t, "q", "go.t", nil, nil, celery.WithLink(sig("py.next", nil, nil)))
	require.Error(t, w.Handle(redeliver(msg, 1)), "the callback could not be sent: Nacked")
	assert.Empty(t, res.states(id), "no SUCCESS is stored before the callbacks are sent")

	require.NoError(t, w.Handle(redeliver(msg, 2)))
	assert.Equal(t, int32(2), runs.Load(), "without a stored SUCCESS the redelivered task runs again")
	sent := pub.all()
	require.Len(t, sent, 1)
	assert.Equal(t, "py.next", sent[0].task.Name)
	r, err := res.Get(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, celery.StateSuccess, r.Status)
	assert.Equal(t, []any{[]any{[]any{sent[0].task.ID, nil}, nil}}, r.Children)
}

// TestWorkerRedeliveredSuccessNotRunAgain: when returning the chord part fails after SUCCESS
// was stored, the message is Nacked; its redelivery does not run the task again nor send
// its callbacks again, and returns the chord part. A first delivery reads no stored state.
func TestWorkerRedeliveredSuccessNotRunAgain(t *testing.T) {
	pub, res := &sentMessages{}, &chordResults{failures: 1}
	w, err := celery.NewWorker(celery.WorkerConfig{Publisher: pub, Results: res}, watermill.NopLogger{})
	require.NoError(t, err)
	var runs atomic.Int32
	w.Register("go.t", func(context.Context, *celery.Task) (any, error) { runs.Add(1); return 5, nil })
	msg, id := received(t, "q", "go.t", nil, nil, celery.WithGroup("g1", 3), celery.WithLink(sig("py.next", nil, nil)))
	task, err := celery.TaskFromMessage(msg)
	require.NoError(t, err)
	body := sig("py.body", nil, nil)
	task.Chord = &body
	msg, err = task.Message()
	require.NoError(t, err)
	msg.SetContext(context.Background())

	require.Error(t, w.Handle(redeliver(msg, 1)), "the chord part could not be returned: Nacked")
	assert.Zero(t, res.gets.Load(), "a first delivery does not read the stored state")
	assert.Equal(t, []string{celery.StateSuccess}, res.states(id))
	require.Len(t, pub.all(), 1)

	require.NoError(t, w.Handle(redeliver(msg, 2)))
	assert.Equal(t, int32(1), runs.Load(), "the task is not run again")
	assert.Len(t, pub.all(), 1, "its callbacks are not sent again")
	assert.Equal(t, []string{celery.StateSuccess}, res.states(id), "nothing more is stored")
	parts := res.recorded()
	require.Len(t, parts, 2, "the chord part is returned again")
	assert.Equal(t, parts[0].TaskID, parts[1].TaskID)
	assert.Equal(t, "g1", parts[1].GroupID)
	require.NotNil(t, parts[1].GroupIndex)
	assert.Equal(t, 3, *parts[1].GroupIndex)
	assert.Equal(t, celery.StateSuccess, parts[1].State)
	assert.JSONEq(t, `5`, string(parts[1].Result.(json.RawMessage)), "with the stored result")
}

// TestWorkerRedeliveredSuccessSendsMissingCallbacks: a redelivered task whose stored SUCCESS
// lists no children (its callbacks were not sent) sends its callbacks and next chain step
// with the stored result, without running again; with children, it sends nothing.
func TestWorkerRedeliveredSuccessSendsMissingCallbacks(t *testing.T) {
	w, pub, res := newTestWorker(t, celery.WorkerConfig{DefaultQueue: "dflt"})
	var runs atomic.Int32
	w.Register("go.t", func(context.Context, *celery.Task) (any, error) { runs.Add(1); return 99, nil })
	msg, id := received(t, "q", "go.t", nil, nil, celery.WithLink(sig("py.cb", []any{"x"}, nil)))
	task, err := celery.TaskFromMessage(msg)
	require.NoError(t, err)
	task.Chain = []celery.Signature{sig("py.last", nil, nil), sig("py.next", nil, map[string]any{"task_id": "next-id"})}
	msg, err = task.Message()
	require.NoError(t, err)
	msg.SetContext(context.Background())
	require.NoError(t, res.Store(context.Background(), celery.TaskResult{TaskID: id, Status: celery.StateSuccess, Result: json.RawMessage(`5`)}))

	require.NoError(t, w.Handle(redeliver(msg, 2)))
	assert.Zero(t, runs.Load(), "the task is not run again")
	sent := pub.all()
	require.Len(t, sent, 2)
	assert.Equal(t, "py.cb", sent[0].task.Name)
	assert.JSONEq(t, `[5, "x"]`, string(sent[0].task.RawArgs), "the stored result comes first")
	assert.Equal(t, "next-id", sent[1].task.ID)
	assert.JSONEq(t, `[5]`, string(sent[1].task.RawArgs))
	require.Len(t, sent[1].task.Chain, 1)

	require.NoError(t, res.Store(context.Background(), celery.TaskResult{TaskID: id, Status: celery.StateSuccess, Result: json.RawMessage(`5`),
		Children: []any{[]any{[]any{"cb-id", nil}, nil}}}))
	require.NoError(t, w.Handle(redeliver(msg, 3)))
	assert.Zero(t, runs.Load())
	assert.Len(t, pub.all(), 2, "callbacks already sent are not sent again")
}

// TestWorkerInterruptedTaskIsNacked: a task whose message's context ends while it runs (the
// router or the subscription closing) did not fail: nothing is stored, no errback is sent,
// the chain is not failed, and Handle returns an error so that the message is Nacked and
// runs again later. With or without a hard time limit, whether the function returns its
// context's error or ignores its context, and even when the task retries every error.
func TestWorkerInterruptedTaskIsNacked(t *testing.T) {
	for _, tc := range []struct {
		name       string
		hard       float64
		watchesCtx bool
		autoRetry  bool
	}{
		{"no time limit", 0, true, false},
		{"hard time limit", 60, true, false},
		{"hard time limit, context ignored", 60, false, false},
		{"autoretry", 0, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, pub, res := newTestWorker(t, celery.WorkerConfig{})
			started, release := make(chan struct{}), make(chan struct{})
			t.Cleanup(func() { close(release) })
			var ropts []celery.RegisterOption
			if tc.autoRetry {
				ropts = append(ropts, celery.AutoRetryIf(func(error) bool { return true }))
			}
			w.Register("go.slow", func(ctx context.Context, _ *celery.Task) (any, error) {
				close(started)
				if !tc.watchesCtx {
					<-release
					return "late", nil
				}
				<-ctx.Done()
				return nil, ctx.Err()
			}, ropts...)
			opts := []celery.TaskOption{celery.WithLinkError(sig("py.on_error", nil, nil))}
			if tc.hard > 0 {
				opts = append(opts, celery.WithTimeLimit(tc.hard, 0))
			}
			msg, id := received(t, "q", "go.slow", nil, nil, opts...)
			task, err := celery.TaskFromMessage(msg)
			require.NoError(t, err)
			task.Chain = []celery.Signature{sig("py.next", nil, map[string]any{"task_id": "next-id"})}
			msg, err = task.Message()
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			msg.SetContext(ctx)
			go func() { <-started; cancel() }()

			err = w.Handle(msg)
			require.Error(t, err, "the interrupted task's message is Nacked")
			assert.ErrorIs(t, err, context.Canceled)
			assert.Empty(t, res.states(id), "no state is stored")
			assert.Empty(t, res.states("next-id"), "the chain is not failed")
			assert.Empty(t, pub.all(), "no errback, retry or chain step is sent")
		})
	}
}

// TestWorkerHardTimeLimitStillFails: a function that returns its context's error when its hard
// time limit passes fails the task with TimeLimitExceeded, its message's context alive.
func TestWorkerHardTimeLimitStillFails(t *testing.T) {
	w, pub, res := newTestWorker(t, celery.WorkerConfig{})
	w.Register("go.slow", func(ctx context.Context, _ *celery.Task) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	msg, id := received(t, "q", "go.slow", nil, nil, celery.WithTimeLimit(0.05, 0),
		celery.WithLinkError(sig("py.on_error", nil, nil)))
	require.NoError(t, w.Handle(msg), "a task over its hard limit failed: acked")
	r, err := res.Get(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, celery.StateFailure, r.Status)
	assert.Equal(t, "TimeLimitExceeded", r.Result.(*celery.ExceptionInfo).Type)
	require.Len(t, pub.all(), 1)
	assert.Equal(t, "py.on_error", pub.all()[0].task.Name)
}
