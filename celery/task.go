package celery

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/pywire"
)

// Task is a Celery task message, protocol 2 or 1. TaskFromMessage reads one from a received
// message; NewTask and Task.Message build one to publish.
type Task struct {
	// Protocol is 2 (headers plus [args, kwargs, embed] body, Celery's default) or 1 (all in a
	// body dict). 0 means 2.
	Protocol int
	// Name is the registered task name, e.g. "proj.tasks.add".
	Name string
	// ID is the task id, a UUID; it is also the message UUID and correlation_id.
	ID string
	// Args and Kwargs are the arguments. Received numbers are json.Number, to keep big
	// integers exact; use DecodeArgs and DecodeKwargs to decode into Go types instead.
	Args   []any
	Kwargs map[string]any
	// RawArgs and RawKwargs are the arguments as JSON (a list and an object). On a received
	// task they are always set. When publishing, they are used instead of Args and Kwargs
	// when not nil.
	RawArgs   json.RawMessage
	RawKwargs json.RawMessage
	// Retries counts how often the task was retried.
	Retries int
	// ETA is when the task should run at the earliest; Expires when it should be discarded.
	ETA, Expires *time.Time
	// Group and GroupIndex place the task in a group.
	Group      string
	GroupIndex *int
	// ParentID and RootID link the task to the workflow that started it. RootID is the id of
	// the workflow's first task. A task published with an empty RootID is its own root: the
	// message carries root_id = ID. A received task has the root_id it was sent with, ""
	// when it has none (Celery's protocol 1 client writes none; Celery's worker, as this
	// library's, then takes the task's own id as the root of the tasks it sends).
	ParentID, RootID string
	// Shadow is the name shown in logs and monitors instead of Name.
	Shadow string
	// TimeLimit is [hard, soft] in seconds; nil means the worker's default.
	TimeLimit [2]*float64
	// IgnoreResult makes the worker not store the result. False leaves it to the task's
	// declaration on the worker (Celery's ignore_result=True is not overridden).
	IgnoreResult bool
	// Callbacks (link), Errbacks (link_error), Chain (the rest of a chain, last first) and
	// Chord are the embedded workflow signatures.
	Callbacks, Errbacks, Chain []Signature
	Chord                      *Signature
	// Origin is the sending node, gen<pid>@<hostname>.
	Origin string
	// ArgsRepr and KwargsRepr are Python reprs of the arguments, shown by monitors. Computed
	// when empty.
	ArgsRepr, KwargsRepr string
	// Lang is the sender's language header. Celery sends "py" and reads it nowhere; this
	// library sends "go".
	Lang string
	// ReplacedTaskNesting counts Task.replace calls (protocol 2).
	ReplacedTaskNesting int
	// StampedHeaders and Stamps are Celery's stamping (protocol 2).
	StampedHeaders []string
	Stamps         map[string]any
	// UTC is protocol 1's utc field (the sender's enable_utc). Celery's worker reads naive
	// ETA/Expires times as UTC whatever it says, and so does TaskFromMessage.
	UTC bool
	// Headers are the other headers, e.g. custom ones passed to apply_async(headers=...).
	// Received values are decoded with json.Number.
	Headers map[string]any
	// ReplyTo is properties.reply_to, the RPC result queue. A process-wide UUID when empty.
	ReplyTo string
	// CorrelationID is properties.correlation_id, normally the task id.
	CorrelationID string
	// Priority is properties.priority (0 when nil).
	Priority *int
	// Compression is the body's compression, e.g. "application/x-gzip" (kombu's
	// MetadataCompression): received, or to send with (WithCompression).
	Compression string
}

// Signature is a serialized Celery signature, as embedded in callbacks, errbacks, chains
// and chords.
type Signature struct {
	Task    string
	Args    []any
	Kwargs  map[string]any
	Options map[string]any
	// SubtaskType is "" (a plain task), or "chain", "group", "chord"...
	SubtaskType string
	Immutable   bool
	// Raw is the signature as received; when set, it is sent as it is and the fields above
	// are only informational.
	Raw json.RawMessage
}

// MarshalJSON writes the signature as Celery's Signature dict.
func (s Signature) MarshalJSON() ([]byte, error) {
	if len(s.Raw) > 0 {
		return s.Raw, nil
	}
	v := struct {
		Task        string         `json:"task"`
		Args        []any          `json:"args"`
		Kwargs      map[string]any `json:"kwargs"`
		Options     map[string]any `json:"options"`
		SubtaskType *string        `json:"subtask_type"`
		Immutable   bool           `json:"immutable"`
	}{Task: s.Task, Args: s.Args, Kwargs: s.Kwargs, Options: s.Options, Immutable: s.Immutable}
	if v.Args == nil {
		v.Args = []any{}
	}
	if v.Kwargs == nil {
		v.Kwargs = map[string]any{}
	}
	if v.Options == nil {
		v.Options = map[string]any{}
	}
	if s.SubtaskType != "" {
		v.SubtaskType = &s.SubtaskType
	}
	return json.Marshal(v)
}

