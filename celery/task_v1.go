package celery

// v1 writes a protocol 1 message: headers empty but for extra ones and ignore_result, and a
// body dict with Celery's keys in Celery's order, then root_id, parent_id and shadow when set.
func (t *Task) v1(id string, args, kwargs []byte) (headers, body []byte, err error) {
	h := newHeaderWriter(64, len(t.Headers) > 0)
	if err := h.extra(t.Headers); err != nil {
		return nil, nil, err
	}
	if t.IgnoreResult {
		// Celery's worker reads a protocol 1 task's message headers over its body fields.
		h.raw("ignore_result", []byte("true"))
	}
	headers = h.bytes()

	b := newHeaderWriter(384+len(args)+len(kwargs), false)
	b.str("task", t.Name)
	b.str("id", id)
	b.raw("args", args)
	b.raw("kwargs", kwargs)
	b.nullable("group", t.Group)
	b.intPtr("group_index", t.GroupIndex)
	b.int("retries", t.Retries)
	b.time("eta", t.ETA)
	b.time("expires", t.Expires)
	b.raw("utc", []byte("true"))
	sigs, err := appendSignatures(nil, t.Callbacks)
	if err != nil {
		return nil, nil, err
	}
	b.raw("callbacks", sigs)
	if sigs, err = appendSignatures(nil, t.Errbacks); err != nil {
		return nil, nil, err
	}
	b.raw("errbacks", sigs)
	b.timeLimit("timelimit", t.TimeLimit)
	b.nullable("taskset", t.Group)
	if sigs, err = appendSignature(nil, t.Chord); err != nil {
		return nil, nil, err
	}
	b.raw("chord", sigs)
	// Celery's protocol 1 client does not write these, but its worker reads them from the
	// body (hybrid_to_proto2): written only when set, so that they are never dropped.
	if t.RootID != "" && t.RootID != id {
		b.str("root_id", t.RootID)
	}
	if t.ParentID != "" {
		b.str("parent_id", t.ParentID)
	}
	if t.Shadow != "" {
		b.str("shadow", t.Shadow)
	}
	return headers, b.bytes(), nil
}
