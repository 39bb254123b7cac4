package kombu

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// checkGoldenTask compares TaskFromMessage with what Celery's worker makes of the message.
func checkGoldenTask(t *testing.T, v goldenVector, msg *message.Message) {
	t.Helper()
	task, err := TaskFromMessage(msg)
	if err != nil {
		t.Fatalf("TaskFromMessage: %v", err)
	}
	want := v.Task
	h := want.Headers
	str := func(key string) string {
		var s string
		_ = json.Unmarshal(h[key], &s)
		return s
	}
	if task.Protocol != want.Protocol {
		t.Errorf("protocol %d, want %d", task.Protocol, want.Protocol)
	}
	for _, c := range []struct{ name, got, want string }{
		{"task", task.Name, str("task")}, {"id", task.ID, str("id")}, {"shadow", task.Shadow, str("shadow")},
		{"group", task.Group, str("group")}, {"root_id", task.RootID, str("root_id")},
		{"parent_id", task.ParentID, str("parent_id")}, {"origin", task.Origin, str("origin")},
		{"lang", task.Lang, str("lang")}, {"reply_to", task.ReplyTo, want.ReplyTo},
		{"correlation_id", task.CorrelationID, want.CorrelationID},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if want.Protocol == 2 {
		if task.ArgsRepr != str("argsrepr") || task.KwargsRepr != str("kwargsrepr") {
			t.Errorf("reprs %q %q", task.ArgsRepr, task.KwargsRepr)
		}
	}
	var retries int
	_ = json.Unmarshal(h["retries"], &retries)
	if task.Retries != retries {
		t.Errorf("retries %d, want %d", task.Retries, retries)
	}
	for _, c := range []struct {
		key string
		got any
	}{{"eta", task.ETA}, {"expires", task.Expires}} {
		wantS := str(c.key)
		gotT := c.got.(*time.Time)
		if (wantS == "") != (gotT == nil) {
			t.Errorf("%s = %v, want %q", c.key, gotT, wantS)
		} else if gotT != nil {
			wt, _ := time.Parse(time.RFC3339Nano, wantS)
			if !gotT.Equal(wt) {
				t.Errorf("%s = %v, want %s", c.key, gotT, wantS)
			}
		}
	}
	var limits [2]*float64
	_ = json.Unmarshal(h["timelimit"], &limits)
	for i := range limits {
		if (limits[i] == nil) != (task.TimeLimit[i] == nil) || (limits[i] != nil && *limits[i] != *task.TimeLimit[i]) {
			t.Errorf("timelimit[%d] differs: %v", i, task.TimeLimit)
		}
	}
	if want.Protocol == 2 {
		var ign bool
		_ = json.Unmarshal(h["ignore_result"], &ign)
		if task.IgnoreResult != ign {
			t.Errorf("ignore_result %v", task.IgnoreResult)
		}
		if gi := h["group_index"]; string(gi) != "null" && (task.GroupIndex == nil || strconv.Itoa(*task.GroupIndex) != string(gi)) {
			t.Errorf("group_index %v, want %s", task.GroupIndex, gi)
		}
		for k, raw := range h {
			if strings.HasPrefix(k, "x-") {
				got, _ := json.Marshal(task.Headers[k])
				if !jsonEqual(t, got, raw) {
					t.Errorf("custom header %s = %s, want %s", k, got, raw)
				}
			}
		}
	}
	if !jsonEqual(t, task.RawArgs, want.Args) || !jsonEqual(t, task.RawKwargs, want.Kwargs) {
		t.Errorf("args %s kwargs %s, want %s %s", task.RawArgs, task.RawKwargs, want.Args, want.Kwargs)
	}
	for key, sigs := range map[string][]Signature{"callbacks": task.Callbacks, "errbacks": task.Errbacks, "chain": task.Chain} {
		wantRaw := want.Embed[key]
		got := []byte("null")
		if sigs != nil {
			got, _ = json.Marshal(sigs)
		}
		if !jsonEqual(t, got, wantRaw) {
			t.Errorf("%s = %s, want %s", key, got, wantRaw)
		}
	}
}
