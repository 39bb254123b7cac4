package celery_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/watermill-kombu/watermill-kombu/celery"
)

// TestEmptyRawResultIsNull: an empty json.RawMessage result is stored as null, what Celery
// stores for a task returning None, as a nil result and as the chord encoder writes it, both
// by TaskResult.MarshalJSON and by the worker (which failed such a task with EncodeError).
func TestEmptyRawResultIsNull(t *testing.T) {
	for name, v := range map[string]any{"nil": nil, "nil raw": json.RawMessage(nil), "empty raw": json.RawMessage{}} {
		b, err := json.Marshal(celery.TaskResult{TaskID: "id", Status: celery.StateSuccess, Result: v})
		require.NoError(t, err, name)
		var doc map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(b, &doc), name)
		assert.Equal(t, "null", string(doc["result"]), name)
	}

	w, _, res := newTestWorker(t, celery.WorkerConfig{})
	w.Register("go.empty", func(context.Context, *celery.Task) (any, error) { return json.RawMessage{}, nil })
	msg, id := received(t, "q", "go.empty", nil, nil)
	require.NoError(t, w.Handle(msg))
	r, err := res.Get(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, celery.StateSuccess, r.Status)
	b, err := json.Marshal(r.Result)
	require.NoError(t, err)
	assert.Equal(t, "null", string(b))
}
