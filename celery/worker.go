package celery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	kombu "github.com/watermill-kombu/watermill-kombu"
)

// DefaultMaxRetries is how often a task may be retried unless Register says otherwise, as
// Celery's Task.max_retries.
const DefaultMaxRetries = 3

// DefaultRetryDelay is the countdown of a Retry without one, as Celery's
// Task.default_retry_delay.
const DefaultRetryDelay = 180 * time.Second

// ErrUnknownTask is what the Worker logs for a task name that is not registered, unless
// WorkerConfig.UnknownTaskTopic routes such tasks elsewhere. As a Celery 5.7 worker does, it
// logs the task once, stores a NotRegistered failure for it (when it has a result backend),
// and acks it: the message is deleted, not delivered again and again.
var ErrUnknownTask = errors.New("celery: unknown task")

// TaskFunc runs a task. Its result is stored (encoded with encoding/json) and passed on to
// the task's callbacks and chain. Returning an error fails the task: FAILURE is stored and
// the errbacks are sent. Return Retry(...) to retry it instead. A context error returned
// once ctx ended with the message's context (not at the hard time limit) does not fail the
// task: its message is Nacked and the task runs again later.
type TaskFunc func(ctx context.Context, t *Task) (any, error)

// WorkerConfig configures a Worker. Fields that stand for a Celery setting name it
// (task_default_queue, task_track_started, result_extended...).
type WorkerConfig struct {
	// Publisher sends retries, callbacks, chain steps and errbacks (a *kombu.Publisher with
	// kombu.EnvelopeMarshaler). Required.
	Publisher message.Publisher
	// Results stores task states where Celery clients read them; nil stores nothing.
	Results ResultBackend
	// DefaultQueue is where canvas tasks (callbacks, chain steps, errbacks) go when their
	// signature names no queue and TaskQueues does not list them: Celery's
	// task_default_queue, "celery" by default.
	DefaultQueue string
	// TaskQueues maps task names to queues for canvas tasks whose signature names none, as
	// a simple form of Celery's task_routes. Keys are names or glob patterns ("proj.py.*").
	TaskQueues map[string]string
	// UnknownTaskTopic, when set, is where messages for unregistered tasks are republished
	// (and then acked); when empty they are logged, failed with NotRegistered and acked, as
	// Celery does (see ErrUnknownTask).
	UnknownTaskTopic string
	// MaxETAWait is how long the handler holds a task whose eta is still ahead before it runs
	// it; a task further ahead is Nacked (the kombu.Subscriber then hides it until its eta).
	// Default 30 s; it must not be negative.
	MaxETAWait time.Duration
	// Hostname names the worker in the results' traceback texts and STARTED states; default
	// "go-worker".
	Hostname string
	// TrackStarted stores the STARTED state before a task runs (Celery's
	// task_track_started).
	TrackStarted bool
	// ResultExtended stores, with every state of a task (STARTED, SUCCESS, FAILURE, RETRY,
	// REVOKED), what Celery's result_extended setting stores: the task's name, args,
	// kwargs, the worker's Hostname, the retries count, the queue (the routing key it was
	// delivered with) and its stamps, which Celery clients read as AsyncResult.name, .args,
	// .kwargs, .worker, .retries and .queue (see RequestInfo).
	ResultExtended bool
}

// RegisterOption sets an option of Worker.Register.
type RegisterOption func(*registered)

// MaxRetries sets how often the task may be retried (Celery's max_retries); a negative
// value means without limit.
func MaxRetries(n int) RegisterOption { return func(r *registered) { r.maxRetries = n } }

// RetryDelay sets the countdown of a Retry without one (Celery's
// default_retry_delay).
func RetryDelay(d time.Duration) RegisterOption {
	return func(r *registered) { r.retryDelay = d }
}

// IgnoreResult never stores the task's results (Celery's ignore_result on the
// task), whatever the message says.
func IgnoreResult() RegisterOption { return func(r *registered) { r.ignoreResult = true } }

