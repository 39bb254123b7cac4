package celery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
)

// jsonKeys returns the keys of a JSON object document, in order.
func jsonKeys(t *testing.T, doc []byte) []string {
	t.Helper()
	var keys []string
	dec := json.NewDecoder(bytes.NewReader(doc))
	_, err := dec.Token() // {
	require.NoError(t, err)
	for dec.More() {
		k, err := dec.Token()
		require.NoError(t, err)
		keys = append(keys, k.(string))
		var skip json.RawMessage
		require.NoError(t, dec.Decode(&skip))
	}
	return keys
}

// hideNaN replaces the NaN words of a document, which encoding/json does not read.
func hideNaN(doc []byte) []byte { return bytes.ReplaceAll(doc, []byte("NaN"), []byte("0")) }

// extendedTask is the message of a task as a Celery client sends it, with arguments that
// float64 would change, stamps, and the routing key it was delivered with.
func extendedTask(t *testing.T, task *celery.Task) *message.Message {
	t.Helper()
	msg, err := task.Message()
	require.NoError(t, err)
	msg.SetContext(context.Background())
	msg.Metadata.Set(kombu.MetadataQueue, "tasks-q")
	msg.Metadata.Set(kombu.MetadataRoutingKey, "tasks-rk")
	return msg
}

