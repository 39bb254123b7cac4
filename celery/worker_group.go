package celery

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// signatureMessages builds the tasks Celery's Signature.apply_async(prepend) sends for sig:
// one for a task or a chain, one per member for a group (marked with the group's id, for
// the children of the result).
func (r *run) signatureMessages(sig Signature, prepend []any, chain []Signature) ([]outgoing, error) {
	return r.signatureMessagesAt(sig, prepend, chain, r.w.clock())
}

// signatureMessagesAt is signatureMessages with the clock read once, at now, for the
// countdowns, expires and message TTLs, as Celery's send_task reads it once.
func (r *run) signatureMessagesAt(sig Signature, prepend []any, chain []Signature, now time.Time) ([]outgoing, error) {
	if members, gid, ok, err := groupMembers(sig); ok || err != nil {
		if err != nil {
			return nil, err
		}
		var out []outgoing
		for _, m := range members {
			o, err := r.signatureMessagesAt(m, prepend, nil, now)
			if err != nil {
				return nil, err
			}
			out = append(out, o...)
		}
		for i := range out {
			out[i].group = gid
		}
		return out, nil
	}
	t, queue, err := r.taskFromSignature(sig, prepend, chain, now)
	if err != nil {
		return nil, err
	}
	msg, err := t.message(func() time.Time { return now })
	if err != nil {
		return nil, err
	}
	return []outgoing{{queue: queue, sig: t.Name, msg: msg}}, nil
}

// groupMembers returns the member signatures of a group signature, as group.apply_async
// sends them: each with the group's id (its task_id option, else a new one, returned too) and
// its index. The group's other options override those of each member, as group.apply_async
// passes them to each task's apply_async: link and link_error too, so that a group given
// them with set() or as options sends every task with those callbacks (group.link and
// group.link_error, by contrast, write them on the tasks themselves). A member's group_id is
// kept, as Celery keeps it (an immutable option). The group's priority only fills in a
// member's: Celery's worker sends a group link with priority=None, which drops the group's,
// while a chord body group is sent with it.
func groupMembers(sig Signature) ([]Signature, string, bool, error) {
	if len(sig.Raw) > 0 {
		var s Signature
		if err := json.Unmarshal(sig.Raw, &s); err != nil {
			return nil, "", false, err
		}
		sig = s
	}
	if sig.SubtaskType != "group" {
		return nil, "", false, nil
	}
	raw, ok := sig.Kwargs["tasks"]
	if !ok {
		return nil, "", true, errors.New("celery: worker: a group signature without tasks")
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, "", true, err
	}
	var tasks []Signature
	if err := json.Unmarshal(b, &tasks); err != nil {
		return nil, "", true, fmt.Errorf("celery: worker: group signature: %w", err)
	}
	gid, _ := sig.Options["task_id"].(string)
	if gid == "" {
		gid = uuid.NewString()
	}
	members := make([]Signature, 0, len(tasks))
	for i, m := range tasks {
		opts := make(map[string]any, len(sig.Options)+len(m.Options)+2)
		for k, v := range m.Options {
			opts[k] = v
		}
		for k, v := range sig.Options {
			switch k {
			case "task_id", "chord", "group_id", "group_index":
			case "priority":
				if _, ok := opts[k]; !ok {
					opts[k] = v
				}
			default:
				opts[k] = v
			}
		}
		if _, ok := opts["group_id"]; !ok {
			opts["group_id"] = gid
		}
		opts["group_index"] = i
		members = append(members, Signature{Task: m.Task, Args: m.Args, Kwargs: m.Kwargs, Options: opts,
			SubtaskType: m.SubtaskType, Immutable: m.Immutable || sig.Immutable})
	}
	return members, gid, true, nil
}

// groupOf is the group Celery's worker makes of several signatures: group(sigs).
func groupOf(sigs []Signature) Signature {
	return Signature{Task: "celery.group", SubtaskType: "group", Kwargs: map[string]any{"tasks": sigs}}
}

// isGroup tells whether sig is a group signature.
func isGroup(sig Signature) bool { return sig.SubtaskType == "group" }
