package redisbackend_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/watermill-kombu/watermill-kombu/celery"
)

// TestSubSecondExpires: an Expires under a second keeps results and chord keys for one
// second, the least Redis expiry; chord keys were kept forever (their TTL truncated to 0).
func TestSubSecondExpires(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, client := testBackend(t, 500*time.Millisecond)

	gid, id := "test-chord-"+uuid.NewString(), uuid.NewString()
	keys := []string{b.Key(id), b.GroupKey(gid, ".j"), b.GroupKey(gid, ".d"), b.GroupKey(gid, ".s")}
	t.Cleanup(func() { client.Del(context.Background(), keys...) })
	// The size as Celery's set_chord_size writes it with result_expires under a second:
	// without expiry.
	require.NoError(t, client.Set(ctx, b.GroupKey(gid, ".s"), 2, 0).Err())
	require.NoError(t, b.Store(ctx, celery.TaskResult{TaskID: id, Status: celery.StateSuccess, Result: json.RawMessage("1")}))
	j, err := b.ChordPartReturn(ctx, celery.ChordPart{GroupID: gid, TaskID: id, State: celery.StateSuccess, Result: json.RawMessage("1")})
	require.NoError(t, err)
	assert.Nil(t, j)
	for _, k := range keys {
		ttl, err := client.PTTL(ctx, k).Result()
		require.NoError(t, err)
		assert.True(t, ttl > 0 && ttl <= time.Second, "%s: TTL %s, want up to 1s", k, ttl)
	}
}