type registered struct {
	fn           TaskFunc
	maxRetries   int
	retryDelay   time.Duration
	ignoreResult bool
	auto         autoRetry    // worker_autoretry.go
	limiter      *rateLimiter // worker_ratelimit.go
}

// Worker runs Celery tasks received through a Watermill router, the way a Celery worker
// does: it honours eta, expires, time limits, retries, callbacks, errbacks and chains, and
// stores results in a Celery result backend.
type Worker struct {
	cfg    WorkerConfig
	logger watermill.LoggerAdapter
	now    func() time.Time

	mu    sync.RWMutex
	tasks map[string]*registered
}

// setDefaults fills the zero fields with their defaults.
func (c *WorkerConfig) setDefaults() {
	if c.DefaultQueue == "" {
		c.DefaultQueue = "celery"
	}
	if c.MaxETAWait == 0 {
		c.MaxETAWait = 30 * time.Second
	}
	if c.Hostname == "" {
		c.Hostname = "go-worker"
	}
}

// Validate reports every invalid field as a *kombu.ConfigError naming it.
func (c WorkerConfig) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &kombu.ConfigError{Field: "WorkerConfig." + field, Reason: fmt.Sprintf(format, args...)})
	}
	if c.Publisher == nil {
		bad("Publisher", "is required")
	}
	if c.MaxETAWait < 0 {
		bad("MaxETAWait", "must not be negative, got %s", c.MaxETAWait)
	}
	for _, pattern := range slices.Sorted(maps.Keys(c.TaskQueues)) {
		if _, err := path.Match(pattern, ""); err != nil {
			bad("TaskQueues["+pattern+"]", "is not a valid pattern: %v", err)
		} else if c.TaskQueues[pattern] == "" {
			bad("TaskQueues["+pattern+"]", "names no queue")
		}
	}
	return errors.Join(errs...)
}

// NewWorker returns a Worker; register tasks, then add Handler to a router. An invalid
// config gives *kombu.ConfigError values (errors.Is kombu.ErrInvalidConfig).
func NewWorker(cfg WorkerConfig, logger watermill.LoggerAdapter) (*Worker, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	return &Worker{cfg: cfg, logger: logger, now: time.Now, tasks: map[string]*registered{}}, nil
}

// Register makes the worker run fn for tasks named name. Registering a name again replaces
// its function.
func (w *Worker) Register(name string, fn TaskFunc, opts ...RegisterOption) {
	r := &registered{fn: fn, maxRetries: DefaultMaxRetries, retryDelay: DefaultRetryDelay}
	for _, o := range opts {
		o(r)
	}
	w.mu.Lock()
	w.tasks[name] = r
	w.mu.Unlock()
}

// Tasks returns the registered task names.
func (w *Worker) Tasks() []string {
	w.mu.RLock()
	defer w.mu.RUnlock()
	names := make([]string, 0, len(w.tasks))
	for n := range w.tasks {
		names = append(names, n)
	}
	return names
}

// clock reads the worker's clock in UTC: the times the worker writes (the eta and expires of
// retries and canvas tasks) are in UTC, as Celery's app.now() with its default timezone,
// whatever the machine's local zone.
func (w *Worker) clock() time.Time { return w.now().UTC() }

func (w *Worker) lookup(name string) *registered {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.tasks[name]
}

// Handler returns the handler to add to a router with AddConsumerHandler (or
// AddNoPublisherHandler) on the queue the tasks arrive on. It returns an error, so that the
// router Nacks the message, for messages that are not tasks, unknown tasks (unless routed),
// tasks whose eta is too far ahead, when storing a result or sending a retry or canvas
// task fails (except storing RETRY once the retry was sent: that is logged), and when the
// message's context ends before the task finished (the task's cancellation error is not
// stored as a failure). A task that fails by itself is acked, as Celery does.
func (w *Worker) Handler() message.NoPublishHandlerFunc {
	return func(msg *message.Message) error { return w.Handle(msg) }
}