// TestWorkerResultExtended checks that every state the worker stores carries the task's
// request with WorkerConfig.ResultExtended, in Celery's keys and order, and none without.
func TestWorkerResultExtended(t *testing.T) {
	w, pub, res := newTestWorker(t, celery.WorkerConfig{ResultExtended: true, TrackStarted: true, Hostname: "go@test"})
	w.Register("go.echo", func(context.Context, *celery.Task) (any, error) { return "ok", nil })
	w.Register("go.fail", func(context.Context, *celery.Task) (any, error) { return nil, errors.New("broke") })
	w.Register("go.again", func(context.Context, *celery.Task) (any, error) {
		return nil, celery.Retry(time.Minute, errors.New("later"))
	})
	args := json.RawMessage(`[18446744073709551617, 0.1, "x", NaN]`)
	kwargs := json.RawMessage(`{"k": 1.50, "n": null}`)
	newTask := func(name, id string) *celery.Task {
		return &celery.Task{Name: name, ID: id, RawArgs: args, RawKwargs: kwargs, Retries: 2,
			StampedHeaders: []string{"mark"}, Stamps: map[string]any{"mark": "m1"}}
	}
	want := func(retries int) *celery.RequestInfo {
		return &celery.RequestInfo{Args: args, Kwargs: kwargs, Worker: "go@test", Retries: intp(retries),
			Queue: "tasks-rk", StampedHeaders: []string{"mark"}, Stamps: map[string]any{"mark": "m1"}}
	}
	check := func(t *testing.T, name string, r celery.TaskResult, retries int) {
		t.Helper()
		exp := want(retries)
		exp.Name = name
		require.NotNil(t, r.Request, r.Status)
		assert.Equal(t, exp, r.Request, r.Status)
		doc, err := r.MarshalJSON()
		require.NoError(t, err)
		keys := []string{"status", "result", "traceback", "children", "date_done",
			"name", "args", "kwargs", "worker", "retries", "queue", "stamped_headers", "mark", "task_id"}
		assert.Equal(t, keys, jsonKeys(t, hideNaN(doc)), r.Status)
	}

	require.NoError(t, w.Handle(extendedTask(t, newTask("go.echo", "ok-1"))))
	require.NoError(t, w.Handle(extendedTask(t, newTask("go.fail", "bad-1"))))
	require.NoError(t, w.Handle(extendedTask(t, newTask("go.again", "again-1"))))
	expired := newTask("go.echo", "old-1")
	past := time.Now().Add(-time.Hour)
	expired.Expires = &past
	require.NoError(t, w.Handle(extendedTask(t, expired)))

	for id, states := range map[string][]string{
		"ok-1":    {celery.StateStarted, celery.StateSuccess},
		"bad-1":   {celery.StateStarted, celery.StateFailure},
		"again-1": {celery.StateStarted, celery.StateRetry},
		"old-1":   {celery.StateRevoked},
	} {
		assert.Equal(t, states, res.states(id), id)
	}
	res.mu.Lock()
	stored := map[string][]celery.TaskResult{}
	for id, rs := range res.m {
		stored[id] = append([]celery.TaskResult(nil), rs...)
	}
	res.mu.Unlock()
	for _, r := range stored["ok-1"] {
		check(t, "go.echo", r, 2)
	}
	for _, r := range stored["bad-1"] {
		check(t, "go.fail", r, 2)
	}
	for _, r := range stored["again-1"] {
		check(t, "go.again", r, 2) // the retries of the run that asked for the retry, as Celery
	}
	check(t, "go.echo", stored["old-1"][0], 2)
	sent := pub.all()
	require.Len(t, sent, 1)
	assert.Equal(t, 3, sent[0].task.Retries)

	t.Run("topic_without_routing_key", func(t *testing.T) {
		msg, id := received(t, "from-topic", "go.echo", []any{1}, nil)
		require.NoError(t, w.Handle(msg))
		r, err := res.Get(context.Background(), id)
		require.NoError(t, err)
		require.NotNil(t, r.Request)
		assert.Equal(t, "from-topic", r.Request.Queue)
		assert.Equal(t, `[1]`, string(r.Request.Args))
		assert.Equal(t, `{}`, string(r.Request.Kwargs))
	})
	t.Run("unknown_task", func(t *testing.T) {
		// As Celery's Consumer.on_unknown_task: a request with none of the values.
		msg, id := received(t, "q", "go.nobody", []any{1}, nil)
		require.NoError(t, w.Handle(msg))
		r, err := res.Get(context.Background(), id)
		require.NoError(t, err)
		assert.Equal(t, &celery.RequestInfo{}, r.Request)
		doc, err := r.MarshalJSON()
		require.NoError(t, err)
		assert.Contains(t, string(doc), `"name":null,"args":null,"kwargs":null,"worker":null,"retries":null,"queue":null,"task_id":`)
	})
	t.Run("chain_step", func(t *testing.T) {
		// As Celery's backend._fail_chain: the step's request is made from its signature.
		task := &celery.Task{Name: "go.fail", ID: "chain-1", RawArgs: json.RawMessage(`[]`),
			Chain: []celery.Signature{{Raw: json.RawMessage(`{"task": "py.next", "args": [7, 1e-7], "kwargs": {"k": "v"}, ` +
				`"options": {"task_id": "step-1", "group_id": "g-1"}, "subtask_type": null, "immutable": false}`)}}}
		require.NoError(t, w.Handle(extendedTask(t, task)))
		r, err := res.Get(context.Background(), "step-1")
		require.NoError(t, err)
		assert.Equal(t, celery.StateFailure, r.Status)
		assert.Equal(t, &celery.RequestInfo{Name: "py.next", Args: json.RawMessage(`[7, 1e-7]`),
			Kwargs: json.RawMessage(`{"k": "v"}`), Retries: intp(0)}, r.Request)
	})
	t.Run("off", func(t *testing.T) {
		w, _, res := newTestWorker(t, celery.WorkerConfig{TrackStarted: true})
		w.Register("go.echo", func(context.Context, *celery.Task) (any, error) { return "ok", nil })
		require.NoError(t, w.Handle(extendedTask(t, newTask("go.echo", "plain-1"))))
		require.NoError(t, w.Handle(extendedTask(t, newTask("go.nobody", "plain-2"))))
		for _, id := range []string{"plain-1", "plain-2"} {
			r, err := res.Get(context.Background(), id)
			require.NoError(t, err)
			assert.Nil(t, r.Request, id)
			doc, err := r.MarshalJSON()
			require.NoError(t, err)
			assert.NotContains(t, string(doc), `"name"`)
		}
	})
}
