package celery_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/watermill-kombu/watermill-kombu/celery"
)

// pickledChordPart is what a Python header task of an application whose result_serializer is
// pickle records in the chord's .j key: Kombu's dumps([1, 'py-task', 'SUCCESS', 2],
// serializer='pickle') with Kombu 5.7.
const pickledChordPart = "\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00\x5d\x94\x28\x4b\x01\x8c\x07\x70\x79\x2d\x74\x61\x73\x6b\x94\x8c\x07\x53\x55\x43\x43\x45\x53\x53\x94\x4b\x02\x65\x2e"

// TestWorkerChordJoinError: when the Go task completing a chord's header finds results it
// cannot decode (another application's pickled result, a corrupt record, a saved group
// result that is not JSON), the body fails with ChordError("Join error: ..."), its errbacks
// are sent and the chord's size is dropped, as Celery 5.7's on_chord_part_return does; the
// header task is acked, not retried until it is dead-lettered. Celery's messages for the
// same records (backend._unpack_chord_result): DecodeError(UnicodeDecodeError(...)) for the
// pickle, ValueError('not enough values to unpack (expected 4, got 3)') for a list of three.
func TestWorkerChordJoinError(t *testing.T) {
	for _, c := range []struct {
		name    string
		prepare func(ctx context.Context, client *redis.Client, key func(string) string) error
		reason  string // the ChordError message, or its start when it ends with "("
	}{
		{name: "pickled_part", reason: "Join error: DecodeError(",
			prepare: func(ctx context.Context, client *redis.Client, key func(string) string) error {
				return client.ZAdd(ctx, key(".j"), redis.Z{Score: 0, Member: pickledChordPart}).Err()
			}},
		{name: "short_part", reason: "Join error: ValueError('not enough values to unpack (expected 4, got 3)')",
			prepare: func(ctx context.Context, client *redis.Client, key func(string) string) error {
				return client.ZAdd(ctx, key(".j"), redis.Z{Score: 0, Member: `[1, "py-task", "SUCCESS"]`}).Err()
			}},
		{name: "pickled_group", reason: "Join error: DecodeError(",
			prepare: func(ctx context.Context, client *redis.Client, key func(string) string) error {
				if err := client.ZAdd(ctx, key(".j"), redis.Z{Score: 0, Member: `[1, "py-task", "SUCCESS", 2]`}).Err(); err != nil {
					return err
				}
				return client.Set(ctx, key(""), pickledChordPart, time.Minute).Err()
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			client, results := redisResults(t)
			w, pub, _ := newTestWorker(t, celery.WorkerConfig{Results: results, DefaultQueue: "dflt"})
			w.Register("go.add", func(context.Context, *celery.Task) (any, error) { return 2, nil })

			gid, bodyID := "test-chord-"+uuid.NewString(), uuid.NewString()
			key := func(suffix string) string { return results.GroupKey(gid, suffix) }
			t.Cleanup(func() {
				var keys []string
				for _, s := range []string{"", ".j", ".t", ".s", ".d", ".c"} {
					keys = append(keys, key(s))
				}
				client.Del(context.Background(), append(keys, results.Key(bodyID))...)
			})
			require.NoError(t, client.Set(ctx, key(".s"), 2, time.Minute).Err())
			require.NoError(t, c.prepare(ctx, client, key))

			body := sig("py.tsum", nil, map[string]any{"task_id": bodyID, "group_id": gid,
				"link_error": []any{sig("py.on_error", nil, nil)}})
			msg, id := received(t, "q", "go.add", []any{1, 1}, nil, celery.WithGroup(gid, 1))
			t.Cleanup(func() { client.Del(context.Background(), results.Key(id)) })
			task, err := celery.TaskFromMessage(msg)
			require.NoError(t, err)
			task.Chord = &body
			handle := func(delivery int) error {
				m, err := task.Message()
				require.NoError(t, err)
				m.SetContext(ctx)
				return w.Handle(redeliver(m, delivery))
			}

			require.NoError(t, handle(1), "the header task is acked, not retried")
			got, err := results.Get(ctx, bodyID)
			require.NoError(t, err, "the body's failure is stored")
			assert.Equal(t, celery.StateFailure, got.Status)
			var exc struct {
				Type    string   `json:"exc_type"`
				Message []string `json:"exc_message"`
				Module  string   `json:"exc_module"`
			}
			require.NoError(t, json.Unmarshal(got.Result.(json.RawMessage), &exc))
			assert.Equal(t, "ChordError", exc.Type)
			assert.Equal(t, "celery.exceptions", exc.Module)
			require.Len(t, exc.Message, 1)
			if strings.HasSuffix(c.reason, "(") {
				assert.True(t, strings.HasPrefix(exc.Message[0], c.reason), "ChordError %q", exc.Message[0])
			} else {
				assert.Equal(t, c.reason, exc.Message[0])
			}
			sent := pub.all()
			require.Len(t, sent, 1, "the body's errback, and not the body")
			assert.Equal(t, "py.on_error", sent[0].task.Name)
			n, err := client.Exists(ctx, key(".s")).Result()
			require.NoError(t, err)
			assert.Zero(t, n, "the chord's size is dropped")

			require.NoError(t, handle(2), "a redelivered copy of the header task")
			assert.Len(t, pub.all(), 1, "does not fail the chord again")
		})
	}
}