// Handle runs the task in msg; see Handler.
func (w *Worker) Handle(msg *message.Message) error {
	t, err := TaskFromMessage(msg)
	if err != nil {
		return err
	}
	ctx := msg.Context()
	topic := message.SubscribeTopicFromCtx(ctx)
	if topic == "" {
		topic = msg.Metadata.Get(kombu.MetadataQueue)
	}
	reg := w.lookup(t.Name)
	if reg == nil {
		if w.cfg.UnknownTaskTopic == "" {
			return w.rejectUnknown(ctx, t)
		}
		// Rebuilt from the task, so that the SQS receipt metadata is not sent along.
		out, err := t.Message()
		if err != nil {
			return fmt.Errorf("celery: worker: routing unknown task %s (%s): %w", t.Name, t.ID, err)
		}
		if err := w.cfg.Publisher.Publish(w.cfg.UnknownTaskTopic, out); err != nil {
			return fmt.Errorf("celery: worker: routing unknown task %s (%s): %w", t.Name, t.ID, err)
		}
		return nil
	}
	r := &run{w: w, reg: reg, t: t, topic: topic, redelivered: redelivered(msg), routingKey: topic}
	if rk, ok := msg.Metadata[kombu.MetadataRoutingKey]; ok {
		r.routingKey = rk
	}
	return r.execute(ctx)
}

// rejectUnknown does what Celery's worker does with a task nobody registered: log it, store
// a NotRegistered failure where the client looks for the result, and drop the message. Only
// a failure to store the result Nacks it (to be tried again, with the Nack backoff).
func (w *Worker) rejectUnknown(ctx context.Context, t *Task) error {
	w.logger.Error("Received an unregistered task; it is failed with NotRegistered and discarded",
		ErrUnknownTask, watermill.LogFields{"task": t.Name, "task_id": t.ID})
	if w.cfg.Results == nil {
		return nil
	}
	exc := &ExceptionInfo{Type: "NotRegistered", Module: "celery.exceptions", Message: []any{t.Name}}
	res := TaskResult{TaskID: t.ID, Status: StateFailure, Result: exc, GroupID: t.Group, ParentID: t.ParentID,
		Traceback: fmt.Sprintf("Traceback (most recent call last):\n  Go worker %s\n%s\n", w.cfg.Hostname, exc.Error())}
	if w.cfg.ResultExtended {
		// As Celery's worker, which fails an unknown task with a request that holds none
		// of the extended values: they are all stored as null.
		res.Request = &RequestInfo{}
	}
	if err := w.cfg.Results.Store(context.WithoutCancel(ctx), res); err != nil {
		return fmt.Errorf("celery: worker: storing the NotRegistered failure of task %s (%s): %w", t.Name, t.ID, err)
	}
	return nil
}

// run is one execution of a task.
type run struct {
	w     *Worker
	reg   *registered
	t     *Task
	topic string
	// redelivered is set when SQS delivered the message before.
	redelivered bool
	// routingKey is the routing key the task was delivered with (the topic when the message
	// has no kombu.MetadataRoutingKey), stored as the result's queue with ResultExtended.
	routingKey string
}

// redelivered tells whether msg was delivered before: SQS's receive count
// (kombu.MetadataReceiveCount) is above 1.
func redelivered(msg *message.Message) bool {
	n, err := strconv.Atoi(msg.Metadata.Get(kombu.MetadataReceiveCount))
	return err == nil && n > 1
}

