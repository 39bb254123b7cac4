package celery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/google/uuid"

	"github.com/watermill-kombu/watermill-kombu/internal/pywire"
)

// errNoChordBackend is logged for a chord header task when the worker's result backend does
// not keep chord state.
var errNoChordBackend = errors.New("celery: worker: the result backend does not keep chord state (use redisbackend.Backend)")

// chordPartReturn is what Celery's backend.on_chord_part_return does after a chord header
// task reached a final state: record it, and when it completes the header, call the body
// with the header's results in order, or fail the body with a ChordError when a header task
// failed. Exactly one worker (Go or Python) calls the body.
func (r *run) chordPartReturn(ctx context.Context, state string, result any) error {
	t := r.t
	if t.Chord == nil || t.Group == "" {
		return nil
	}
	return r.chordPart(ctx, ChordPart{GroupID: t.Group, GroupIndex: t.GroupIndex, TaskID: t.ID, State: state, Result: result}, *t.Chord)
}

// chordPart records part, a task of the header of the chord whose body is body.
func (r *run) chordPart(ctx context.Context, part ChordPart, body Signature) error {
	cb, ok := r.w.cfg.Results.(ChordBackend)
	if !ok {
		r.w.logger.Error("Task is part of a chord: its body will not be called", errNoChordBackend,
			watermill.LogFields{"task_id": part.TaskID, "group": part.GroupID})
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	gid := part.GroupID
	join, err := cb.ChordPartReturn(ctx, part)
	var joinErr *ChordJoinError
	if err != nil && (join == nil || !errors.As(err, &joinErr)) {
		return fmt.Errorf("celery: worker: task %s: recording its chord part: %w", part.TaskID, err)
	}
	if join == nil {
		return nil
	}
	// On an error the claim is given up, so that the header task, redelivered after its
	// Nack, claims the chord again (a lapsed claim is only taken again by a header task).
	release := func(err error) error {
		if rerr := join.Release(ctx); rerr != nil {
			r.w.logger.Error("Cannot release a chord claim", rerr, watermill.LogFields{"group": gid})
		}
		return err
	}
	var values []json.RawMessage
	var failure string
	if joinErr != nil {
		// As Celery's on_chord_part_return: results that cannot be joined fail the body
		// with a join error, as a failed header task does, rather than leaving the header
		// task to be retried until it is dead-lettered.
		failure = "Join error: " + joinErr.Exception
	} else {
		values, failure = chordValues(join.Results())
	}
	if failure != "" {
		r.w.logger.Info("Chord failed", watermill.LogFields{"group": gid, "error": failure})
		if err := r.failChordBody(ctx, gid, body, failure); err != nil {
			return release(err)
		}
		return join.Abandon(ctx)
	}
	raw, err := json.Marshal(values)
	if err != nil {
		return r.abortChord(ctx, join, gid, body, fmt.Sprintf("Callback error: %s", err))
	}
	out, err := r.signatureMessages(body, []any{json.RawMessage(raw)}, nil)
	if err != nil {
		return r.abortChord(ctx, join, gid, body, fmt.Sprintf("Callback error: %s", pyStrRepr(err.Error())))
	}
	owned, err := join.Extend(ctx)
	if err != nil {
		return release(fmt.Errorf("celery: worker: chord %s: %w", gid, err))
	}
	if !owned {
		r.w.logger.Info("Chord body not sent: another worker claimed it", watermill.LogFields{"group": gid})
		return nil
	}
	for _, o := range out {
		if err := r.w.cfg.Publisher.Publish(o.queue, o.msg); err != nil {
			return release(fmt.Errorf("celery: worker: sending the body %s of chord %s: %w", o.sig, gid, err))
		}
	}
	if err := join.Complete(ctx); err != nil {
		r.w.logger.Error("Chord state not deleted", err, watermill.LogFields{"group": gid})
	}
	return nil
}

// abortChord fails the body of a complete chord whose body cannot be sent, as Celery does
// for a callback error, and deletes the chord's state.
func (r *run) abortChord(ctx context.Context, join ChordJoin, gid string, body Signature, reason string) error {
	if err := r.failChordBody(ctx, gid, body, reason); err != nil {
		if rerr := join.Release(ctx); rerr != nil {
			r.w.logger.Error("Cannot release a chord claim", rerr, watermill.LogFields{"group": gid})
		}
		return err
	}
	if err := join.Complete(ctx); err != nil {
		r.w.logger.Error("Chord state not deleted", err, watermill.LogFields{"group": gid})
	}
	return nil
}

// chordValues returns the values the body is called with, or, when a header task failed,
// the ChordError message Celery gives: "Dependency <id> raised <repr>" for recorded results,
// "Join error: <repr>" for a saved group result.
func chordValues(rs []ChordResult) ([]json.RawMessage, string) {
	joined := false
	for _, r := range rs {
		joined = joined || r.Group != nil
	}
	var walk func(rs []ChordResult) ([]json.RawMessage, string)
	walk = func(rs []ChordResult) ([]json.RawMessage, string) {
		out := make([]json.RawMessage, 0, len(rs))
		for _, r := range rs {
			if r.Group != nil {
				inner, failure := walk(r.Group)
				if failure != "" {
					return nil, failure
				}
				b, err := json.Marshal(inner)
				if err != nil {
					return nil, "Join error: " + pyStrRepr(err.Error())
				}
				out = append(out, b)
				continue
			}
			if r.State == StateFailure || r.State == StateRevoked {
				if joined {
					return nil, "Join error: " + pyExceptionRepr(r.Result)
				}
				return nil, fmt.Sprintf("Dependency %s raised %s", r.TaskID, pyExceptionRepr(r.Result))
			}
			v := r.Result
			if len(v) == 0 {
				v = json.RawMessage("null")
			}
			out = append(out, v)
		}
		return out, ""
	}
	return walk(rs)
}

// failChordBody stores FAILURE with a ChordError for the chord's body and sends the body's
// errbacks, as Celery's chord_error_from_stack does (backends/base.py). A chain body fails through its first
// task.
func (r *run) failChordBody(ctx context.Context, gid string, body Signature, reason string) error {
	if len(body.Raw) > 0 {
		var s Signature
		if err := json.Unmarshal(body.Raw, &s); err == nil {
			body = s
		}
	}
	if body.SubtaskType == "chain" {
		if steps := chainSteps(body); len(steps) > 0 {
			return r.failChordBody(ctx, gid, steps[0], reason)
		}
	}
	if body.SubtaskType == "group" {
		// Each task of a group body fails with its own errbacks and then the group's, each
		// once, as in Celery's _handle_group_chord_error: the group's are not sent in place
		// of the task's, as when the group is sent.
		groupErrbacks := listOption(body.Options["link_error"])
		s, o := editable(body)
		delete(o, "link_error")
		members, _, _, err := groupMembers(withOptions(s, o))
		if err != nil {
			r.w.logger.Error("Cannot read the chord body's tasks", err, watermill.LogFields{"group": gid})
			return nil
		}
		for _, m := range members {
			if len(groupErrbacks) > 0 {
				m = linkErrorTo(m, groupErrbacks)
			}
			if err := r.failChordBody(ctx, gid, m, reason); err != nil {
				return err
			}
		}
		return nil
	}
	id, _ := body.Options["task_id"].(string)
	if id == "" {
		// As Celery: a body without an id gets one, so that its failure can be stored.
		id = uuid.NewString()
	}
	exc := &ExceptionInfo{Type: "ChordError", Module: "celery.exceptions", Message: []any{reason}}
	if r.w.cfg.Results != nil {
		res := TaskResult{TaskID: id, Status: StateFailure, Result: exc,
			Traceback: fmt.Sprintf("Traceback (most recent call last):\n  Go worker %s, chord %s\ncelery.exceptions.ChordError: %s\n", r.w.cfg.Hostname, gid, reason)}
		if err := r.w.cfg.Results.Store(ctx, res); err != nil {
			return fmt.Errorf("celery: worker: storing the failure of chord %s: %w", gid, err)
		}
	}
	errbacks, err := signatureList(optionRaw(body.Options, "link_error"))
	if err != nil {
		r.w.logger.Error("Cannot read the chord body's errbacks", err, watermill.LogFields{"group": gid})
		return nil
	}
	// Celery sends them from a request it makes up for the body, which has no root id: as
	// one group, with the body's id as argument, parent id and root id.
	fake := &run{w: r.w, reg: r.reg, t: &Task{Name: body.Task, ID: id, RootID: id}, topic: r.topic}
	if err := fake.publish(ctx, fake.appendGroup(nil, errbacks, []any{id})); err != nil {
		return fmt.Errorf("celery: worker: chord %s: %w", gid, err)
	}
	return nil
}

// chainSteps returns the signatures of a chain signature, first step first.
func chainSteps(sig Signature) []Signature {
	steps, _ := canvasTasks(sig)
	return steps
}

// optionRaw returns a signature option as JSON (nil when absent).
func optionRaw(opts map[string]any, key string) json.RawMessage {
	v, ok := opts[key]
	if !ok || v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

// pyExceptionRepr writes the repr of the Python exception a stored exception becomes:
// ValueError('bad').
func pyExceptionRepr(raw json.RawMessage) string {
	var e struct {
		Type    string          `json:"exc_type"`
		Message json.RawMessage `json:"exc_message"`
	}
	if json.Unmarshal(raw, &e) != nil || e.Type == "" {
		return pywire.Repr(raw, false)
	}
	var args []json.RawMessage
	if json.Unmarshal(e.Message, &args) != nil {
		// An older form: the message itself.
		args = []json.RawMessage{e.Message}
	}
	parts := make([]string, 0, len(args))
	for _, a := range args {
		parts = append(parts, pywire.Repr(a, false))
	}
	return e.Type + "(" + strings.Join(parts, ", ") + ")"
}

// pyStrRepr is Python's repr of a str.
func pyStrRepr(s string) string { return pywire.Repr(pywire.AppendString(nil, s), false) }
