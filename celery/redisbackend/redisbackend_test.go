package redisbackend_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/watermill-kombu/watermill-kombu/celery"
	"github.com/watermill-kombu/watermill-kombu/celery/redisbackend"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

func TestRedisBackend(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, client := testBackend(t, 90*time.Second)

	id := "test-" + time.Now().Format("150405.000000000")
	key := b.Key(id)
	assert.Equal(t, "celery-task-meta-"+id, key)
	ps := client.Subscribe(ctx, key)
	defer ps.Close()
	_, err := ps.Receive(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { client.Del(context.Background(), key) })

	require.NoError(t, b.Store(ctx, celery.TaskResult{TaskID: id, Status: celery.StateSuccess, Result: map[string]int{"n": 5}, ParentID: "p"}))
	raw, err := client.Get(ctx, key).Result()
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(raw), &doc))
	assert.Equal(t, []string{"status", "result", "traceback", "children", "date_done", "parent_id", "task_id"}, jsonKeys(t, raw))
	assert.Equal(t, "SUCCESS", doc["status"])
	assert.Equal(t, map[string]any{"n": 5.0}, doc["result"])
	assert.Nil(t, doc["traceback"])
	assert.Equal(t, []any{}, doc["children"])
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$`, doc["date_done"])
	assert.Equal(t, id, doc["task_id"])
	ttl, err := client.TTL(ctx, key).Result()
	require.NoError(t, err)
	assert.InDelta(t, 90, ttl.Seconds(), 2)

	pm, err := ps.ReceiveMessage(ctx)
	require.NoError(t, err)
	assert.Equal(t, key, pm.Channel)
	assert.Equal(t, raw, pm.Payload, "the document is published on the key's channel")

	got, err := b.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, celery.StateSuccess, got.Status)
	assert.JSONEq(t, `{"n": 5}`, string(got.Result.(json.RawMessage)))

	require.NoError(t, b.Store(ctx, celery.TaskResult{TaskID: id, Status: celery.StateFailure}))
	got, err = b.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, celery.StateSuccess, got.Status, "a success is never overwritten")

	_, err = b.Get(ctx, id+"-missing")
	require.ErrorIs(t, err, celery.ErrResultNotFound)
}

// jsonKeys returns the keys of a JSON object in their order.
func jsonKeys(t *testing.T, doc string) []string {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(doc))
	_, err := d.Token()
	require.NoError(t, err)
	var keys []string
	for d.More() {
		k, err := d.Token()
		require.NoError(t, err)
		keys = append(keys, k.(string))
		var skip json.RawMessage
		require.NoError(t, d.Decode(&skip))
	}
	return keys
}

// testBackend returns a backend with that expiry on the tests' Redis, and its client, closed
// once the test and its cleanups are done.
func testBackend(t *testing.T, expires time.Duration) (*redisbackend.Backend, *redis.Client) {
	t.Helper()
	opts, err := redis.ParseURL(testenv.RedisURL(t))
	require.NoError(t, err)
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	b, err := redisbackend.New(redisbackend.Config{Client: client, Expires: expires})
	require.NoError(t, err)
	return b, client
}
