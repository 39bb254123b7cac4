package celery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/pywire"
)

// Sentinel errors of the task protocol, for errors.Is.
var (
	// ErrNotATask means a message is not a Celery task: no `task` header and no protocol 1
	// task body.
	ErrNotATask = errors.New("celery: message is not a Celery task")
	// ErrInvalidTask means a Celery task is malformed, or cannot be built from the values given.
	ErrInvalidTask = errors.New("celery: invalid Celery task")
	// ErrTaskArguments means a task's arguments do not fit the Go values given to DecodeArgs or
	// DecodeKwargs.
	ErrTaskArguments = errors.New("celery: task arguments do not match")
)

// TaskFromMessage reads the Celery task in a message received through kombu.EnvelopeMarshaler (or built
// by NewTask). It understands what Celery's worker does:
//
//   - protocol 2: a `task` header, and a body [args, kwargs, embed];
//   - protocol 1: no `task` header, and a body dict with task, id, args, kwargs...;
//   - hybrid: a body dict with args, whatever the headers; the headers then override the
//     body's fields, as in Celery's strategy.
//
// A message that is none of these gives an error wrapping ErrNotATask; a malformed task one
// wrapping ErrInvalidTask.
func TaskFromMessage(msg *message.Message) (*Task, error) {
	md := msg.Metadata
	if reason := md[kombu.MetadataDecodeError]; reason != "" {
		return nil, undecodedMessage(msg.UUID, reason)
	}
	if md[kombu.MetadataRaw] == "true" {
		return nil, fmt.Errorf("%w: message %s is not a Kombu envelope", ErrNotATask, msg.UUID)
	}
	var headers map[string]json.RawMessage
	if h := md[kombu.MetadataHeaders]; h != "" {
		var err error
		if headers, err = rawMembers([]byte(h)); err != nil {
			return nil, fmt.Errorf("%w: message %s: headers: %w", ErrInvalidTask, msg.UUID, err)
		}
	}
	// Python's NaN and Infinity (task_floats.go) are hidden while the body is taken apart,
	// and kept in the arguments.
	payload, pyFloats := pywire.HideFloats(bytes.TrimSpace(msg.Payload))
	show := func(raw json.RawMessage) json.RawMessage {
		if pyFloats {
			return pywire.ShowFloats(raw)
		}
		return raw
	}
	isV2 := isJSONString(headers["task"])
	var bodyDict map[string]json.RawMessage
	if len(payload) > 0 && payload[0] == '{' {
		if err := json.Unmarshal(payload, &bodyDict); err != nil {
			return nil, fmt.Errorf("%w: message %s: body: %w", ErrInvalidTask, msg.UUID, err)
		}
	}
	_, hybrid := bodyDict["args"]

	t := &Task{ReplyTo: md[kombu.MetadataReplyTo], CorrelationID: md[kombu.MetadataCorrelationID], UTC: true,
		Compression: md[kombu.MetadataCompression]}
	if p, ok := md[kombu.MetadataPriority]; ok {
		// EnvelopeMarshaler writes the priority as strconv.Itoa does, which Atoi reads as
		// fmt.Sscan would; other text (a base prefix, a leading zero: octal) goes to Sscan.
		n, err := strconv.Atoi(p)
		if err != nil || strconv.Itoa(n) != p {
			_, err = fmt.Sscan(p, &n)
		}
		if err == nil {
			t.Priority = &n
		}
	}
	fields := headers
	switch {
	case hybrid || (!isV2 && bodyDict != nil):
		if !isV2 && !isJSONString(bodyDict["task"]) {
			return nil, fmt.Errorf("%w: message %s has no task header and its body has no task name", ErrNotATask, msg.UUID)
		}
		t.Protocol = 1
		fields = make(map[string]json.RawMessage, len(bodyDict)+len(headers))
		for k, v := range bodyDict {
			fields[k] = v
		}
		if g, ok := fields["taskset"]; ok && !isJSONNull(g) {
			fields["group"] = g
		}
		for k, v := range headers {
			fields[k] = v
		}
		t.RawArgs, t.RawKwargs = show(fields["args"]), show(fields["kwargs"])
		delete(fields, "args")
		delete(fields, "kwargs")
		delete(fields, "taskset")
		if err := t.readEmbed(fields); err != nil {
			return nil, fmt.Errorf("%w: message %s: %w", ErrInvalidTask, msg.UUID, err)
		}
		for _, k := range []string{"callbacks", "errbacks", "chain", "chord"} {
			delete(fields, k)
		}
		if u, ok := fields["utc"]; ok {
			t.UTC = string(u) != "false"
			delete(fields, "utc")
		}
	case isV2:
		t.Protocol = 2
		if !pyFloats {
			// The arguments' texts share the body: a copy of it, not the message's payload.
			payload = bytes.Clone(payload)
		}
		body, err := rawItems(payload)
		if err != nil || len(body) < 2 || len(body) > 3 {
			return nil, fmt.Errorf("%w: message %s: a protocol 2 body must be [args, kwargs, embed]", ErrInvalidTask, msg.UUID)
		}
		t.RawArgs, t.RawKwargs = show(body[0]), show(body[1])
		if len(body) == 3 && !isJSONNull(body[2]) {
			embed, err := rawMembers(body[2])
			if err != nil {
				return nil, fmt.Errorf("%w: message %s: embed: %w", ErrInvalidTask, msg.UUID, err)
			}
			if err := t.readEmbed(embed); err != nil {
				return nil, fmt.Errorf("%w: message %s: %w", ErrInvalidTask, msg.UUID, err)
			}
		}
	default:
		return nil, fmt.Errorf("%w: message %s has no task header and no task body", ErrNotATask, msg.UUID)
	}
	if err := t.readFields(fields); err != nil {
		return nil, fmt.Errorf("%w: message %s: %w", ErrInvalidTask, msg.UUID, err)
	}
	if err := t.readArgs(); err != nil {
		return nil, fmt.Errorf("%w: task %s (%s): %w", ErrInvalidTask, t.Name, t.ID, err)
	}
	return t, nil
}

