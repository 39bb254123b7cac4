package redisbackend_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/watermill-kombu/watermill-kombu/celery"
)

// TestRedisBackendExtendedPythonFloats stores a result whose extended arguments hold Python's
// NaN and Infinity, as a Celery client sends them, and reads it back: the document is
// Python's JSON, which encoding/json alone would neither write nor read.
func TestRedisBackendExtendedPythonFloats(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, client := testBackend(t, time.Minute)
	id := "test-ext-" + time.Now().Format("150405.000000000")
	t.Cleanup(func() { client.Del(context.Background(), b.Key(id)) })

	retries := 1
	req := &celery.RequestInfo{Name: "proj.add", Args: json.RawMessage(`[NaN, 18446744073709551617]`),
		Kwargs: json.RawMessage(`{"x": -Infinity}`), Worker: "go@host", Retries: &retries, Queue: "celery"}
	require.NoError(t, b.Store(ctx, celery.TaskResult{TaskID: id, Status: celery.StateStarted, Request: req}))
	// Storing again reads the stored state first (a SUCCESS is not replaced).
	require.NoError(t, b.Store(ctx, celery.TaskResult{TaskID: id, Status: celery.StateSuccess, Result: 3, Request: req}))
	raw, err := client.Get(ctx, b.Key(id)).Result()
	require.NoError(t, err)
	assert.Contains(t, raw, `"args":[NaN,18446744073709551617],"kwargs":{"x":-Infinity}`)

	got, err := b.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, celery.StateSuccess, got.Status)
	require.NotNil(t, got.Request)
	assert.Equal(t, `[NaN,18446744073709551617]`, string(got.Request.Args))
	assert.Equal(t, `{"x":-Infinity}`, string(got.Request.Kwargs))
	assert.Equal(t, "proj.add", got.Request.Name)
	assert.Equal(t, &retries, got.Request.Retries)
}
