package celery

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/watermill-kombu/watermill-kombu/internal/pywire"
)

// Celery task states, as stored in a result backend.
const (
	StatePending = "PENDING"
	StateStarted = "STARTED"
	StateSuccess = "SUCCESS"
	StateFailure = "FAILURE"
	StateRetry   = "RETRY"
	StateRevoked = "REVOKED"
)

// DefaultResultExpires is how long a result is kept when no expiry is configured: one day,
// Celery's default result_expires.
const DefaultResultExpires = 24 * time.Hour

// ErrResultNotFound is returned by ResultBackend.Get for a task without a stored result.
var ErrResultNotFound = errors.New("celery: no result stored for the task")

// TaskResult is a task's state as a Celery result backend stores it.
type TaskResult struct {
	// TaskID is the task id.
	TaskID string
	// Status is one of the State* constants.
	Status string
	// Result is the return value for SUCCESS, and the exception (an *ExceptionInfo) for
	// FAILURE, RETRY and REVOKED. It is encoded with encoding/json; a json.RawMessage is
	// stored as it is.
	Result any
	// Traceback is the failure's traceback text, "" for none.
	Traceback string
	// DateDone is when the task finished (zero for states that are not final).
	DateDone time.Time
	// GroupID and ParentID are stored when set, as Celery does.
	GroupID, ParentID string
	// Children are the results of the tasks the task started, in Celery's tuple form.
	Children []any
	// Request, when not nil, is stored with the state as Celery's result_extended setting
	// stores the task's request (see RequestInfo); nil stores none of those keys. A result
	// read back has it when the document has them.
	Request *RequestInfo
}

// ExceptionInfo is an exception as Celery's JSON result serializer writes it. The Python
// client rebuilds the exception from it: exc_type looked up in exc_module, called with
// exc_message as its arguments.
type ExceptionInfo struct {
	Type    string `json:"exc_type"`
	Message []any  `json:"exc_message"`
	Module  string `json:"exc_module"`
}

// Error returns "Type: message".
func (e *ExceptionInfo) Error() string {
	if len(e.Message) == 1 {
		if s, ok := e.Message[0].(string); ok {
			return e.Type + ": " + s
		}
	}
	b, _ := json.Marshal(e.Message)
	return e.Type + ": " + string(b)
}

// ResultBackend stores task states where Celery clients read them (AsyncResult.get).
type ResultBackend interface {
	// Store writes the result of a task, replacing the previous one unless that one is
	// SUCCESS (as Celery does, so that a redelivered task cannot overwrite a success).
	Store(ctx context.Context, r TaskResult) error
	// Get reads the stored result of a task; ErrResultNotFound when there is none. Result
	// is a json.RawMessage.
	Get(ctx context.Context, taskID string) (*TaskResult, error)
}

// MarshalJSON writes the result as the JSON document Celery stores in a result backend (keys
// in Celery's order). A final state without DateDone gets the current time. Arguments in
// Request that hold Python's NaN or Infinity are written as Python's JSON does, which
// encoding/json's Marshal and Unmarshal reject: a backend calls MarshalJSON and UnmarshalJSON
// directly, as redisbackend does.
func (r TaskResult) MarshalJSON() ([]byte, error) { return encodeResult(r, time.Now()) }

// UnmarshalJSON reads a result document written by MarshalJSON or by Celery, with or without
// result_extended's keys (Request), and with Python's NaN and Infinity. Result is a
// json.RawMessage.
func (r *TaskResult) UnmarshalJSON(b []byte) error {
	res, err := decodeResult(b)
	if err != nil {
		return err
	}
	*r = *res
	return nil
}

// resultMeta is the start of the JSON document Celery stores for a task, keys in Celery's
// order; the extended keys (result_extended.go) and task_id follow.
type resultMeta struct {
	Status    string          `json:"status"`
	Result    json.RawMessage `json:"result"`
	Traceback *string         `json:"traceback"`
	Children  []any           `json:"children"`
	DateDone  *string         `json:"date_done"`
	GroupID   string          `json:"group_id,omitempty"`
	ParentID  string          `json:"parent_id,omitempty"`
}

// storedResult is a whole stored document, as it is read back.
type storedResult struct {
	resultMeta
	requestMeta
	TaskID string `json:"task_id"`
}

// isReadyState tells whether state is final (date_done is set for those).
func isReadyState(state string) bool {
	return state == StateSuccess || state == StateFailure || state == StateRevoked
}

// encodeResult writes r in Celery's format.
func encodeResult(r TaskResult, now time.Time) ([]byte, error) {
	m := resultMeta{Status: r.Status, GroupID: r.GroupID, ParentID: r.ParentID, Children: r.Children}
	if m.Children == nil {
		m.Children = []any{}
	}
	if r.Traceback != "" {
		m.Traceback = &r.Traceback
	}
	if isReadyState(r.Status) {
		done := r.DateDone
		if done.IsZero() {
			done = now
		}
		// Python's datetime.isoformat for an aware UTC time.
		s := done.UTC().Format("2006-01-02T15:04:05.000000") + "+00:00"
		m.DateDone = &s
	}
	b, err := resultJSON(r.Result)
	if err != nil {
		return nil, err
	}
	m.Result = b
	doc, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	doc = doc[:len(doc)-1] // the closing brace
	if r.Request != nil {
		if doc, err = appendRequest(doc, r.Request); err != nil {
			return nil, err
		}
	}
	id, _ := json.Marshal(r.TaskID)
	doc = append(appendKey(doc, "task_id"), id...)
	return append(doc, '}'), nil
}

// resultJSON encodes a task's result as it is stored. nil and an empty json.RawMessage are
// null, what Celery stores for a task returning None (and what the chord encoder records);
// encoding/json would fail on the empty json.RawMessage.
func resultJSON(v any) (json.RawMessage, error) {
	if raw, ok := v.(json.RawMessage); ok && len(raw) == 0 {
		v = nil
	}
	return json.Marshal(v)
}

// decodeResult reads a document written by encodeResult or by Celery, which may hold Python's
// NaN and Infinity (in a result, or in the arguments of result_extended).
func decodeResult(b []byte) (*TaskResult, error) {
	var m storedResult
	hidden := false
	if err := json.Unmarshal(b, &m); err != nil {
		h, replaced := pywire.HideFloats(b)
		if !replaced || json.Unmarshal(h, &m) != nil {
			return nil, err
		}
		b, hidden = h, true
		m.Result = pywire.ShowFloats(m.Result)
		m.Children, _ = showFloatValues(m.Children).([]any)
	}
	r := &TaskResult{TaskID: m.TaskID, Status: m.Status, Result: m.Result, GroupID: m.GroupID, ParentID: m.ParentID, Children: m.Children}
	r.Request = decodeRequest(b, m.requestMeta, hidden)
	if m.Traceback != nil {
		r.Traceback = *m.Traceback
	}
	if m.DateDone != nil {
		for _, layout := range []string{"2006-01-02T15:04:05.999999Z07:00", "2006-01-02T15:04:05.999999"} {
			if t, err := time.Parse(layout, *m.DateDone); err == nil {
				r.DateDone = t
				break
			}
		}
	}
	return r, nil
}
