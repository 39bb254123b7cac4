package celery_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/watermill-kombu/watermill-kombu/celery"
	"github.com/watermill-kombu/watermill-kombu/celery/redisbackend"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// flakyPublisher fails its first failures publishes, then keeps what it is given.
type flakyPublisher struct {
	sentMessages
	mu       sync.Mutex
	failures int
}

func (p *flakyPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.Lock()
	if p.failures > 0 {
		p.failures--
		p.mu.Unlock()
		return errors.New("broker down")
	}
	p.mu.Unlock()
	return p.sentMessages.Publish(topic, msgs...)
}

// redisResults returns a client of the test Redis and a result backend using it, both closed
// when the test ends.
func redisResults(t *testing.T) (*redis.Client, *redisbackend.Backend) {
	opts, err := redis.ParseURL(testenv.RedisURL(t))
	require.NoError(t, err)
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	results, err := redisbackend.New(redisbackend.Config{Client: client, Expires: time.Minute})
	require.NoError(t, err)
	return client, results
}

// TestWorkerChordBodySendFails: when sending a chord's body fails, the header task's message
// is Nacked and the claim given up, so that its redelivery sends the body, once.
func TestWorkerChordBodySendFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client, results := redisResults(t)
	pub := &flakyPublisher{failures: 1}
	w, err := celery.NewWorker(celery.WorkerConfig{Publisher: pub, Results: results, DefaultQueue: "dflt"}, watermill.NopLogger{})
	require.NoError(t, err)
	var runs atomic.Int32
	w.Register("go.add", func(_ context.Context, task *celery.Task) (any, error) { runs.Add(1); return 2, nil })

	gid, bodyID := "test-chord-"+uuid.NewString(), uuid.NewString()
	t.Cleanup(func() {
		var keys []string
		for _, s := range []string{"", ".j", ".t", ".s", ".d", ".c"} {
			keys = append(keys, results.GroupKey(gid, s))
		}
		client.Del(context.Background(), append(keys, results.Key(bodyID))...)
	})
	require.NoError(t, client.Set(ctx, results.GroupKey(gid, ".s"), 1, time.Minute).Err())
	body := sig("py.tsum", nil, map[string]any{"task_id": bodyID, "group_id": gid})
	msg, id := received(t, "q", "go.add", []any{1, 1}, nil, celery.WithGroup(gid, 0))
	task, err := celery.TaskFromMessage(msg)
	require.NoError(t, err)
	task.Chord = &body
	t.Cleanup(func() { client.Del(context.Background(), results.Key(id)) })
	handle := func(delivery int) error {
		m, err := task.Message()
		require.NoError(t, err)
		m.SetContext(ctx)
		return w.Handle(redeliver(m, delivery))
	}

	require.Error(t, handle(1), "the body could not be sent: the header task is Nacked")
	assert.Empty(t, pub.all())
	require.NoError(t, handle(2), "the redelivered header task sends the body")
	sent := pub.all()
	require.Len(t, sent, 1)
	assert.Equal(t, bodyID, sent[0].task.ID)
	assert.JSONEq(t, `[[2]]`, string(sent[0].task.RawArgs))
	require.NoError(t, handle(3), "a late copy")
	assert.Len(t, pub.all(), 1, "the body is sent once")
	assert.Equal(t, int32(1), runs.Load(), "the redelivered task, SUCCESS stored, is not run again")
}

