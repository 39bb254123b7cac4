package celery

import (
	"encoding/json"
)

// requestInfo is what the result of the task at hand stores of its request with
// WorkerConfig.ResultExtended (nil without it), as Celery's worker stores its request: the
// arguments as they were received, the retries count of this run.
func (r *run) requestInfo() *RequestInfo {
	if !r.w.cfg.ResultExtended {
		return nil
	}
	t := r.t
	kwargs := t.RawKwargs
	if kwargs == nil {
		kwargs, _ = json.Marshal(t.Kwargs)
	}
	retries := t.Retries
	return &RequestInfo{Name: t.Name, Args: t.rawArgs(), Kwargs: kwargs, Worker: r.w.cfg.Hostname,
		Retries: &retries, Queue: r.routingKey, StampedHeaders: t.StampedHeaders, Stamps: t.Stamps}
}

// chainStepRequest is what the failure of a chain step stores of its request with
// WorkerConfig.ResultExtended (nil without it). Celery's backend._fail_chain makes the step's
// request from its signature: the signature's task, args and kwargs, its options' retries
// (0 by default), stamped_headers and stamps; no worker and no queue.
func (r *run) chainStepRequest(step Signature) *RequestInfo {
	if !r.w.cfg.ResultExtended {
		return nil
	}
	q := &RequestInfo{Retries: new(int)}
	raw, err := step.MarshalJSON()
	if err != nil {
		return q
	}
	fields, err := splitPyObject(raw)
	if err != nil {
		return q
	}
	_ = json.Unmarshal(fields["task"], &q.Name)
	q.Args, q.Kwargs = nonNull(fields["args"]), nonNull(fields["kwargs"])
	opts, err := splitPyObject(fields["options"])
	if err != nil {
		return q
	}
	if n, ok := opts["retries"]; ok {
		var v int
		if json.Unmarshal(n, &v) == nil {
			q.Retries = &v
		}
	}
	if !isJSONNull(opts["stamps"]) {
		_ = json.Unmarshal(opts["stamped_headers"], &q.StampedHeaders)
		_ = decodeJSONNumbers(opts["stamps"], &q.Stamps)
	}
	return q
}

// nonNull returns raw, nil when it is null.
func nonNull(raw json.RawMessage) json.RawMessage {
	if isJSONNull(raw) {
		return nil
	}
	return raw
}
