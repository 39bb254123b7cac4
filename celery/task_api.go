package celery

import (
	"encoding/json"
	"fmt"
	"strings"

	kombu "github.com/watermill-kombu/watermill-kombu"
)

// WithRawArgs sends the positional arguments as the given JSON list, instead of the args
// given to NewTask.
func WithRawArgs(raw json.RawMessage) TaskOption {
	return func(t *Task, _ *taskBuild) { t.RawArgs = raw }
}

// WithRawKwargs sends the keyword arguments as the given JSON object, instead of the kwargs
// given to NewTask: its keys keep their order, which a Go map does not (encoding/json sorts
// map keys). The kwargsrepr header shows them in that order, as Celery does.
func WithRawKwargs(raw json.RawMessage) TaskOption {
	return func(t *Task, _ *taskBuild) { t.RawKwargs = raw }
}

// WithCompression compresses the task's body as Kombu's compression= does: "gzip" or "zlib"
// (Kombu's application/x-gzip, which is zlib data). Celery workers decompress it.
func WithCompression(kind string) TaskOption {
	return func(t *Task, _ *taskBuild) { t.Compression = kind }
}

// checkCompression accepts the compressions a task can be sent with.
func checkCompression(kind string) error {
	switch strings.ToLower(kind) {
	case "", "gzip", "zlib", "application/x-gzip":
		return nil
	}
	return fmt.Errorf("compression %q: tasks can be sent with gzip (zlib) only", kind)
}

// ArgValues returns the positional arguments as JSON values, one per argument, to decode
// one by one or pass on. Python's NaN, Infinity and -Infinity are kept as those words.
func (t *Task) ArgValues() ([]json.RawMessage, error) {
	args, err := splitPyList(t.rawArgs())
	if err != nil {
		return nil, fmt.Errorf("%w: task %s (%s): args are not a list: %w", ErrTaskArguments, t.Name, t.ID, err)
	}
	return args, nil
}

// KwargValues returns the keyword arguments as JSON values by name. Python's NaN, Infinity
// and -Infinity are kept as those words.
func (t *Task) KwargValues() (map[string]json.RawMessage, error) {
	if !isJSONNull(t.RawKwargs) {
		kwargs, err := splitPyObject(t.RawKwargs)
		if err != nil {
			return nil, fmt.Errorf("%w: task %s (%s): kwargs: %w", ErrTaskArguments, t.Name, t.ID, err)
		}
		return kwargs, nil
	}
	kwargs := map[string]json.RawMessage{}
	if err := t.DecodeKwargs(&kwargs); err != nil {
		return nil, err
	}
	return kwargs, nil
}

// receivedDecodeError is the reason the Subscriber gave (kombu.MetadataDecodeError) for a
// message it could not decode.
type receivedDecodeError struct{ reason string }

func (e *receivedDecodeError) Error() string { return e.reason }

// Is makes errors.Is(err, kombu.ErrUndecodableBody) hold, and ErrUnsupportedContentType
// for a serializer this library does not read (pickle, msgpack, yaml).
func (e *receivedDecodeError) Is(target error) bool {
	return target == kombu.ErrUndecodableBody ||
		(target == kombu.ErrUnsupportedContentType && strings.Contains(e.reason, "content type"))
}

// undecodedMessage returns the error for a message the Subscriber could not decode: its
// payload is the raw SQS body, not a task.
func undecodedMessage(id, reason string) error {
	return fmt.Errorf("%w: message %s could not be decoded: %w", ErrNotATask, id, &receivedDecodeError{reason})
}
