package celery_test

import (
	"context"
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
