package celery

import "strconv"

// v1 writes a protocol 1 message: empty headers (but for extra ones) and a body dict with
// Celery's keys in Celery's order.
func (t *Task) v1(id string, args, kwargs []byte) (headers, body []byte, err error) {
	h := newHeaderWriter()
	if err := h.extra(t.Headers); err != nil {
		return nil, nil, err
	}
	headers = h.bytes()

	b := newHeaderWriter()
	b.str("task", t.Name)
	b.str("id", id)
	b.raw("args", args)
	b.raw("kwargs", kwargs)
	b.nullable("group", t.Group)
	b.intPtr("group_index", t.GroupIndex)
	b.raw("retries", strconv.AppendInt(nil, int64(t.Retries), 10))
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
	b.raw("timelimit", appendTimeLimit(nil, t.TimeLimit))
	b.nullable("taskset", t.Group)
	if sigs, err = appendSignature(nil, t.Chord); err != nil {
		return nil, nil, err
	}
	b.raw("chord", sigs)
	return headers, b.bytes(), nil
}