// TestWorkerChordBodyErrbacks: when a chord's header fails, the errbacks of its body are sent
// as Celery 5.7's chord_error_from_stack sends them, from a request made up for the body: as
// one group, with the body's id as argument, parent_id and root_id. A group body sends, for
// each of its tasks, the task's errbacks and the group's, as one group per task. Celery
// (backend.chord_error_from_stack run on these bodies) sent eb1 and eb2 in one group, both
// with args, parent_id and root_id "body-id"; and for the group body, own and geb in one group
// for m1-id, then geb in another for m2-id.
func TestWorkerChordBodyErrbacks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client, results := redisResults(t)
	pub := &sentMessages{}
	w, err := celery.NewWorker(celery.WorkerConfig{Publisher: pub, Results: results, DefaultQueue: "dflt"}, watermill.NopLogger{})
	require.NoError(t, err)
	w.Register("go.fail", func(context.Context, *celery.Task) (any, error) { return nil, errors.New("broken") })

	failHeader := func(t *testing.T, body celery.Signature) []sentMessage {
		t.Helper()
		gid := "test-chord-" + uuid.NewString()
		msg, id := received(t, "q", "go.fail", nil, nil, celery.WithGroup(gid, 0))
		t.Cleanup(func() {
			var keys []string
			for _, s := range []string{"", ".j", ".t", ".s", ".d", ".c"} {
				keys = append(keys, results.GroupKey(gid, s))
			}
			for _, k := range []string{id, "body-id", "m1-id", "m2-id", "gbody"} {
				keys = append(keys, results.Key(k))
			}
			client.Del(context.Background(), keys...)
		})
		require.NoError(t, client.Set(ctx, results.GroupKey(gid, ".s"), 1, time.Minute).Err())
		task, err := celery.TaskFromMessage(msg)
		require.NoError(t, err)
		task.Chord = &body
		m, err := task.Message()
		require.NoError(t, err)
		m.SetContext(ctx)
		n := len(pub.all())
		require.NoError(t, w.Handle(m))
		return pub.all()[n:]
	}

	t.Run("task", func(t *testing.T) {
		body := signatureJSON(t, `{"task": "tsum", "args": [], "kwargs": {}, "options": {"task_id": "body-id", "link_error": [
			{"task": "eb1", "args": [], "kwargs": {}, "options": {}, "subtask_type": null, "immutable": false},
			{"task": "eb2", "args": [], "kwargs": {}, "options": {}, "subtask_type": null, "immutable": false}]},
			"subtask_type": null, "immutable": false}`)
		sent := failHeader(t, body)
		require.Equal(t, []string{"eb1", "eb2"}, sentNames(sent))
		for i, m := range sent {
			assert.JSONEq(t, `["body-id"]`, string(m.task.RawArgs))
			assert.Equal(t, "body-id", m.task.ParentID)
			assert.Equal(t, "body-id", m.task.RootID, "the request made up for the body has no root id")
			assert.NotEmpty(t, m.task.Group, "the errbacks are sent as a group")
			assert.Equal(t, sent[0].task.Group, m.task.Group)
			require.NotNil(t, m.task.GroupIndex)
			assert.Equal(t, i, *m.task.GroupIndex)
		}
	})
	t.Run("group", func(t *testing.T) {
		body := signatureJSON(t, `{"task": "celery.group", "args": [], "kwargs": {"tasks": [
			{"task": "m1", "args": [], "kwargs": {}, "options": {"task_id": "m1-id", "link_error": [{"task": "own", "args": [], "kwargs": {}, "options": {}, "subtask_type": null, "immutable": false}]}, "subtask_type": null, "immutable": false},
			{"task": "m2", "args": [], "kwargs": {}, "options": {"task_id": "m2-id"}, "subtask_type": null, "immutable": false}]},
			"options": {"link_error": [{"task": "geb", "args": [], "kwargs": {}, "options": {}, "subtask_type": null, "immutable": false}], "task_id": "gbody"},
			"subtask_type": "group", "immutable": false}`)
		sent := failHeader(t, body)
		require.Equal(t, []string{"own", "geb", "geb"}, sentNames(sent))
		for i, want := range []string{"m1-id", "m1-id", "m2-id"} {
			m := sent[i]
			assert.JSONEq(t, `["`+want+`"]`, string(m.task.RawArgs))
			assert.Equal(t, want, m.task.ParentID)
			assert.Equal(t, want, m.task.RootID)
			require.NotNil(t, m.task.GroupIndex)
			assert.Equal(t, []int{0, 1, 0}[i], *m.task.GroupIndex)
		}
		assert.Equal(t, sent[0].task.Group, sent[1].task.Group)
		assert.NotEqual(t, sent[1].task.Group, sent[2].task.Group, "one group of errbacks per task")
	})
}

// sentNames returns the task names of sent messages.
func sentNames(sent []sentMessage) []string {
	out := make([]string, len(sent))
	for i, m := range sent {
		out[i] = m.task.Name
	}
	return out
}