// UnmarshalJSON reads a Celery Signature dict and keeps it in Raw.
func (s *Signature) UnmarshalJSON(b []byte) error {
	var v struct {
		Task        string         `json:"task"`
		Args        []any          `json:"args"`
		Kwargs      map[string]any `json:"kwargs"`
		Options     map[string]any `json:"options"`
		SubtaskType *string        `json:"subtask_type"`
		Immutable   bool           `json:"immutable"`
	}
	if err := decodeJSONNumbers(b, &v); err != nil {
		return err
	}
	*s = Signature{Task: v.Task, Args: v.Args, Kwargs: v.Kwargs, Options: v.Options, Immutable: v.Immutable,
		Raw: append(json.RawMessage(nil), b...)}
	if v.SubtaskType != nil {
		s.SubtaskType = *v.SubtaskType
	}
	return nil
}

// TaskOption sets an option of NewTask, like the keyword arguments of Celery's apply_async.
type TaskOption func(*Task, *taskBuild)

type taskBuild struct {
	now       func() time.Time
	countdown *time.Duration
	expiresIn *time.Duration
}

// WithTaskID sets the task id (default: a new UUID).
func WithTaskID(id string) TaskOption { return func(t *Task, _ *taskBuild) { t.ID = id } }

// WithCountdown runs the task no earlier than d from now (apply_async countdown). As in
// Celery, a zero countdown sets no eta.
func WithCountdown(d time.Duration) TaskOption {
	return func(_ *Task, b *taskBuild) { b.countdown = &d }
}

// WithETA runs the task no earlier than at (apply_async eta).
func WithETA(at time.Time) TaskOption { return func(t *Task, _ *taskBuild) { t.ETA = &at } }

// WithExpires discards the task if it has not started by at (apply_async expires).
func WithExpires(at time.Time) TaskOption { return func(t *Task, _ *taskBuild) { t.Expires = &at } }

// WithExpiresIn discards the task if it has not started d from now (apply_async expires=seconds).
func WithExpiresIn(d time.Duration) TaskOption {
	return func(_ *Task, b *taskBuild) { b.expiresIn = &d }
}

// WithRetryCount sets the retry count the task starts with.
func WithRetryCount(n int) TaskOption { return func(t *Task, _ *taskBuild) { t.Retries = n } }

// WithTimeLimit sets the hard and soft time limits in seconds; 0 leaves one unset.
func WithTimeLimit(hard, soft float64) TaskOption {
	return func(t *Task, _ *taskBuild) {
		t.TimeLimit = [2]*float64{nil, nil}
		if hard > 0 {
			t.TimeLimit[0] = &hard
		}
		if soft > 0 {
			t.TimeLimit[1] = &soft
		}
	}
}

// WithIgnoreResult tells the worker not to store the result.
func WithIgnoreResult() TaskOption { return func(t *Task, _ *taskBuild) { t.IgnoreResult = true } }

// WithProtocol selects Celery's task message protocol: 2 (default) or 1.
func WithProtocol(v int) TaskOption { return func(t *Task, _ *taskBuild) { t.Protocol = v } }

// WithHeaders adds headers (apply_async headers=...). Headers named like Celery's own
// replace them.
func WithHeaders(h map[string]any) TaskOption {
	return func(t *Task, _ *taskBuild) {
		if t.Headers == nil {
			t.Headers = make(map[string]any, len(h))
		}
		for k, v := range h {
			t.Headers[k] = v
		}
	}
}

// WithReplyTo sets properties.reply_to, the queue Celery's RPC backend replies to.
func WithReplyTo(queue string) TaskOption { return func(t *Task, _ *taskBuild) { t.ReplyTo = queue } }

// WithParent links the task to its parent and root task.
func WithParent(parentID, rootID string) TaskOption {
	return func(t *Task, _ *taskBuild) { t.ParentID, t.RootID = parentID, rootID }
}

// WithGroup makes the task member index of the group id.
func WithGroup(id string, index int) TaskOption {
	return func(t *Task, _ *taskBuild) { t.Group, t.GroupIndex = id, &index }
}

// WithShadow sets the name shown in logs instead of the task name.
func WithShadow(name string) TaskOption { return func(t *Task, _ *taskBuild) { t.Shadow = name } }

// WithPriority sets properties.priority (SQS ignores it; Celery reads it).
func WithPriority(p int) TaskOption { return func(t *Task, _ *taskBuild) { t.Priority = &p } }

// WithLink adds callbacks run with the task's result (apply_async link).
func WithLink(s ...Signature) TaskOption {
	return func(t *Task, _ *taskBuild) { t.Callbacks = append(t.Callbacks, s...) }
}

