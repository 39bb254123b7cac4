package celery

import (
	"encoding/json"
	"reflect"
)

// chainRunOptions are the options of a chain signature that Celery's _chain.run takes as its
// own parameters, so that they do not reach the first step as apply_async options: link goes
// to the last step, link_error to every step, and task_id, group_id, group_index and chord to
// the last step (whose result is the chain's). Priority is not passed on either: Celery's
// worker sends a link or the next step of a chain with priority=None (task_inherit_parent_priority
// is off), which _chain.apply_async lets override the chain's own priority.
var chainRunOptions = map[string]bool{
	"task_id": true, "link": true, "link_error": true, "group_id": true, "group_index": true,
	"chord": true, "root_id": true, "parent_id": true, "publisher": true, "producer": true,
	"chain": true, "priority": true,
}

// applyChainOptions returns the steps of a chain signature with the chain's options applied
// to them, as Celery's _chain.run applies them when the worker sends the chain as a link or
// as a step: each errback of link_error is added to the errbacks of every step (a group step
// passes it to each of its tasks), so that the errback runs whichever step fails; the
// callbacks of link are added to the last step; task_id (when the last step has none),
// group_id (likewise), group_index and chord go to the last step; and the other options
// (queue, routing_key, countdown, expires...) override those of the first step only, which
// is the task _chain.run sends with them.
func applyChainOptions(steps []Signature, opts map[string]any) []Signature {
	if len(opts) == 0 || len(steps) == 0 {
		return steps
	}
	steps = append([]Signature(nil), steps...)
	if errbacks := listOption(opts["link_error"]); len(errbacks) > 0 {
		for i := range steps {
			steps[i] = linkErrorTo(steps[i], errbacks)
		}
	}
	last := len(steps) - 1
	if links := listOption(opts["link"]); len(links) > 0 {
		s, o := editable(steps[last])
		o["link"] = append(listOption(o["link"]), links...)
		steps[last] = withOptions(s, o)
	}
	for _, k := range []string{"task_id", "group_id", "group_index", "chord"} {
		v, ok := opts[k]
		if !ok || v == nil {
			continue
		}
		s, o := editable(steps[last])
		if _, set := o[k]; set && (k == "task_id" || k == "group_id") {
			continue // Signature.freeze keeps a task id or group id the step already has.
		}
		o[k] = v
		steps[last] = withOptions(s, o)
	}
	first := map[string]any{}
	for k, v := range opts {
		if !chainRunOptions[k] && v != nil {
			first[k] = v
		}
	}
	if len(first) > 0 {
		s, o := editable(steps[0])
		for k, v := range first {
			o[k] = v
		}
		steps[0] = withOptions(s, o)
	}
	return steps
}

// linkErrorTo adds errbacks to the errbacks of sig, as Celery's Signature.link_error does (an
// errback it already has is not added twice); for a group, to those of each of its tasks, as
// group.link_error does.
func linkErrorTo(sig Signature, errbacks []any) Signature {
	s, o := editable(sig)
	if s.SubtaskType == "group" {
		if tasks, ok := canvasTasks(s); ok {
			for i := range tasks {
				tasks[i] = linkErrorTo(tasks[i], errbacks)
			}
			kw := make(map[string]any, len(s.Kwargs))
			for k, v := range s.Kwargs {
				kw[k] = v
			}
			kw["tasks"] = tasks
			s.Kwargs = kw
			return withOptions(s, o)
		}
	}
	have := listOption(o["link_error"])
	for _, eb := range errbacks {
		if !containsJSON(have, eb) {
			have = append(have, eb)
		}
	}
	o["link_error"] = have
	return withOptions(s, o)
}

// editable returns sig decoded from its received JSON, and a copy of its options that can be
// changed without changing the signature it came from.
func editable(sig Signature) (Signature, map[string]any) {
	if len(sig.Raw) > 0 {
		var s Signature
		if json.Unmarshal(sig.Raw, &s) == nil {
			sig = s
		}
	}
	o := make(map[string]any, len(sig.Options)+1)
	for k, v := range sig.Options {
		o[k] = v
	}
	return sig, o
}

// withOptions returns sig with opts as its options, sent from its fields rather than as
// it was received.
func withOptions(sig Signature, opts map[string]any) Signature {
	sig.Options = opts
	sig.Raw = nil
	return sig
}

// canvasTasks returns the signatures in the tasks of a group or chain signature.
func canvasTasks(sig Signature) ([]Signature, bool) {
	raw, ok := sig.Kwargs["tasks"]
	if !ok {
		return nil, false
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, false
	}
	var tasks []Signature
	if json.Unmarshal(b, &tasks) != nil {
		return nil, false
	}
	return tasks, true
}

// listOption returns a list option (link, link_error) as a new list: Celery accepts a single
// signature there too.
func listOption(v any) []any {
	switch l := v.(type) {
	case nil:
		return nil
	case []any:
		return append([]any(nil), l...)
	case []Signature:
		out := make([]any, len(l))
		for i, s := range l {
			out[i] = s
		}
		return out
	default:
		return []any{v}
	}
}

// containsJSON tells whether list holds a value equal to v as JSON, as Python compares the
// signature dicts.
func containsJSON(list []any, v any) bool {
	want, ok := asJSONValue(v)
	if !ok {
		return false
	}
	for _, x := range list {
		if got, ok := asJSONValue(x); ok && reflect.DeepEqual(got, want) {
			return true
		}
	}
	return false
}

func asJSONValue(v any) (any, bool) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	var out any
	if decodeJSONNumbers(b, &out) != nil {
		return nil, false
	}
	return out, true
}
