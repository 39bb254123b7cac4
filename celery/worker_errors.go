package celery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/watermill-kombu/watermill-kombu/internal/pywire"
)

// RetryError asks the worker to retry the task; see Retry.
type RetryError struct {
	// Countdown is the delay before the next attempt; nil means the task's default retry
	// delay (RetryDelay).
	Countdown *time.Duration
	// Err is the reason, stored as the RETRY state's exception (a null result when nil, as
	// Celery's self.retry() without exc), and as the failure once the retries are used up.
	Err error
}

// Error describes the retry.
func (e *RetryError) Error() string {
	s := "retry"
	if e.Countdown != nil {
		s += " in " + e.Countdown.String()
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the reason.
func (e *RetryError) Unwrap() error { return e.Err }

// Retry is what a task function returns to be retried as Celery's self.retry(countdown=...,
// exc=err) does: the task is sent again to the queue it came from, with the same id, its
// retries count plus one and an eta countdown from now; the message at hand is acked. Once
// the task has been retried its maximum number of times (MaxRetries, 3 by default), the
// task fails with err instead (or MaxRetriesExceededError when err is nil).
func Retry(countdown time.Duration, err error) error {
	return &RetryError{Countdown: &countdown, Err: err}
}

// RetryDefault is Retry with the task's default retry delay.
func RetryDefault(err error) error { return &RetryError{Err: err} }

// TaskError is a task failure with the Python exception a Celery client raises for it. Other
// errors become the builtin Exception with the error's text as message.
type TaskError struct {
	// Type and Module name the Python exception class, e.g. "ValueError" and "builtins".
	// Classes the client cannot import are created by Celery under that name.
	Type, Module string
	// Args are the exception's arguments; nil means [Err.Error()].
	Args []any
	// Err is the Go error.
	Err error
}

// Error returns the Go error's text.
func (e *TaskError) Error() string {
	if e.Err == nil {
		return e.Type
	}
	return e.Err.Error()
}

// Unwrap returns the Go error.
func (e *TaskError) Unwrap() error { return e.Err }

// NewTaskError returns an error that makes a Celery client raise the Python exception
// module.typ with msg as its message, e.g. NewTaskError("builtins", "ValueError", "bad").
func NewTaskError(module, typ, msg string) error {
	return &TaskError{Type: typ, Module: module, Err: errors.New(msg)}
}

// exceptionFor returns how err is stored in a result backend.
func exceptionFor(err error) *ExceptionInfo {
	var te *TaskError
	if errors.As(err, &te) {
		args := te.Args
		if args == nil {
			args = []any{te.Error()}
		}
		mod := te.Module
		if mod == "" {
			mod = "builtins"
		}
		return &ExceptionInfo{Type: te.Type, Module: mod, Message: args}
	}
	if errors.Is(err, ErrTaskArguments) {
		return &ExceptionInfo{Type: "TypeError", Module: "builtins", Message: []any{err.Error()}}
	}
	return &ExceptionInfo{Type: "Exception", Module: "builtins", Message: []any{err.Error()}}
}

type softLimitKey struct{}

// SoftTimeLimit returns when the task's soft time limit (the second value of Celery's
// timelimit) passes, if it has one. Celery raises SoftTimeLimitExceeded in the task then; a
// Go task should check this time itself. The hard limit is the context's deadline.
func SoftTimeLimit(ctx context.Context) (time.Time, bool) {
	t, ok := ctx.Value(softLimitKey{}).(time.Time)
	return t, ok
}

// argumentError names the task and the argument that did not decode.
func argumentError(t *Task, arg string, err error) error {
	return &TaskError{Type: "TypeError", Module: "builtins",
		Err: fmt.Errorf("%w: task %s (%s): argument %s: %w", ErrTaskArguments, t.Name, t.ID, arg, err)}
}

// maxRetriesExceeded is the failure of a task retried once too often without a cause, with
// the message of Celery's MaxRetriesExceededError: "Can't retry <name>[<id>] args:(1, 'a')
// kwargs:{'k': 1}", the arguments as Python shows them (cut after 1024 characters).
func maxRetriesExceeded(t *Task) error {
	kwargs := t.RawKwargs
	if kwargs == nil {
		kwargs, _ = json.Marshal(t.Kwargs)
	}
	if isJSONNull(kwargs) {
		kwargs = json.RawMessage("{}")
	}
	return &TaskError{Type: "MaxRetriesExceededError", Module: "celery.exceptions",
		Err: fmt.Errorf("Can't retry %s[%s] args:%s kwargs:%s", t.Name, t.ID,
			pywire.Repr(t.rawArgs(), true), pywire.Repr(kwargs, false))}
}
