package celery

import (
	"context"
	"encoding/json"
)

// ChordBackend is a ResultBackend that keeps Celery's chord state, so that the worker that
// finishes the last task of a chord's header calls the chord's body, whichever worker (Go or
// Python) ran the other header tasks. redisbackend.Backend is one.
type ChordBackend interface {
	ResultBackend
	// ChordPartReturn records the final state of a chord header task. It returns a ChordJoin
	// when this call recorded the last result of the header and won the claim to call the
	// body; nil when the chord is not complete yet, was already completed, or another worker
	// holds the claim. A header task recorded twice (a redelivery) counts once. When the
	// header is complete and claimed but its results cannot be read, it returns the
	// ChordJoin together with a *ChordJoinError.
	ChordPartReturn(ctx context.Context, part ChordPart) (ChordJoin, error)
}

// ChordJoinError is what ChordPartReturn returns, together with its ChordJoin, when the
// chord's header is complete and claimed but its results cannot be joined: a recorded result
// or the group result the client saved cannot be decoded (written by an application whose
// result serializer is pickle, or corrupt). Celery's backend then fails the body with
// ChordError("Join error: <exception>") and drops the chord's size, and so does the Worker:
// sending the header task again could never complete the chord.
type ChordJoinError struct {
	// Exception is the Python repr of the exception Celery's join raises for it, e.g.
	// "ValueError('not enough values to unpack (expected 4, got 3)')".
	Exception string
	// Err is the reason.
	Err error
}

// Error describes the join error.
func (e *ChordJoinError) Error() string { return "celery: chord join error: " + e.Exception }

// Unwrap returns the reason.
func (e *ChordJoinError) Unwrap() error { return e.Err }

// ChordPart is the final state of one task of a chord's header.
type ChordPart struct {
	// GroupID is the header's group id (the task's group header), GroupIndex the task's place
	// in it (nil when the sender gave none).
	GroupID    string
	GroupIndex *int
	// TaskID is the header task's id.
	TaskID string
	// State is SUCCESS, FAILURE or REVOKED.
	State string
	// Result is the return value (a json.RawMessage is kept as it is) or, for the other
	// states, the exception (*ExceptionInfo).
	Result any
}

// ChordResult is the recorded result of one header task, or of a group nested in the header.
type ChordResult struct {
	TaskID string
	// State is the task's state; "" for a nested group.
	State string
	// Result is the task's result as JSON: its return value, or the exception for FAILURE
	// and REVOKED.
	Result json.RawMessage
	// Group holds the results of a group nested in the header (then TaskID is the group's
	// id); nil for a task.
	Group []ChordResult
}

// ChordJoin is the claim, won by one worker, to call a complete chord's body.
type ChordJoin interface {
	// Results are the header's results in the header's order.
	Results() []ChordResult
	// Extend is called just before the body is sent: it extends the claim for the time
	// sending may take. false means the claim was lost to another worker: the body must not
	// be sent.
	Extend(ctx context.Context) (bool, error)
	// Complete deletes the chord's state once the body is sent, leaving a marker so that a
	// late copy of a header task does not start the chord again.
	Complete(ctx context.Context) error
	// Release gives the claim up without completing the chord (sending the body failed), so
	// that a redelivered header task can claim it again.
	Release(ctx context.Context) error
	// Abandon drops the chord's size after a header task failed and the body was failed
	// with a ChordError, so that a late copy of a header task does not fail it again.
	Abandon(ctx context.Context) error
}
