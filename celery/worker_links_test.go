package celery_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/watermill-kombu/watermill-kombu/celery"
)

// TestWorkerSeveralLinksAsGroups: a task with several links sends them as Celery 5.7's worker
// does (trace.py): each group link as a group, then the other links together as one more
// group, and stores the groups as its children. A Celery worker running
// ok.apply_async((2,), link=[rec.s("s1"), group(rec.s("g3"), rec.s("g4")), rec.s("s2")])
// sent g3 and g4 (group indexes 0 and 1) in one group, then s1 and s2 (indexes 0 and 1) in
// another, and stored the children
// [[[g, null], [[[g3, null], null], [[g4, null], null]]], [[g2, null], [[[s1, null], null], [[s2, null], null]]]].
// Its errbacks are sent as one group too, even a single one.
func TestWorkerSeveralLinksAsGroups(t *testing.T) {
	w, pub, res := newTestWorker(t, celery.WorkerConfig{})
	w.Register("go.ok", func(context.Context, *celery.Task) (any, error) { return 2, nil })
	w.Register("go.fail", func(context.Context, *celery.Task) (any, error) { return nil, errors.New("broken") })
	group := celery.Signature{Task: "celery.group", SubtaskType: "group",
		Kwargs: map[string]any{"tasks": []celery.Signature{sig("rec", []any{"g3"}, nil), sig("rec", []any{"g4"}, nil)}}}
	// A chord link, which this worker does not send, is skipped; the other links are sent.
	unsupported := celery.Signature{Task: "celery.chord", SubtaskType: "chord"}
	msg, id := received(t, "q", "go.ok", nil, nil,
		celery.WithLink(sig("rec", []any{"s1"}, nil), group, unsupported, sig("rec", []any{"s2"}, nil)))
	require.NoError(t, w.Handle(msg))
	sent := pub.all()
	require.Len(t, sent, 4)
	for i, want := range []string{"g3", "g4", "s1", "s2"} {
		assert.JSONEq(t, `[2, "`+want+`"]`, string(sent[i].task.RawArgs))
		require.NotNil(t, sent[i].task.GroupIndex, want)
	}
	assert.Equal(t, []int{0, 1, 0, 2}, []int{*sent[0].task.GroupIndex, *sent[1].task.GroupIndex,
		*sent[2].task.GroupIndex, *sent[3].task.GroupIndex}, "the skipped link keeps its place in the group")
	g1, g2 := sent[0].task.Group, sent[2].task.Group
	require.NotEmpty(t, g1)
	require.NotEmpty(t, g2)
	assert.NotEqual(t, g1, g2)
	assert.Equal(t, g1, sent[1].task.Group)
	assert.Equal(t, g2, sent[3].task.Group)
	r, err := res.Get(context.Background(), id)
	require.NoError(t, err)
	member := func(m sentMessage) any { return []any{[]any{m.task.ID, nil}, nil} }
	assert.Equal(t, []any{
		[]any{[]any{g1, nil}, []any{member(sent[0]), member(sent[1])}},
		[]any{[]any{g2, nil}, []any{member(sent[2]), member(sent[3])}},
	}, r.Children)

	msg, id = received(t, "q", "go.fail", nil, nil, celery.WithLinkError(sig("on_error", nil, nil)))
	require.NoError(t, w.Handle(msg))
	sent = pub.all()[4:]
	require.Len(t, sent, 1)
	assert.JSONEq(t, `["`+id+`"]`, string(sent[0].task.RawArgs))
	assert.NotEmpty(t, sent[0].task.Group, "an errback is sent in a group of its own")
	require.NotNil(t, sent[0].task.GroupIndex)
	assert.Equal(t, 0, *sent[0].task.GroupIndex)
	assert.Equal(t, id, sent[0].task.ParentID)
}

// TestWorkerGroupLinkOptions: the options of a group sent as a link override those of each of
// its tasks, link and link_error included, as Celery 5.7's group.apply_async passes them to
// each task's apply_async. Celery's worker, given the link
//
//	group(a.s(1).on_error(eb2.s()), b.s().set(link=[lk2.s()], queue="own")).set(link_error=[eb.s()], link=[lk.s()], queue="gq")
//
// sent a with args [7, 1] and b with [7], both to queue gq with the callbacks [lk] and the
// errbacks [eb].
func TestWorkerGroupLinkOptions(t *testing.T) {
	w, pub, _ := newTestWorker(t, celery.WorkerConfig{DefaultQueue: "dflt"})
	w.Register("go.t", func(context.Context, *celery.Task) (any, error) { return 7, nil })
	link := signatureJSON(t, `{"task": "celery.group", "args": [], "kwargs": {"tasks": [
		{"task": "a", "args": [1], "kwargs": {}, "options": {"link_error": [{"task": "eb2", "args": [], "kwargs": {}, "options": {}, "subtask_type": null, "immutable": false}]}, "subtask_type": null, "immutable": false},
		{"task": "b", "args": [], "kwargs": {}, "options": {"link": [{"task": "lk2", "args": [], "kwargs": {}, "options": {}, "subtask_type": null, "immutable": false}], "queue": "own"}, "subtask_type": null, "immutable": false}]},
		"options": {"link_error": [{"task": "eb", "args": [], "kwargs": {}, "options": {}, "subtask_type": null, "immutable": false}],
			"link": [{"task": "lk", "args": [], "kwargs": {}, "options": {}, "subtask_type": null, "immutable": false}], "queue": "gq"},
		"subtask_type": "group", "immutable": false}`)
	msg, _ := received(t, "q", "go.t", nil, nil, celery.WithLink(link))
	require.NoError(t, w.Handle(msg))
	sent := pub.all()
	require.Len(t, sent, 2)
	for i, want := range []string{`[7, 1]`, `[7]`} {
		m := sent[i]
		assert.JSONEq(t, want, string(m.task.RawArgs))
		assert.Equal(t, "gq", m.topic, m.task.Name)
		assert.Equal(t, []string{"lk"}, taskNames(m.task.Callbacks), m.task.Name)
		assert.Equal(t, []string{"eb"}, taskNames(m.task.Errbacks), m.task.Name)
	}
}
