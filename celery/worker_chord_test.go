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

// TestWorkerChordBodySendFails: when sending a chord's body fails, the header task's message
// is Nacked and the claim given up, so that its redelivery sends the body, once.
func TestWorkerChordBodySendFails(t *testing.T) {
	url := testenv.RedisURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opts, err := redis.ParseURL(url)
	require.NoError(t, err)
	client := redis.NewClient(opts)
	defer client.Close()
	results, err := redisbackend.New(redisbackend.Config{Client: client, Expires: time.Minute})
	require.NoError(t, err)
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