func (r *run) execute(ctx context.Context) error {
	t := r.t
	if done, err := r.finishSucceeded(ctx); done {
		return err
	}
	now := r.w.now()
	if t.Expires != nil && now.After(*t.Expires) {
		r.w.logger.Info("Task expired, not run", watermill.LogFields{"task": t.Name, "task_id": t.ID})
		return r.revoke(ctx)
	}
	if t.ETA != nil && t.ETA.After(now) {
		wait := t.ETA.Sub(now)
		if wait > r.w.cfg.MaxETAWait {
			return fmt.Errorf("celery: worker: task %s (%s) is not due before %s", t.Name, t.ID, t.ETA.UTC().Format(time.RFC3339Nano))
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		}
		if t.Expires != nil && r.w.now().After(*t.Expires) {
			return r.revoke(ctx)
		}
	}

	if err := r.rateLimit(ctx); err != nil {
		return err
	}
	if r.w.cfg.TrackStarted {
		if err := r.store(ctx, StateStarted, map[string]any{"pid": os.Getpid(), "hostname": r.w.cfg.Hostname}, ""); err != nil {
			return err
		}
	}
	result, err := r.call(ctx)
	if err != nil && ctx.Err() != nil && interrupted(err) {
		// The message's context ended (the router or the subscription is closing) before
		// the task finished: the task did not fail. Nothing is stored and the message is
		// Nacked, so that it runs again later.
		r.w.logger.Info("Task interrupted by the end of its message's context; the message is Nacked",
			watermill.LogFields{"task": t.Name, "task_id": t.ID, "error": err.Error()})
		return fmt.Errorf("celery: worker: task %s (%s) interrupted: %w", t.Name, t.ID, err)
	}
	err = r.reg.auto.retryFor(err, t.Retries)
	var retry *RetryError
	switch {
	case err == nil:
		return r.succeed(ctx, result)
	case errors.As(err, &retry):
		return r.retry(ctx, retry)
	default:
		return r.fail(ctx, err)
	}
}