// WithLinkError adds errbacks run when the task fails (apply_async link_error).
func WithLinkError(s ...Signature) TaskOption {
	return func(t *Task, _ *taskBuild) { t.Errbacks = append(t.Errbacks, s...) }
}

// WithOrigin sets the origin header (default gen<pid>@<hostname>).
func WithOrigin(origin string) TaskOption { return func(t *Task, _ *taskBuild) { t.Origin = origin } }

// withClock replaces time.Now, for tests.
func withClock(now func() time.Time) TaskOption {
	return func(_ *Task, b *taskBuild) { b.now = now }
}

// NewTask builds a Watermill message that publishes, through kombu.EnvelopeMarshaler, the message
// Celery's apply_async sends for task name with args and kwargs (both may be nil). Publish it
// to the queue the Celery worker consumes (Celery's default is "celery").
//
// Arguments are encoded with encoding/json; a time.Time becomes an ISO-8601 string (wrap it
// in DateTime for a Python datetime).
func NewTask(name string, args []any, kwargs map[string]any, opts ...TaskOption) (*message.Message, error) {
	t := &Task{Name: name, Args: args, Kwargs: kwargs}
	b := taskBuild{now: time.Now}
	for _, opt := range opts {
		opt(t, &b)
	}
	// One reading of the clock for eta, expires and the message TTL, as Celery's send_task:
	// a second reading would make expires and the TTL drift from each other (a TTL of 59999
	// ms for WithExpiresIn(time.Minute)). The times are in UTC, as Celery's app.now() with
	// its default timezone, whatever the machine's local zone.
	now := b.now().UTC()
	// Celery's "if countdown:" ignores a zero countdown: the task gets no eta at all.
	if b.countdown != nil && *b.countdown != 0 {
		eta := now.Add(*b.countdown)
		t.ETA = &eta
	}
	if b.expiresIn != nil {
		exp := now.Add(*b.expiresIn)
		t.Expires = &exp
	}
	return t.message(func() time.Time { return now })
}

// Message builds the Watermill message that publishes the task through kombu.EnvelopeMarshaler. Its
// UUID is the task id, generated when empty. A received task can be sent again this way, e.g.
// with Retries incremented.
func (t *Task) Message() (*message.Message, error) { return t.message(time.Now) }

var processOID = sync.OnceValue(func() string { return uuid.NewString() })

var defaultOrigin = sync.OnceValue(func() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return "gen" + strconv.Itoa(os.Getpid()) + "@" + host
})

