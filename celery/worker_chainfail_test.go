package celery_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/watermill-kombu/watermill-kombu/celery"
)

// TestWorkerFailureFailsChain: a failed task stores the failure for the rest of its chain, as
// Celery does, so that a client waiting on the chain's last step gets the error; nothing of
// the chain is sent.
func TestWorkerFailureFailsChain(t *testing.T) {
	w, pub, res := newTestWorker(t, celery.WorkerConfig{})
	w.Register("go.fail", func(context.Context, *celery.Task) (any, error) { return nil, errors.New("broken") })
	msg, id := received(t, "q", "go.fail", nil, nil)
	task, err := celery.TaskFromMessage(msg)
	require.NoError(t, err)
	// Celery stores the rest of a chain last step first.
	task.Chain = []celery.Signature{
		sig("py.last", nil, map[string]any{"task_id": "last-id"}),
		sig("py.next", nil, map[string]any{"task_id": "next-id"}),
		sig("py.unfrozen", nil, nil),
	}
	msg, err = task.Message()
	require.NoError(t, err)
	msg.SetContext(context.Background())
	require.NoError(t, w.Handle(msg))

	assert.Equal(t, []string{celery.StateFailure}, res.states(id))
	for _, step := range []string{"next-id", "last-id"} {
		assert.Equal(t, []string{celery.StateFailure}, res.states(step), step)
		r, err := res.Get(context.Background(), step)
		require.NoError(t, err)
		exc, _ := r.Result.(*celery.ExceptionInfo)
		require.NotNil(t, exc, "%#v", r.Result)
		assert.Equal(t, []any{"broken"}, exc.Message)
	}
	assert.Empty(t, pub.all(), "no chain step is sent")
}

// celeryChainWithChord is the chain embedded in the first task of
// chain(go.fail.s(), chord([py.add.s(1, 1), py.add.s(2, 2)], py.tsum.s().set(task_id="body-id")))
// as Celery 5.7's apply_async sends it (captured from app.amqp.send_task_message).
const celeryChainWithChord = `[{"task": "celery.chord", "args": [], "kwargs": {"kwargs": {}, "header": {"task": "celery.group", "args": [], "kwargs": {"tasks": [{"task": "py.add", "args": [1, 1], "kwargs": {}, "options": {"task_id": "2a15c8c9-3ba1-4ed1-80dc-56b04878d363", "reply_to": "c3fb9fd3-182e-3a8a-800f-06cac884ca91", "group_index": 0}, "subtask_type": null, "immutable": false}, {"task": "py.add", "args": [2, 2], "kwargs": {}, "options": {"task_id": "813afede-81e2-4635-838a-274141649a7d", "reply_to": "c3fb9fd3-182e-3a8a-800f-06cac884ca91", "group_index": 1}, "subtask_type": null, "immutable": false}]}, "options": {"task_id": "2e24b0b9-f27f-4c91-9971-358ab85c7671", "root_id": null, "parent_id": null}, "subtask_type": "group", "immutable": false}, "body": {"task": "py.tsum", "args": [], "kwargs": {}, "options": {"task_id": "body-id", "reply_to": "c3fb9fd3-182e-3a8a-800f-06cac884ca91"}, "subtask_type": null, "immutable": false}}, "options": {"task_id": "2e24b0b9-f27f-4c91-9971-358ab85c7671"}, "subtask_type": "chord", "immutable": false}]`

// TestWorkerFailureFailsChordStepBody: when the chain after a failed task goes on with a
// chord, the chord's body (the chain's result) is failed too, as Celery 5.7's _fail_chain
// does, so that a client waiting on the chain's result gets the error instead of waiting
// forever. The chord's own id (its header's group id) is failed as Celery fails it.
func TestWorkerFailureFailsChordStepBody(t *testing.T) {
	w, pub, res := newTestWorker(t, celery.WorkerConfig{})
	w.Register("go.fail", func(context.Context, *celery.Task) (any, error) { return nil, errors.New("broken") })
	msg, id := received(t, "q", "go.fail", nil, nil)
	task, err := celery.TaskFromMessage(msg)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal([]byte(celeryChainWithChord), &task.Chain))
	msg, err = task.Message()
	require.NoError(t, err)
	msg.SetContext(context.Background())
	require.NoError(t, w.Handle(msg))

	assert.Equal(t, []string{celery.StateFailure}, res.states(id))
	assert.Equal(t, []string{celery.StateFailure}, res.states("2e24b0b9-f27f-4c91-9971-358ab85c7671"), "the chord step's id")
	require.Equal(t, []string{celery.StateFailure}, res.states("body-id"), "the chord's body")
	r, err := res.Get(context.Background(), "body-id")
	require.NoError(t, err)
	exc, _ := r.Result.(*celery.ExceptionInfo)
	require.NotNil(t, exc, "%#v", r.Result)
	assert.Equal(t, []any{"broken"}, exc.Message)
	assert.Empty(t, pub.all(), "nothing of the chain is sent")
}
