package celery_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/watermill-kombu/watermill-kombu/celery"
)

// signatureJSON decodes a signature as a Celery client sends it.
func signatureJSON(t *testing.T, s string) celery.Signature {
	t.Helper()
	var sig celery.Signature
	require.NoError(t, json.Unmarshal([]byte(s), &sig))
	return sig
}

// taskNames returns the task names of signatures.
func taskNames(sigs []celery.Signature) []string {
	out := make([]string, len(sigs))
	for i, s := range sigs {
		out[i] = s.Task
	}
	return out
}

// TestWorkerChainLinkOptions: the options of a chain sent as a link apply to its steps as
// Celery 5.7's _chain.run applies them. The link is
//
//	chain(a.s(1).on_error(eb2.s()), b.s(), c.s(3)).on_error(eb.s()).set(queue="qq", countdown=5, priority=3)
//
// with c linked to lk.s() through chain.link. Given to
// signature(link).apply_async((7,), parent_id=..., root_id=..., priority=None), as Celery's
// worker sends a link, Celery sent a with args [7, 1] to queue qq, with an eta 5 s away, no
// priority and the errbacks [eb2, eb], carrying the chain [c, b] in which c has link_error
// [eb] and link [lk], and b has link_error [eb]. So eb runs whichever step fails.
func TestWorkerChainLinkOptions(t *testing.T) {
	w, pub, _ := newTestWorker(t, celery.WorkerConfig{DefaultQueue: "dflt"})
	w.Register("go.t", func(context.Context, *celery.Task) (any, error) { return 7, nil })
	w.Register("b", func(context.Context, *celery.Task) (any, error) { return nil, errors.New("broken") })
	// The link as Celery's client serialized it.
	link := signatureJSON(t, `{"task": "celery.chain", "args": [], "kwargs": {"tasks": [
		{"task": "a", "args": [1], "kwargs": {}, "options": {"link_error": [{"task": "eb2", "args": [], "kwargs": {}, "options": {}, "subtask_type": null, "immutable": false}]}, "subtask_type": null, "immutable": false},
		{"task": "b", "args": [], "kwargs": {}, "options": {}, "subtask_type": null, "immutable": false},
		{"task": "c", "args": [3], "kwargs": {}, "options": {}, "subtask_type": null, "immutable": false}]},
		"options": {"link_error": [{"task": "eb", "args": [], "kwargs": {}, "options": {}, "subtask_type": null, "immutable": false}],
			"link": [{"task": "lk", "args": [], "kwargs": {}, "options": {}, "subtask_type": null, "immutable": false}],
			"queue": "qq", "countdown": 5, "priority": 3},
		"subtask_type": "chain", "immutable": false}`)
	msg, _ := received(t, "q", "go.t", nil, nil, celery.WithLink(link))
	start := time.Now()
	require.NoError(t, w.Handle(msg))
	sent := pub.all()
	require.Len(t, sent, 1)
	first := sent[0]
	assert.Equal(t, "a", first.task.Name)
	assert.Equal(t, "qq", first.topic, "the chain's queue, for its first step")
	assert.JSONEq(t, `[7, 1]`, string(first.task.RawArgs))
	require.NotNil(t, first.task.ETA, "the chain's countdown, for its first step")
	assert.WithinDuration(t, start.Add(5*time.Second), *first.task.ETA, 2*time.Second)
	assert.Nil(t, first.task.Priority, "the worker sends the chain with priority=None")
	assert.Equal(t, []string{"eb2", "eb"}, taskNames(first.task.Errbacks))
	assert.Empty(t, first.task.Callbacks)
	require.Equal(t, []string{"c", "b"}, taskNames(first.task.Chain))
	lastStep, middle := first.task.Chain[0], first.task.Chain[1]
	assert.Equal(t, []any{"eb"}, optionTasks(t, lastStep, "link_error"))
	assert.Equal(t, []any{"lk"}, optionTasks(t, lastStep, "link"), "the chain's link is the last step's")
	assert.Equal(t, []any{"eb"}, optionTasks(t, middle, "link_error"))
	assert.Nil(t, middle.Options["link"])
	assert.Nil(t, middle.Options["queue"], "the chain's other options are for its first step only")

	// The middle step fails: the chain's errback is sent.
	w.Register("a", func(context.Context, *celery.Task) (any, error) { return 8, nil })
	first.task.ETA = nil
	m, err := first.task.Message()
	require.NoError(t, err)
	m.SetContext(context.Background())
	require.NoError(t, w.Handle(m))
	sent = pub.all()
	require.Len(t, sent, 2)
	assert.Equal(t, "b", sent[1].task.Name)
	m, err = sent[1].task.Message()
	require.NoError(t, err)
	m.SetContext(context.Background())
	require.NoError(t, w.Handle(m))
	sent = pub.all()
	require.Len(t, sent, 3)
	assert.Equal(t, "eb", sent[2].task.Name, "the chain's errback, for its failed second step")
	assert.JSONEq(t, `["`+sent[1].task.ID+`"]`, string(sent[2].task.RawArgs))
}