func (t *Task) message(now func() time.Time) (*message.Message, error) {
	if t.Name == "" {
		return nil, fmt.Errorf("%w: the task name is empty", ErrInvalidTask)
	}
	id := t.ID
	if id == "" {
		id = uuid.NewString()
	}
	args, err := pyJSONValue(t.RawArgs, t.Args, "[]")
	if err != nil {
		return nil, fmt.Errorf("%w: task %s: args: %w", ErrInvalidTask, t.Name, err)
	}
	if args[0] != '[' {
		return nil, fmt.Errorf("%w: task %s: args must be a JSON list", ErrInvalidTask, t.Name)
	}
	kwargs, err := pyJSONValue(t.RawKwargs, t.Kwargs, "{}")
	if err != nil {
		return nil, fmt.Errorf("%w: task %s: kwargs: %w", ErrInvalidTask, t.Name, err)
	}
	if kwargs[0] != '{' {
		return nil, fmt.Errorf("%w: task %s: kwargs must be a JSON object", ErrInvalidTask, t.Name)
	}

	if err := t.checkCeleryValues(); err != nil {
		return nil, fmt.Errorf("%w: task %s: %w", ErrInvalidTask, t.Name, err)
	}
	if err := checkCompression(t.Compression); err != nil {
		return nil, fmt.Errorf("%w: task %s: %w", ErrInvalidTask, t.Name, err)
	}
	var headers, body []byte
	switch t.Protocol {
	case 0, 2:
		headers, body, err = t.v2(id, args, kwargs)
	case 1:
		headers, body, err = t.v1(id, args, kwargs)
	default:
		return nil, fmt.Errorf("%w: task %s: protocol %d (Celery has 1 and 2)", ErrInvalidTask, t.Name, t.Protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: task %s: %w", ErrInvalidTask, t.Name, err)
	}

	msg := message.NewMessage(id, body)
	md := msg.Metadata
	md[kombu.MetadataHeaders] = string(headers)
	md[kombu.MetadataContentType] = "application/json"
	md[kombu.MetadataContentEncoding] = "utf-8"
	md[kombu.MetadataCorrelationID] = id
	if t.CorrelationID != "" {
		md[kombu.MetadataCorrelationID] = t.CorrelationID
	}
	md[kombu.MetadataReplyTo] = t.ReplyTo
	if t.ReplyTo == "" {
		md[kombu.MetadataReplyTo] = processOID()
	}
	md[kombu.MetadataTask] = t.Name
	if t.Compression != "" {
		md[kombu.MetadataCompression] = t.Compression
	}
	if t.Priority != nil {
		md[kombu.MetadataPriority] = strconv.Itoa(*t.Priority)
	}
	if t.Expires != nil {
		// As Celery: the message TTL is what is left until expires, in milliseconds.
		ms := t.Expires.Sub(now()).Milliseconds()
		if ms < 0 {
			ms = 0
		}
		md[kombu.MetadataExpiration] = strconv.FormatInt(ms, 10)
	}
	return msg, nil
}

// v2 writes protocol 2 headers and body, keys in Celery's order.
func (t *Task) v2(id string, args, kwargs []byte) (headers, body []byte, err error) {
	argsRepr, kwargsRepr := t.ArgsRepr, t.KwargsRepr
	if argsRepr == "" {
		argsRepr = pywire.ArgsRepr(args, true)
	}
	if kwargsRepr == "" {
		kwargsRepr = pywire.ArgsRepr(kwargs, false)
	}
	rootID := t.RootID
	if rootID == "" {
		rootID = id
	}
	lang := t.Lang
	if lang == "" {
		lang = "go"
	}
	origin := t.Origin
	if origin == "" {
		origin = defaultOrigin()
	}
	h := newHeaderWriter(512+len(argsRepr)+len(kwargsRepr)+len(t.Name), len(t.Headers) > 0)
	h.str("lang", lang)
	h.str("task", t.Name)
	h.str("id", id)
	h.nullable("shadow", t.Shadow)
	h.time("eta", t.ETA)
	h.time("expires", t.Expires)
	h.nullable("group", t.Group)
	h.intPtr("group_index", t.GroupIndex)
	h.int("retries", t.Retries)
	h.timeLimit("timelimit", t.TimeLimit)
	h.str("root_id", rootID)
	h.nullable("parent_id", t.ParentID)
	h.str("argsrepr", argsRepr)
	h.str("kwargsrepr", kwargsRepr)
	h.str("origin", origin)
	// Celery's worker takes an explicit false over the task's own ignore_result=True, so an
	// unset IgnoreResult is sent as null, as send_task does for a task it does not know:
	// the worker then follows the task's declaration.
	if t.IgnoreResult {
		h.raw("ignore_result", []byte("true"))
	} else {
		h.raw("ignore_result", []byte("null"))
	}
	h.int("replaced_task_nesting", t.ReplacedTaskNesting)
	if err := h.value("stamped_headers", t.StampedHeaders, t.StampedHeaders == nil); err != nil {
		return nil, nil, err
	}
	stamps := t.Stamps
	if stamps == nil {
		stamps = map[string]any{}
	}
	if err := h.value("stamps", stamps, false); err != nil {
		return nil, nil, err
	}
	if err := h.extra(t.Headers); err != nil {
		return nil, nil, err
	}

	body = make([]byte, 0, len(args)+len(kwargs)+96)
	body = append(body, '[')
	body = append(body, args...)
	body = append(body, ", "...)
	body = append(body, kwargs...)
	body = append(body, `, {"callbacks": `...)
	if body, err = appendSignatures(body, t.Callbacks); err != nil {
		return nil, nil, err
	}
	body = append(body, `, "errbacks": `...)
	if body, err = appendSignatures(body, t.Errbacks); err != nil {
		return nil, nil, err
	}
	body = append(body, `, "chain": `...)
	if body, err = appendSignatures(body, t.Chain); err != nil {
		return nil, nil, err
	}
	body = append(body, `, "chord": `...)
	if body, err = appendSignature(body, t.Chord); err != nil {
		return nil, nil, err
	}
	body = append(body, "}]"...)
	return h.bytes(), body, nil
}

func appendSignatures(dst []byte, sigs []Signature) ([]byte, error) {
	if sigs == nil {
		return append(dst, "null"...), nil
	}
	return appendPyValue(dst, sigs)
}

func appendSignature(dst []byte, sig *Signature) ([]byte, error) {
	if sig == nil {
		return append(dst, "null"...), nil
	}
	return appendPyValue(dst, sig)
}

// pyJSONValue returns raw (or else v encoded with encoding/json) in Python's JSON layout;
// empty stands for a nil v.
func pyJSONValue(raw json.RawMessage, v any, empty string) ([]byte, error) {
	if raw == nil {
		if isNil(v) {
			return []byte(empty), nil
		}
		return appendPyValue(nil, v)
	}
	return pyJSONText(raw)
}

func isNil(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case []any:
		return x == nil
	case map[string]any:
		return x == nil
	}
	return false
}

func appendPyValue(dst []byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return pywire.AppendJSON(dst, b)
}
