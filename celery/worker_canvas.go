package celery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// sigOptions are the apply_async options of a signature that the worker honours when it
// sends the signature as a task.
type sigOptions struct {
	TaskID        string          `json:"task_id"`
	Queue         json.RawMessage `json:"queue"`
	RoutingKey    string          `json:"routing_key"`
	Link          json.RawMessage `json:"link"`
	LinkError     json.RawMessage `json:"link_error"`
	Countdown     *float64        `json:"countdown"`
	ETA           *string         `json:"eta"`
	Expires       json.RawMessage `json:"expires"`
	IgnoreResult  bool            `json:"ignore_result"`
	TimeLimit     *float64        `json:"time_limit"`
	SoftTimeLimit *float64        `json:"soft_time_limit"`
	Priority      *int            `json:"priority"`
	Headers       map[string]any  `json:"headers"`
	Shadow        string          `json:"shadow"`
	GroupID       string          `json:"group_id"`
	GroupIndex    *int            `json:"group_index"`
	ReplyTo       string          `json:"reply_to"`
	Chord         *Signature      `json:"chord"`
}

// errUnsupportedCanvas is logged for chord signatures used as callbacks or errbacks, which
// this worker does not send.
var errUnsupportedCanvas = errors.New("celery: worker: chord signatures are not supported as callbacks")

// outgoing is a canvas task ready to be published.
type outgoing struct {
	queue, sig string
	msg        *message.Message
	// group is the id of the group the task was sent in, "" for none.
	group string
}

// callbackMessages builds the links, with the result as first argument, then the next step of
// the chain, as Celery's worker sends them after a success. As there, several links are sent
// as groups: each group link as it is, then the other links together as one group, whose
// members carry its id.
func (r *run) callbackMessages(result any) []outgoing {
	var out []outgoing
	if len(r.t.Callbacks) == 1 {
		out = r.appendSignature(out, r.t.Callbacks[0], []any{result}, nil)
	} else if len(r.t.Callbacks) > 1 {
		var plain []Signature
		for _, sig := range r.t.Callbacks {
			if isGroup(sig) {
				out = r.appendSignature(out, sig, []any{result}, nil)
			} else {
				plain = append(plain, sig)
			}
		}
		out = r.appendGroup(out, plain, []any{result})
	}
	if n := len(r.t.Chain); n > 0 {
		// The chain is stored last step first: the next step is the last element, and it
		// carries the steps after it.
		rest := append([]Signature(nil), r.t.Chain[:n-1]...)
		out = r.appendSignature(out, r.t.Chain[n-1], []any{result}, rest)
	}
	return out
}

// children lists the tasks in out as the children of a result, in the tuple form of
// Celery's as_tuple: [[id, parent], null] for a task, [[group id, parent], [tasks...]] for
// the tasks of a group.
func children(out []outgoing) []any {
	c := make([]any, 0, len(out))
	for i := 0; i < len(out); {
		o := out[i]
		if o.group == "" {
			c = append(c, []any{[]any{o.msg.UUID, nil}, nil})
			i++
			continue
		}
		var members []any
		for ; i < len(out) && out[i].group == o.group; i++ {
			members = append(members, []any{[]any{out[i].msg.UUID, nil}, nil})
		}
		c = append(c, []any{[]any{o.group, nil}, members})
	}
	return c
}

// sendErrbacks sends the errbacks with the failed task's id as first argument, as Celery's
// worker sends the errbacks it does not call itself: together as one group.
func (r *run) sendErrbacks(ctx context.Context) error {
	return r.publish(ctx, r.appendGroup(nil, r.t.Errbacks, []any{r.t.ID}))
}

// appendGroup builds sigs as the tasks of one group, as Celery's group(sigs).apply_async(prepend)
// sends them, and appends them to out. A member that cannot be sent is logged and skipped,
// the others are sent.
func (r *run) appendGroup(out []outgoing, sigs []Signature, prepend []any) []outgoing {
	if len(sigs) == 0 {
		return out
	}
	members, gid, _, err := groupMembers(groupOf(sigs))
	if err != nil {
		r.w.logger.Error("Cannot send a canvas group", err, watermill.LogFields{"task": r.t.Name, "task_id": r.t.ID})
		return out
	}
	for _, m := range members {
		n := len(out)
		out = r.appendSignature(out, m, prepend, nil)
		for i := n; i < len(out); i++ {
			out[i].group = gid
		}
	}
	return out
}

// publish sends canvas tasks.
func (r *run) publish(_ context.Context, out []outgoing) error {
	for _, o := range out {
		if err := r.w.cfg.Publisher.Publish(o.queue, o.msg); err != nil {
			return fmt.Errorf("celery: worker: sending %s after task %s (%s): %w", o.sig, r.t.Name, r.t.ID, err)
		}
	}
	return nil
}

// appendSignature builds sig as a task and appends it to out. A signature that cannot be sent
// (a group or chord, or a malformed one) is logged and skipped: the task itself has run and
// must not run again.
func (r *run) appendSignature(out []outgoing, sig Signature, prepend []any, chain []Signature) []outgoing {
	msgs, err := r.signatureMessages(sig, prepend, chain) // worker_group.go
	if err == nil {
		return append(out, msgs...)
	}
	r.w.logger.Error("Cannot send a canvas task", err, watermill.LogFields{"task": r.t.Name, "task_id": r.t.ID, "signature": sig.Task})
	return out
}

