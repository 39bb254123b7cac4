package celery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// failChain passes a failure on to the steps of the chain after the failed task, as Celery's
// backend._fail_chain does: each step with a task id (the client freezes them) is stored as
// failed with the same exception, so that a client waiting on the chain's last result gets
// the error instead of waiting forever, and a step that belongs to a chord's header returns
// its part, so that the chord fails instead of stalling. A step that is a chord completes
// only when its body does, so its body is failed too (after the other steps, as Celery).
func (r *run) failChain(ctx context.Context, exc *ExceptionInfo, traceback string) error {
	// The next step is the last; Celery walks them in this order.
	steps := append([]Signature(nil), r.t.Chain...)
	for len(steps) > 0 {
		step := steps[0]
		steps = steps[1:]
		var s Signature
		if len(step.Raw) > 0 {
			if err := json.Unmarshal(step.Raw, &s); err != nil {
				continue
			}
		} else {
			s = step
		}
		if s.SubtaskType == "chord" {
			if body, ok := chordBody(s); ok {
				steps = append(steps, body)
			}
		}
		id, _ := s.Options["task_id"].(string)
		if id == "" {
			continue
		}
		gid, _ := s.Options["group_id"].(string)
		var body *Signature
		if raw := optionRaw(s.Options, "chord"); raw != nil {
			body = new(Signature)
			if err := json.Unmarshal(raw, body); err != nil {
				body = nil
			}
		}
		failedAlready := false
		if body != nil && r.w.cfg.Results != nil {
			if cur, err := r.w.cfg.Results.Get(ctx, id); err == nil {
				failedAlready = cur.Status == StateFailure || cur.Status == StateRevoked
			} else if !errors.Is(err, ErrResultNotFound) {
				return fmt.Errorf("celery: worker: reading the state of chain step %s (%s): %w", s.Task, id, err)
			}
		}
		if r.w.cfg.Results != nil && !r.t.IgnoreResult && !r.reg.ignoreResult {
			res := TaskResult{TaskID: id, Status: StateFailure, Result: exc, Traceback: traceback, GroupID: gid,
				Request: r.chainStepRequest(step)}
			if err := r.w.cfg.Results.Store(context.WithoutCancel(ctx), res); err != nil {
				return fmt.Errorf("celery: worker: storing the failure of chain step %s (%s): %w", s.Task, id, err)
			}
		}
		if body != nil && gid != "" && !failedAlready {
			var index *int
			if n, ok := s.Options["group_index"]; ok {
				if v, err := json.Marshal(n); err == nil {
					var i int
					if json.Unmarshal(v, &i) == nil {
						index = &i
					}
				}
			}
			part := ChordPart{GroupID: gid, GroupIndex: index, TaskID: id, State: StateFailure, Result: exc}
			if err := r.chordPart(ctx, part, *body); err != nil {
				return err
			}
		}
	}
	return nil
}

// chordBody returns the body of a chord signature (its kwargs' body).
func chordBody(sig Signature) (Signature, bool) {
	raw, ok := sig.Kwargs["body"]
	if !ok || raw == nil {
		return Signature{}, false
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return Signature{}, false
	}
	var body Signature
	if json.Unmarshal(b, &body) != nil {
		return Signature{}, false
	}
	return body, true
}
