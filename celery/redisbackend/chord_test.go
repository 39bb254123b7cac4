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

// TestRedisBackendChord records chord header parts the way Celery's Redis backend does:
// each task counts once, the last one claims the body with the results in header order,
// and completing the chord deletes its keys and ignores late copies.
func TestRedisBackendChord(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, client := testBackend(t, time.Minute)

	gid := "test-chord-" + uuid.NewString()
	keys := []string{b.GroupKey(gid, ".j"), b.GroupKey(gid, ".t"), b.GroupKey(gid, ".s"), b.GroupKey(gid, ".d"), b.GroupKey(gid, ".c")}
	t.Cleanup(func() { client.Del(context.Background(), keys...) })
	// What the client's set_chord_size does before it sends the header.
	require.NoError(t, client.Set(ctx, b.GroupKey(gid, ".s"), 3, time.Minute).Err())

	part := func(id string, index int, value string) celery.ChordJoin {
		t.Helper()
		j, err := b.ChordPartReturn(ctx, celery.ChordPart{GroupID: gid, GroupIndex: &index, TaskID: id,
			State: celery.StateSuccess, Result: json.RawMessage(value)})
		require.NoError(t, err)
		return j
	}
	assert.Nil(t, part("c", 2, `"third"`))
	assert.Nil(t, part("a", 0, `{"first": 1}`))
	assert.Nil(t, part("a", 0, `{"first": "again"}`), "a redelivered task counts once")
	join := part("b", 1, `[2]`)
	require.NotNil(t, join, "the last part claims the body")
	var got []string
	for _, r := range join.Results() {
		assert.Equal(t, celery.StateSuccess, r.State)
		got = append(got, r.TaskID+"="+string(r.Result))
	}
	assert.Equal(t, []string{`a={"first": 1}`, "b=[2]", `c="third"`}, got, "in header order, first record kept")
	assert.Nil(t, part("c", 2, `"third"`), "a copy of a header task while the body is claimed")

	owned, err := join.Extend(ctx)
	require.NoError(t, err)
	assert.True(t, owned)
	ttl, err := client.TTL(ctx, b.GroupKey(gid, ".c")).Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, 10*time.Second, "the claim is extended while the body is sent")

	require.NoError(t, join.Complete(ctx))
	n, err := client.Exists(ctx, keys[:4]...).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "the chord's keys are deleted")
	assert.Nil(t, part("b", 1, `[2]`), "a late copy after the chord completed")
	n, err = client.Exists(ctx, keys[:4]...).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "a late copy does not recreate the chord's state")

	// A released claim (sending the body failed) can be taken again.
	gid2 := "test-chord-" + uuid.NewString()
	keys2 := []string{b.GroupKey(gid2, ".j"), b.GroupKey(gid2, ".t"), b.GroupKey(gid2, ".s"), b.GroupKey(gid2, ".d"), b.GroupKey(gid2, ".c")}
	t.Cleanup(func() { client.Del(context.Background(), keys2...) })
	require.NoError(t, client.Set(ctx, b.GroupKey(gid2, ".s"), 1, time.Minute).Err())
	exc := &celery.ExceptionInfo{Type: "ValueError", Module: "builtins", Message: []any{"bad"}}
	j, err := b.ChordPartReturn(ctx, celery.ChordPart{GroupID: gid2, TaskID: "x", State: celery.StateFailure, Result: exc})
	require.NoError(t, err)
	require.NotNil(t, j)
	assert.JSONEq(t, `{"exc_type": "ValueError", "exc_message": ["bad"], "exc_module": "builtins"}`, string(j.Results()[0].Result))
	require.NoError(t, j.Release(ctx))
	j, err = b.ChordPartReturn(ctx, celery.ChordPart{GroupID: gid2, TaskID: "x", State: celery.StateFailure, Result: exc})
	require.NoError(t, err)
	require.NotNil(t, j, "the redelivered part claims the body again")
	require.NoError(t, j.Abandon(ctx))
	j, err = b.ChordPartReturn(ctx, celery.ChordPart{GroupID: gid2, TaskID: "x", State: celery.StateFailure, Result: exc})
	require.NoError(t, err)
	assert.Nil(t, j, "a failed chord is not failed again")
}

// TestRedisBackendChordSavedGroup reads the header's results from the GroupResult the client
// saved (Celery's apply_chord saves it when the header nests groups), keeping its structure.
func TestRedisBackendChordSavedGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, client := testBackend(t, time.Minute)

	gid, inner := "test-chord-"+uuid.NewString(), "test-inner-"+uuid.NewString()
	ids := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
	keys := []string{b.GroupKey(gid, ""), b.GroupKey(gid, ".j"), b.GroupKey(gid, ".s"), b.GroupKey(gid, ".d"), b.GroupKey(gid, ".c")}
	for _, id := range ids {
		keys = append(keys, b.Key(id))
	}
	t.Cleanup(func() { client.Del(context.Background(), keys...) })
	saved := `{"result": [["` + gid + `", null], [[["` + ids[0] + `", null], null], [["` + inner + `", null], [[["` + ids[1] + `", null], null], [["` + ids[2] + `", null], null]]]]]}`
	require.NoError(t, client.Set(ctx, b.GroupKey(gid, ""), saved, time.Minute).Err())
	require.NoError(t, client.Set(ctx, b.GroupKey(gid, ".s"), 3, time.Minute).Err())
	for i, id := range ids {
		require.NoError(t, b.Store(ctx, celery.TaskResult{TaskID: id, Status: celery.StateSuccess, Result: json.RawMessage(`"r` + string(rune('0'+i)) + `"`)}))
		j, err := b.ChordPartReturn(ctx, celery.ChordPart{GroupID: gid, TaskID: id, State: celery.StateSuccess, Result: json.RawMessage(`"r` + string(rune('0'+i)) + `"`)})
		require.NoError(t, err)
		if i < 2 {
			assert.Nil(t, j)
			continue
		}
		require.NotNil(t, j)
		rs := j.Results()
		require.Len(t, rs, 2)
		assert.Equal(t, ids[0], rs[0].TaskID)
		assert.Equal(t, `"r0"`, string(rs[0].Result))
		assert.Equal(t, inner, rs[1].TaskID)
		require.Len(t, rs[1].Group, 2, "the nested group keeps its structure")
		assert.Equal(t, `"r1"`, string(rs[1].Group[0].Result))
		assert.Equal(t, `"r2"`, string(rs[1].Group[1].Result))
		require.NoError(t, j.Complete(ctx))
	}
}