// taskFromSignature builds the task that Celery's Signature.apply_async(prepend) sends, and
// the queue it goes to.
func (r *run) taskFromSignature(sig Signature, prepend []any, chain []Signature, now time.Time) (*Task, string, error) {
	if len(sig.Raw) > 0 {
		var s Signature
		if err := json.Unmarshal(sig.Raw, &s); err != nil {
			return nil, "", err
		}
		sig = s
	}
	switch sig.SubtaskType {
	case "":
	case "chain":
		return r.chainSignature(sig, prepend, chain, now)
	default:
		return nil, "", fmt.Errorf("%w (%s)", errUnsupportedCanvas, sig.SubtaskType)
	}
	if sig.Task == "" {
		return nil, "", errors.New("celery: worker: a signature without a task name")
	}
	var opts sigOptions
	if len(sig.Options) > 0 {
		b, err := json.Marshal(sig.Options)
		if err == nil {
			err = json.Unmarshal(b, &opts)
		}
		if err != nil {
			return nil, "", fmt.Errorf("signature %s: options: %w", sig.Task, err)
		}
	}
	t := &Task{Name: sig.Task, ID: opts.TaskID, Kwargs: sig.Kwargs, Chain: chain,
		ParentID: r.t.ID, RootID: r.t.RootID, IgnoreResult: opts.IgnoreResult,
		Priority: opts.Priority, Headers: opts.Headers, Shadow: opts.Shadow,
		Group: opts.GroupID, GroupIndex: opts.GroupIndex, ReplyTo: opts.ReplyTo, Chord: opts.Chord}
	if t.RootID == "" {
		t.RootID = r.t.ID
	}
	t.Args = append([]any(nil), sig.Args...)
	if !sig.Immutable {
		t.Args = append(append([]any(nil), prepend...), sig.Args...)
	}
	for _, x := range []struct {
		raw json.RawMessage
		dst *[]Signature
	}{{opts.Link, &t.Callbacks}, {opts.LinkError, &t.Errbacks}} {
		sigs, err := signatureList(x.raw)
		if err != nil {
			return nil, "", fmt.Errorf("signature %s: %w", sig.Task, err)
		}
		*x.dst = sigs
	}
	switch {
	case opts.ETA != nil:
		eta, err := ParseTime(*opts.ETA, true)
		if err != nil {
			return nil, "", fmt.Errorf("signature %s: eta: %w", sig.Task, err)
		}
		t.ETA = &eta
	case opts.Countdown != nil && *opts.Countdown != 0:
		// As Celery's "if countdown:", a zero countdown sends no eta.
		eta := now.Add(seconds(*opts.Countdown))
		t.ETA = &eta
	}
	if !isJSONNull(opts.Expires) {
		var secs float64
		var at string
		if json.Unmarshal(opts.Expires, &secs) == nil {
			exp := now.Add(seconds(secs))
			t.Expires = &exp
		} else if json.Unmarshal(opts.Expires, &at) == nil {
			exp, err := ParseTime(at, true)
			if err != nil {
				return nil, "", fmt.Errorf("signature %s: expires: %w", sig.Task, err)
			}
			t.Expires = &exp
		}
	}
	if opts.TimeLimit != nil || opts.SoftTimeLimit != nil {
		t.TimeLimit = [2]*float64{opts.TimeLimit, opts.SoftTimeLimit}
	}
	return t, r.queueFor(sig.Task, opts), nil
}

// chainSignature sends a chain signature: its first task gets the arguments, and carries the
// others (and the chain left after the current step) as its chain. The chain's options are
// applied to its steps first, as Celery's _chain.run applies them (worker_chainopts.go).
func (r *run) chainSignature(sig Signature, prepend []any, chain []Signature, now time.Time) (*Task, string, error) {
	steps, ok := canvasTasks(sig)
	if !ok || len(steps) == 0 {
		return nil, "", errors.New("celery: worker: a chain signature without tasks")
	}
	steps = applyChainOptions(steps, sig.Options)
	rest := append([]Signature(nil), chain...)
	for i := len(steps) - 1; i >= 1; i-- {
		rest = append(rest, steps[i])
	}
	return r.taskFromSignature(steps[0], prepend, rest, now)
}

// signatureList reads a link option: one signature or a list of them.
func signatureList(raw json.RawMessage) ([]Signature, error) {
	if isJSONNull(raw) {
		return nil, nil
	}
	if raw[0] == '{' {
		var s Signature
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []Signature{s}, nil
	}
	var sigs []Signature
	if err := json.Unmarshal(raw, &sigs); err != nil {
		return nil, err
	}
	return sigs, nil
}

// queueFor returns the queue a canvas task goes to: the signature's queue (a name, or a
// Queue dict with a name), else its routing key (the default exchange routes by queue
// name), else TaskQueues, else the default queue.
func (r *run) queueFor(name string, opts sigOptions) string {
	if !isJSONNull(opts.Queue) {
		var q string
		if json.Unmarshal(opts.Queue, &q) == nil && q != "" {
			return q
		}
		var qd struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(opts.Queue, &qd) == nil && qd.Name != "" {
			return qd.Name
		}
	}
	if opts.RoutingKey != "" {
		return opts.RoutingKey
	}
	return r.w.routeTask(name)
}

// routeTask looks name up in TaskQueues: an exact name first, then glob patterns
// (path.Match syntax, e.g. "proj.py.*"), the longest pattern first.
func (w *Worker) routeTask(name string) string {
	if q := w.cfg.TaskQueues[name]; q != "" {
		return q
	}
	best, queue := -1, ""
	for pattern, q := range w.cfg.TaskQueues {
		if !strings.ContainsAny(pattern, "*?[") || len(pattern) <= best {
			continue
		}
		if ok, _ := path.Match(pattern, name); ok {
			best, queue = len(pattern), q
		}
	}
	if queue != "" {
		return queue
	}
	return w.cfg.DefaultQueue
}