// interrupted tells whether a task's error is a context's end (cancellation or deadline).
// The hard time limit is not one: call turns it into TimeLimitExceeded.
func interrupted(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// errHardTimeLimit is the cause of a task context ended by the task's hard time limit.
var errHardTimeLimit = errors.New("celery: worker: hard time limit exceeded")

// call runs the task function under the task's time limits. When the hard limit passes
// before the function returns, the task fails with TimeLimitExceeded; the function keeps
// running until it returns (a goroutine cannot be killed), its context cancelled. When ctx
// ends first, call returns its error at once.
func (r *run) call(ctx context.Context) (any, error) {
	hard, soft := r.t.TimeLimit[0], r.t.TimeLimit[1]
	if soft != nil && *soft > 0 {
		ctx = context.WithValue(ctx, softLimitKey{}, r.w.now().Add(seconds(*soft)))
	}
	if hard == nil || *hard <= 0 {
		return r.safeCall(ctx)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, seconds(*hard), errHardTimeLimit)
	defer cancel()
	type outcome struct {
		v   any
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		v, err := r.safeCall(ctx)
		done <- outcome{v, err}
	}()
	exceeded := func() (any, error) {
		return nil, &TaskError{Type: "TimeLimitExceeded", Module: "billiard.exceptions",
			Args: []any{*hard}, Err: fmt.Errorf("hard time limit (%gs) exceeded", *hard)}
	}
	// The cause tells the hard limit from the end of the message's context, whichever came
	// first.
	hitLimit := func() bool { return errors.Is(context.Cause(ctx), errHardTimeLimit) }
	select {
	case o := <-done:
		// A function that gave up because its deadline passed hit the hard limit too.
		if o.err != nil && errors.Is(o.err, context.DeadlineExceeded) && hitLimit() {
			return exceeded()
		}
		return o.v, o.err
	case <-ctx.Done():
		if hitLimit() {
			return exceeded()
		}
		return nil, ctx.Err()
	}
}

// safeCall runs the function, turning a panic into a failure.
func (r *run) safeCall(ctx context.Context) (v any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return r.reg.fn(ctx, r.t)
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func (r *run) succeed(ctx context.Context, result any) error {
	raw, err := resultJSON(result)
	if err != nil {
		// As Celery, a result the serializer cannot encode fails the task.
		return r.fail(ctx, &TaskError{Type: "EncodeError", Module: "kombu.exceptions",
			Err: fmt.Errorf("task %s (%s): the result cannot be encoded as JSON: %w", r.t.Name, r.t.ID, err)})
	}
	// As Celery's worker: the callbacks and the next chain step are sent before the result
	// is stored (which lists them as its children), and the chord part returned last. Until
	// SUCCESS is stored, an error Nacks the message and the task runs again; once it is
	// stored, a redelivery does not run the task again (finishSucceeded).
	out := r.callbackMessages(json.RawMessage(raw))
	if err := r.publish(ctx, out); err != nil {
		return err
	}
	if err := r.storeResult(ctx, StateSuccess, json.RawMessage(raw), "", children(out)); err != nil {
		return err
	}
	return r.chordPartReturn(ctx, StateSuccess, json.RawMessage(raw))
}

// finishSucceeded handles a redelivered task whose SUCCESS is already stored, as Celery's
// worker does (worker_deduplicate_successful_tasks): the function is not run again; the
// callbacks and the next chain step are sent again with the stored result only when the
// stored result has no children (they were not sent), and the chord part is returned (a
// header task recorded twice counts once). It reports whether the task had succeeded. Only
// a redelivered message pays for reading the stored state; a state that cannot be read lets
// the task run, as in Celery.
func (r *run) finishSucceeded(ctx context.Context) (bool, error) {
	if !r.redelivered || r.w.cfg.Results == nil || r.t.IgnoreResult || r.reg.ignoreResult {
		return false, nil
	}
	t := r.t
	cur, err := r.w.cfg.Results.Get(context.WithoutCancel(ctx), t.ID)
	if err != nil {
		if !errors.Is(err, ErrResultNotFound) {
			r.w.logger.Error("Cannot read the state of a redelivered task; it runs again", err,
				watermill.LogFields{"task": t.Name, "task_id": t.ID})
		}
		return false, nil
	}
	if cur.Status != StateSuccess {
		return false, nil
	}
	r.w.logger.Info("Task already completed successfully, not run again", watermill.LogFields{"task": t.Name, "task_id": t.ID})
	raw, ok := cur.Result.(json.RawMessage)
	if !ok {
		if raw, err = json.Marshal(cur.Result); err != nil {
			return true, fmt.Errorf("celery: worker: the stored result of task %s (%s): %w", t.Name, t.ID, err)
		}
	}
	if len(raw) == 0 {
		raw = json.RawMessage("null")
	}
	if len(cur.Children) == 0 {
		if err := r.publish(ctx, r.callbackMessages(raw)); err != nil {
			return true, err
		}
	}
	return true, r.chordPartReturn(ctx, StateSuccess, raw)
}

// revoke stores REVOKED for an expired task, as Celery does.
func (r *run) revoke(ctx context.Context) error {
	exc := &ExceptionInfo{Type: "TaskRevokedError", Module: "celery.exceptions", Message: []any{"expired"}}
	if err := r.store(ctx, StateRevoked, exc, ""); err != nil {
		return err
	}
	return r.chordPartReturn(ctx, StateRevoked, exc)
}

func (r *run) fail(ctx context.Context, err error) error {
	exc := exceptionFor(err)
	r.w.logger.Info("Task failed", watermill.LogFields{"task": r.t.Name, "task_id": r.t.ID, "error": err.Error()})
	if serr := r.store(ctx, StateFailure, exc, r.traceback(exc)); serr != nil {
		return serr
	}
	if cerr := r.chordPartReturn(ctx, StateFailure, exc); cerr != nil {
		return cerr
	}
	if cerr := r.failChain(ctx, exc, r.traceback(exc)); cerr != nil { // worker_chainfail.go
		return cerr
	}
	return r.sendErrbacks(ctx)
}

// retry sends the task again as Celery's Task.retry does, or fails it once its retries are
// used up.
func (r *run) retry(ctx context.Context, re *RetryError) error {
	t := r.t
	if r.reg.maxRetries >= 0 && t.Retries+1 > r.reg.maxRetries {
		cause := re.Err
		if cause == nil {
			cause = maxRetriesExceeded(t)
		}
		return r.fail(ctx, cause)
	}
	countdown := r.reg.retryDelay
	if re.Countdown != nil {
		countdown = *re.Countdown
	}
	next := *t
	next.Retries = t.Retries + 1
	// Celery's Task.retry sends the retry from within the task, so apply_async gives a
	// task without a parent the task itself as parent (and its own id as root).
	if next.ParentID == "" {
		next.ParentID = t.ID
	}
	if next.RootID == "" {
		next.RootID = t.ID
	}
	// As Celery's apply_async ("if countdown:"), a zero countdown sends no eta: the retry
	// runs as soon as a worker takes it. The request's own eta is not carried over either.
	// One reading of the worker's clock, in UTC, gives the eta and the message TTL.
	now := r.w.clock()
	next.ETA = nil
	if countdown != 0 {
		eta := now.Add(countdown)
		next.ETA = &eta
	}
	next.ArgsRepr, next.KwargsRepr = "", ""
	msg, err := next.message(func() time.Time { return now })
	if err != nil {
		return r.fail(ctx, err)
	}
	topic := r.topic
	if topic == "" {
		topic = r.w.cfg.DefaultQueue
	}
	if err := r.w.cfg.Publisher.Publish(topic, msg); err != nil {
		return fmt.Errorf("celery: worker: sending the retry of task %s (%s): %w", t.Name, t.ID, err)
	}
	// As Celery's worker: the RETRY state holds the retry's cause, null when there is none,
	// and the traceback of the Retry exception, whose text names the cause.
	var exc any
	text := fmt.Sprintf("Retry in %gs", countdown.Seconds())
	if re.Err != nil {
		cause := exceptionFor(re.Err)
		exc = cause
		if b, err := json.Marshal(cause); err == nil {
			text += ": " + pyExceptionRepr(b)
		}
	}
	traceback := fmt.Sprintf("Traceback (most recent call last):\n  Go task %s[%s] on %s\ncelery.exceptions.Retry: %s\n",
		t.Name, t.ID, r.w.cfg.Hostname, text)
	// The retry is on its way: the message at hand is acked whatever happens to the RETRY
	// state, since a Nack would run the task again and send a second retry.
	if err := r.store(ctx, StateRetry, exc, traceback); err != nil {
		r.w.logger.Error("Task retried, but its RETRY state was not stored", err,
			watermill.LogFields{"task": t.Name, "task_id": t.ID})
	}
	return nil
}

// store writes a state to the result backend, if any, unless results are ignored: then
// nothing is stored, failures included (Celery's default, task_store_errors_even_if_ignored
// off).
func (r *run) store(ctx context.Context, state string, result any, traceback string) error {
	return r.storeResult(ctx, state, result, traceback, nil)
}

func (r *run) storeResult(ctx context.Context, state string, result any, traceback string, children []any) error {
	if r.w.cfg.Results == nil || r.t.IgnoreResult || r.reg.ignoreResult {
		return nil
	}
	res := TaskResult{TaskID: r.t.ID, Status: state, Result: result, Traceback: traceback,
		GroupID: r.t.Group, ParentID: r.t.ParentID, Children: children, Request: r.requestInfo()}
	if err := r.w.cfg.Results.Store(context.WithoutCancel(ctx), res); err != nil {
		return fmt.Errorf("celery: worker: storing the result of task %s (%s): %w", r.t.Name, r.t.ID, err)
	}
	return nil
}

func (r *run) traceback(exc *ExceptionInfo) string {
	return fmt.Sprintf("Traceback (most recent call last):\n  Go task %s[%s] on %s\n%s\n",
		r.t.Name, r.t.ID, r.w.cfg.Hostname, exc.Error())
}
