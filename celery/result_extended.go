package celery

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"

	"github.com/watermill-kombu/watermill-kombu/internal/pywire"
)

// RequestInfo is what a result stores of the task request it belongs to when the worker runs
// with Celery's result_extended setting (WorkerConfig.ResultExtended): the keys a Celery
// client reads as AsyncResult.name, .args, .kwargs, .worker, .retries and .queue, and the
// task's stamps. An empty string, a nil json.RawMessage and a nil Retries are stored as null,
// as Celery stores a request that lacks the value.
type RequestInfo struct {
	// Name is the task's name (Celery's request.task: the registered name, not the shadow).
	Name string
	// Args and Kwargs are the arguments the task was sent with: a JSON list and a JSON
	// object, kept as they were received (big integers and floats stay exact; Python's NaN
	// and Infinity are kept as words).
	Args, Kwargs json.RawMessage
	// Worker is the hostname of the worker that ran the task (WorkerConfig.Hostname).
	Worker string
	// Retries is how often the task had been retried when the state was stored.
	Retries *int
	// Queue is the routing key the task was delivered with (delivery_info's routing_key).
	Queue string
	// StampedHeaders and Stamps are the task's stamps. As Celery, they are stored only when
	// Stamps is not empty: stamped_headers, then each stamp StampedHeaders names as a key of
	// its own (in StampedHeaders' order; a stamp named like one of the result's own keys is
	// left out rather than replacing it).
	StampedHeaders []string
	Stamps         map[string]any
}

// requestMeta holds the extended keys of a stored result when it is read back. A key's
// absence leaves its field nil, its null value "null".
type requestMeta struct {
	Name           json.RawMessage `json:"name"`
	Args           json.RawMessage `json:"args"`
	Kwargs         json.RawMessage `json:"kwargs"`
	Worker         json.RawMessage `json:"worker"`
	Retries        json.RawMessage `json:"retries"`
	Queue          json.RawMessage `json:"queue"`
	StampedHeaders json.RawMessage `json:"stamped_headers"`
}

// resultKeys are the keys of a stored result other than the stamps.
var resultKeys = []string{"status", "result", "traceback", "children", "date_done", "group_id", "parent_id",
	"name", "args", "kwargs", "worker", "retries", "queue", "stamped_headers", "task_id"}

// appendRequest appends the extended keys of q to a JSON object under construction (dst ends
// inside the object, after at least one key), in the order of Celery's
// BaseBackend._get_result_meta.
func appendRequest(dst []byte, q *RequestInfo) ([]byte, error) {
	str := func(key, s string) {
		dst = appendKey(dst, key)
		if s == "" {
			dst = append(dst, "null"...)
			return
		}
		b, _ := json.Marshal(s)
		dst = append(dst, b...)
	}
	raw := func(key string, v json.RawMessage) error {
		dst = appendKey(dst, key)
		var err error
		dst, err = appendPyJSON(dst, v)
		return err
	}
	str("name", q.Name)
	if err := raw("args", q.Args); err != nil {
		return nil, err
	}
	if err := raw("kwargs", q.Kwargs); err != nil {
		return nil, err
	}
	str("worker", q.Worker)
	dst = appendKey(dst, "retries")
	if q.Retries == nil {
		dst = append(dst, "null"...)
	} else {
		dst = strconv.AppendInt(dst, int64(*q.Retries), 10)
	}
	str("queue", q.Queue)
	if len(q.Stamps) == 0 {
		return dst, nil
	}
	headers, err := json.Marshal(q.StampedHeaders)
	if err != nil {
		return nil, err
	}
	dst = append(appendKey(dst, "stamped_headers"), headers...)
	seen := map[string]bool{}
	for _, h := range q.StampedHeaders {
		v, ok := q.Stamps[h]
		if !ok || seen[h] || slices.Contains(resultKeys, h) {
			continue
		}
		seen[h] = true
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		dst = append(appendKey(dst, h), b...)
	}
	return dst, nil
}

// appendKey appends `,"key":`.
func appendKey(dst []byte, key string) []byte {
	b, _ := json.Marshal(key)
	return append(append(append(dst, ','), b...), ':')
}

// appendPyJSON appends a JSON value compacted, keeping Python's NaN and Infinity words (which
// encoding/json rejects); nil is null.
func appendPyJSON(dst []byte, v json.RawMessage) ([]byte, error) {
	if len(v) == 0 {
		return append(dst, "null"...), nil
	}
	hidden, replaced := pywire.HideFloats(v)
	var buf bytes.Buffer
	if err := json.Compact(&buf, hidden); err != nil {
		return nil, err
	}
	if replaced {
		return append(dst, pywire.ShowFloats(buf.Bytes())...), nil
	}
	return append(dst, buf.Bytes()...), nil
}

// decodeRequest reads the extended keys of a stored result document b (with Python's floats
// hidden when hidden is set); nil when it has none. A value of another type than Celery
// writes is read as null rather than failing the whole result, which a backend reads before
// it stores a new state.
func decodeRequest(b []byte, m requestMeta, hidden bool) *RequestInfo {
	if m.Name == nil && m.Args == nil && m.Kwargs == nil && m.Worker == nil && m.Retries == nil && m.Queue == nil {
		return nil
	}
	q := &RequestInfo{}
	str := func(raw json.RawMessage) string {
		var s string
		if !isJSONNull(raw) && json.Unmarshal(raw, &s) != nil {
			return ""
		}
		return s
	}
	val := func(raw json.RawMessage) json.RawMessage {
		if isJSONNull(raw) {
			return nil
		}
		if hidden {
			return pywire.ShowFloats(raw)
		}
		return raw
	}
	q.Name, q.Worker, q.Queue = str(m.Name), str(m.Worker), str(m.Queue)
	q.Args, q.Kwargs = val(m.Args), val(m.Kwargs)
	var n int
	if !isJSONNull(m.Retries) && json.Unmarshal(m.Retries, &n) == nil {
		q.Retries = &n
	}
	if isJSONNull(m.StampedHeaders) || json.Unmarshal(m.StampedHeaders, &q.StampedHeaders) != nil {
		q.StampedHeaders = nil
		return q
	}
	var keys map[string]json.RawMessage
	if json.Unmarshal(b, &keys) != nil {
		return q
	}
	for _, h := range q.StampedHeaders {
		raw, ok := keys[h]
		var v any
		if !ok || slices.Contains(resultKeys, h) || decodeJSONNumbers(raw, &v) != nil {
			continue
		}
		if q.Stamps == nil {
			q.Stamps = map[string]any{}
		}
		if hidden {
			v = showFloatValues(v)
		}
		q.Stamps[h] = v
	}
	return q
}