// TestWorkerChainInGroupLinkOptions: a chain in a group sent as a link has its last step in
// the group. Celery 5.7's worker, given the link group(chain(a.s(), b.s()), x.s()) with task_id
// gid-1, sent a with no group, carrying b with group_id gid-1 and group_index 0, and x with
// group gid-1 and index 1. A chain's link_error also reaches each task of a group step:
// chain(a.s(), group(m1.s().on_error(own.s()), m2.s())).on_error(eb.s()) sent a with the
// errbacks [eb], carrying the group whose m1 has link_error [own, eb] and m2 [eb].
func TestWorkerChainInGroupLinkOptions(t *testing.T) {
	w, pub, _ := newTestWorker(t, celery.WorkerConfig{DefaultQueue: "dflt"})
	w.Register("go.t", func(context.Context, *celery.Task) (any, error) { return 7, nil })
	link := signatureJSON(t, `{"task": "celery.group", "args": [], "kwargs": {"tasks": [
		{"task": "celery.chain", "args": [], "kwargs": {"tasks": [
			{"task": "a", "args": [], "kwargs": {}, "options": {}, "subtask_type": null, "immutable": false},
			{"task": "b", "args": [], "kwargs": {}, "options": {}, "subtask_type": null, "immutable": false}]},
			"options": {}, "subtask_type": "chain", "immutable": false},
		{"task": "x", "args": [], "kwargs": {}, "options": {}, "subtask_type": null, "immutable": false}]},
		"options": {"task_id": "gid-1"}, "subtask_type": "group", "immutable": false}`)
	msg, _ := received(t, "q", "go.t", nil, nil, celery.WithLink(link))
	require.NoError(t, w.Handle(msg))
	sent := pub.all()
	require.Len(t, sent, 2)
	assert.Equal(t, "a", sent[0].task.Name)
	assert.Empty(t, sent[0].task.Group, "the chain's first step is not in the group")
	require.Len(t, sent[0].task.Chain, 1)
	b := sent[0].task.Chain[0]
	assert.Equal(t, "gid-1", b.Options["group_id"], "the chain's last step is in the group")
	assert.EqualValues(t, json.Number("0"), b.Options["group_index"])
	assert.Equal(t, "x", sent[1].task.Name)
	assert.Equal(t, "gid-1", sent[1].task.Group)

	link = signatureJSON(t, `{"task": "celery.chain", "args": [], "kwargs": {"tasks": [
		{"task": "a", "args": [], "kwargs": {}, "options": {}, "subtask_type": null, "immutable": false},
		{"task": "celery.group", "args": [], "kwargs": {"tasks": [
			{"task": "m1", "args": [], "kwargs": {}, "options": {"link_error": [{"task": "own", "args": [], "kwargs": {}, "options": {}, "subtask_type": null, "immutable": false}]}, "subtask_type": null, "immutable": false},
			{"task": "m2", "args": [], "kwargs": {}, "options": {}, "subtask_type": null, "immutable": false}]},
			"options": {}, "subtask_type": "group", "immutable": false}]},
		"options": {"link_error": [{"task": "eb", "args": [], "kwargs": {}, "options": {}, "subtask_type": null, "immutable": false}]},
		"subtask_type": "chain", "immutable": false}`)
	msg, _ = received(t, "q", "go.t", nil, nil, celery.WithLink(link))
	require.NoError(t, w.Handle(msg))
	sent = pub.all()[2:]
	require.Len(t, sent, 1)
	assert.Equal(t, []string{"eb"}, taskNames(sent[0].task.Errbacks))
	require.Len(t, sent[0].task.Chain, 1)
	var group struct {
		Kwargs struct {
			Tasks []celery.Signature `json:"tasks"`
		} `json:"kwargs"`
	}
	raw, err := json.Marshal(sent[0].task.Chain[0])
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &group))
	require.Len(t, group.Kwargs.Tasks, 2)
	assert.Equal(t, []any{"own", "eb"}, optionTasks(t, group.Kwargs.Tasks[0], "link_error"))
	assert.Equal(t, []any{"eb"}, optionTasks(t, group.Kwargs.Tasks[1], "link_error"))
}

// optionTasks returns the task names of the signatures in a list option of sig.
func optionTasks(t *testing.T, sig celery.Signature, key string) []any {
	t.Helper()
	list, _ := sig.Options[key].([]any)
	out := []any{}
	for _, s := range list {
		m, ok := s.(map[string]any)
		require.True(t, ok, "%v", s)
		out = append(out, m["task"])
	}
	return out
}