// rawMembers is json.Unmarshal of a JSON object into a map of its members' texts, which
// share b. An object with an escaped key or a key that is not UTF-8 is left to
// json.Unmarshal, as is invalid JSON, so that its error is json.Unmarshal's.
func rawMembers(b []byte) (map[string]json.RawMessage, error) {
	return scanOrUnmarshal(b, func(s *pywire.Scanner) (map[string]json.RawMessage, error) {
		m := make(map[string]json.RawMessage, 24)
		return m, s.Object(func(key []byte, escaped bool) error {
			if escaped || !utf8.Valid(key) {
				return errNotPlain
			}
			v, err := s.Value()
			if err != nil {
				return err
			}
			name, ok := pywire.HeaderName(key)
			if !ok {
				name = string(key)
			}
			m[name] = v
			return nil
		})
	})
}

// rawItems is json.Unmarshal of a JSON array into its items' texts, which share b; invalid
// JSON is left to json.Unmarshal, so that its error is json.Unmarshal's.
func rawItems(b []byte) ([]json.RawMessage, error) {
	return scanOrUnmarshal(b, func(s *pywire.Scanner) ([]json.RawMessage, error) {
		items := make([]json.RawMessage, 0, 3)
		err := s.Array(func() error {
			v, err := s.Value()
			items = append(items, v)
			return err
		})
		return items, err
	})
}

// scanOrUnmarshal reads b with scan, a pass of the pywire scanner that must read all of it;
// when that fails, json.Unmarshal reads it instead, so that what is accepted, and the error
// otherwise, are json.Unmarshal's.
func scanOrUnmarshal[T any](b []byte, scan func(*pywire.Scanner) (T, error)) (T, error) {
	s := pywire.NewScanner(b)
	v, err := scan(&s)
	if err == nil {
		err = s.End()
	}
	if err != nil {
		var zero T
		v = zero
		if err := json.Unmarshal(b, &v); err != nil {
			return zero, err
		}
	}
	return v, nil
}

// errNotPlain makes rawMembers leave an object to json.Unmarshal.
var errNotPlain = errors.New("not a plain key")

// takePlain is json.Unmarshal of raw, a valid JSON value, into the header fields of common
// types when raw is a string without escapes, an integer or a boolean; it reports whether it
// did. Anything else is left to json.Unmarshal.
func takePlain(raw json.RawMessage, dst any) bool {
	switch d := dst.(type) {
	case *string:
		if text, ok := pywire.PlainString(raw); ok {
			*d = text
			return true
		}
	case *int:
		if n, ok := pywire.ParseInt(raw); ok {
			*d = n
			return true
		}
	case **int:
		if n, ok := pywire.ParseInt(raw); ok {
			*d = &n
			return true
		}
	case *bool:
		switch string(raw) {
		case "true", "false":
			*d = string(raw) == "true"
			return true
		}
	}
	return false
}

func isJSONString(raw json.RawMessage) bool { return len(raw) > 0 && raw[0] == '"' }

func isJSONNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// readFields moves the known headers (or protocol 1 body fields) into t, leaving the others
// in t.Headers.
func (t *Task) readFields(f map[string]json.RawMessage) error {
	take := func(key string, dst any) error {
		raw, ok := f[key]
		delete(f, key)
		if !ok || isJSONNull(raw) || takePlain(raw, dst) {
			return nil
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return fmt.Errorf("field %s: %w", key, err)
		}
		return nil
	}
	var eta, expires string
	var limits []*float64
	errs := []error{
		take("task", &t.Name), take("id", &t.ID), take("shadow", &t.Shadow),
		take("eta", &eta), take("expires", &expires), take("group", &t.Group),
		take("group_index", &t.GroupIndex), take("retries", &t.Retries),
		take("timelimit", &limits), take("root_id", &t.RootID), take("parent_id", &t.ParentID),
		take("argsrepr", &t.ArgsRepr), take("kwargsrepr", &t.KwargsRepr), take("origin", &t.Origin),
		take("ignore_result", &t.IgnoreResult), take("replaced_task_nesting", &t.ReplacedTaskNesting),
		take("stamped_headers", &t.StampedHeaders), take("lang", &t.Lang),
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if raw, ok := f["stamps"]; ok {
		delete(f, "stamps")
		if !isJSONNull(raw) {
			if err := decodeJSONNumbers(raw, &t.Stamps); err != nil {
				return fmt.Errorf("field stamps: %w", err)
			}
		}
	}
	if t.Name == "" {
		return errors.New("the task name is empty")
	}
	if len(limits) > 2 {
		return fmt.Errorf("timelimit has %d values, not [hard, soft]", len(limits))
	}
	copy(t.TimeLimit[:], limits)
	for _, x := range []struct {
		s   string
		dst **time.Time
	}{{eta, &t.ETA}, {expires, &t.Expires}} {
		if x.s == "" {
			continue
		}
		// Celery's worker (Request, maybe_make_aware) takes a naive time as UTC, even in a
		// protocol 1 message sent with utc false: so must a Go worker, to run it when a
		// Celery worker would.
		tm, err := ParseTime(x.s, true)
		if err != nil {
			return err
		}
		*x.dst = &tm
	}
	if len(f) > 0 {
		t.Headers = make(map[string]any, len(f))
		for k, raw := range f {
			var v any
			if err := decodeJSONNumbers(raw, &v); err != nil {
				return fmt.Errorf("header %s: %w", k, err)
			}
			t.Headers[k] = v
		}
	}
	return nil
}

// readEmbed reads callbacks, errbacks, chain and chord.
func (t *Task) readEmbed(e map[string]json.RawMessage) error {
	for _, x := range []struct {
		key string
		dst *[]Signature
	}{{"callbacks", &t.Callbacks}, {"errbacks", &t.Errbacks}, {"chain", &t.Chain}} {
		if raw := e[x.key]; !isJSONNull(raw) {
			if err := json.Unmarshal(raw, x.dst); err != nil {
				return fmt.Errorf("%s: %w", x.key, err)
			}
		}
	}
	if raw := e["chord"]; !isJSONNull(raw) {
		t.Chord = new(Signature)
		if err := json.Unmarshal(raw, t.Chord); err != nil {
			return fmt.Errorf("chord: %w", err)
		}
	}
	return nil
}

// readArgs decodes RawArgs and RawKwargs, which default to [] and {}.
func (t *Task) readArgs() error {
	if isJSONNull(t.RawArgs) {
		t.RawArgs = json.RawMessage("[]")
	}
	if isJSONNull(t.RawKwargs) {
		t.RawKwargs = json.RawMessage("{}")
	}
	if err := decodePyJSON(t.RawArgs, &t.Args); err != nil {
		return fmt.Errorf("args are not a list: %w", err)
	}
	if err := decodePyJSON(t.RawKwargs, &t.Kwargs); err != nil {
		return fmt.Errorf("kwargs are not a mapping: %w", err)
	}
	return nil
}

// decodeJSONNumbers is json.Unmarshal with numbers kept as json.Number.
func decodeJSONNumbers(b []byte, v any) error {
	if decodeFlat(b, v) {
		return nil
	}
	return decodeNumbers(b, v)
}

// decodeNumbers is decodeJSONNumbers with encoding/json's decoder, for any value.
func decodeNumbers(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("data after the JSON value")
	}
	return nil
}

// DecodeArgs decodes the positional arguments into dst, one pointer per argument, with
// encoding/json (a nil pointer skips an argument). The count must match. An argument that
// is Python's NaN, Infinity or -Infinity decodes into a float or an any.
func (t *Task) DecodeArgs(dst ...any) error {
	args, err := splitPyList(t.rawArgs())
	if err != nil {
		return fmt.Errorf("%w: task %s (%s): args are not a list: %w", ErrTaskArguments, t.Name, t.ID, err)
	}
	if len(args) != len(dst) {
		return fmt.Errorf("%w: task %s (%s) has %d positional arguments, %d were expected",
			ErrTaskArguments, t.Name, t.ID, len(args), len(dst))
	}
	for i, raw := range args {
		if dst[i] == nil {
			continue
		}
		if err := decodeArg(raw, dst[i]); err != nil {
			return fmt.Errorf("%w: task %s (%s): argument %d: %w", ErrTaskArguments, t.Name, t.ID, i, err)
		}
	}
	return nil
}

// DecodeKwargs decodes the keyword arguments into dst (a pointer to a struct or map) with
// encoding/json.
func (t *Task) DecodeKwargs(dst any) error {
	raw := t.RawKwargs
	if raw == nil {
		var err error
		if raw, err = json.Marshal(t.Kwargs); err != nil {
			return fmt.Errorf("%w: task %s (%s): %w", ErrTaskArguments, t.Name, t.ID, err)
		}
	}
	if isJSONNull(raw) {
		raw = json.RawMessage("{}")
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("%w: task %s (%s): kwargs: %w", ErrTaskArguments, t.Name, t.ID, err)
	}
	return nil
}

func (t *Task) rawArgs() json.RawMessage {
	if t.RawArgs != nil {
		return t.RawArgs
	}
	b, err := json.Marshal(t.Args)
	if err != nil || t.Args == nil {
		return json.RawMessage("[]")
	}
	return b
}
