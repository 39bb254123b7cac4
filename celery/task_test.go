package celery

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/uuid"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/golden"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// TestGoldenTasks reads every golden vector as Celery's worker would: the tasks Kombu and
// Celery sent give the task Celery decoded, and the other messages are not tasks.
func TestGoldenTasks(t *testing.T) {
	for _, v := range golden.Load(t) {
		if v.Error != "" {
			continue // not decodable; the kombu package tests the error
		}
		t.Run(v.Name, func(t *testing.T) {
			msg, err := kombu.EnvelopeMarshaler{}.Unmarshal(v.Queue, v.SQS())
			if err != nil {
				t.Fatal(err)
			}
			if v.Task == nil {
				if _, err := TaskFromMessage(msg); !errors.Is(err, ErrNotATask) {
					t.Errorf("TaskFromMessage on a non-task: %v", err)
				}
				return
			}
			checkGoldenTask(t, v, msg)
		})
	}
}

// checkGoldenTask compares TaskFromMessage with what Celery's worker makes of the message.
func checkGoldenTask(t *testing.T, v golden.Vector, msg *message.Message) {
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
				if !golden.JSONEqual(t, got, raw) {
					t.Errorf("custom header %s = %s, want %s", k, got, raw)
				}
			}
		}
	}
	if !golden.JSONEqual(t, task.RawArgs, want.Args) || !golden.JSONEqual(t, task.RawKwargs, want.Kwargs) {
		t.Errorf("args %s kwargs %s, want %s %s", task.RawArgs, task.RawKwargs, want.Args, want.Kwargs)
	}
	for key, sigs := range map[string][]Signature{"callbacks": task.Callbacks, "errbacks": task.Errbacks, "chain": task.Chain} {
		wantRaw := want.Embed[key]
		got := []byte("null")
		if sigs != nil {
			got, _ = json.Marshal(sigs)
		}
		if !golden.JSONEqual(t, got, wantRaw) {
			t.Errorf("%s = %s, want %s", key, got, wantRaw)
		}
	}
}

// Values pinned by interop/gen_golden.py.
var (
	goldenNow     = time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)
	goldenReplyTo = "7d1c3a0e-5b7f-3c55-9d0c-2a1f0e9b8c41"
	goldenOrigin  = "gen4242@golden-host"
)

func goldenTaskID(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012x", n) }

// sameAsGolden marshals msg and checks that, but for the delivery tag (a fresh UUID on each
// publish), the SQS body is byte for byte what Kombu and Celery sent.
func sameAsGolden(t *testing.T, name string, dest kombu.Destination, msg *message.Message) *kombu.OutgoingMessage {
	t.Helper()
	v := golden.Get(t, name)
	out, err := kombu.EnvelopeMarshaler{RawEnvelope: !v.OuterBase64}.Marshal(dest, msg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := kombu.DecodeEnvelope(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	want, err := kombu.DecodeEnvelope(v.Body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := uuid.Parse(got.Properties.DeliveryTag); err != nil {
		t.Errorf("delivery tag %q is not a UUID", got.Properties.DeliveryTag)
	}
	got.Properties.DeliveryTag = want.Properties.DeliveryTag
	if g, w := got.EncodeJSON(), want.EncodeJSON(); g != w {
		t.Errorf("envelope differs from Celery's\n got %s\nwant %s", g, w)
	}
	if string(got.Body) != string(want.Body) {
		t.Errorf("body differs from Celery's\n got %s\nwant %s", got.Body, want.Body)
	}
	return out
}

// pyLang makes the lang header Celery's, so that whole envelopes compare equal.
var pyLang = WithHeaders(map[string]any{"lang": "py"})

// pyRegistered writes the ignore_result header as apply_async does for a task the client
// has registered (its ignore_result, False here), where NewTask leaves it to the worker (null,
// as send_task writes for a task it does not know).
var pyRegistered = WithHeaders(map[string]any{"ignore_result": false})

func TestNewTaskMatchesCelery(t *testing.T) {
	clock := withClock(func() time.Time { return goldenNow })
	common := func(n int) []TaskOption {
		return []TaskOption{WithTaskID(goldenTaskID(n)), WithReplyTo(goldenReplyTo), WithOrigin(goldenOrigin), pyLang, pyRegistered, clock}
	}
	// Protocol 1 has no lang header; extra headers would be sent as headers.
	v1 := func(n int) []TaskOption {
		return []TaskOption{WithTaskID(goldenTaskID(n)), WithReplyTo(goldenReplyTo), clock, WithProtocol(1)}
	}
	celery := kombu.Destination{Queue: "celery"}
	cases := []struct {
		golden string
		dest   kombu.Destination
		args   []any
		opts   []TaskOption
		md     map[string]string
	}{
		{golden: "celery_v2_add", dest: celery, args: []any{2, 3}, opts: common(1)},
		{golden: "celery_v2_countdown", dest: celery, args: []any{4, 5}, opts: append(common(3), WithCountdown(10*time.Second))},
		{golden: "celery_v2_eta_expires", dest: celery, args: []any{6, 7}, opts: append(common(4),
			WithETA(time.Date(2025, 3, 15, 8, 0, 0, 0, time.UTC)), WithExpires(time.Date(2025, 3, 16, 8, 0, 0, 250000000, time.UTC)))},
		{golden: "celery_v2_options", dest: celery, args: []any{1, 1}, opts: append(common(5),
			WithExpiresIn(60*time.Second), WithTimeLimit(30, 20.5), WithIgnoreResult(), WithShadow("alias.add"),
			WithHeaders(map[string]any{"x-custom": "value", "x-number": 7, "ignore_result": true}), WithPriority(5), WithRetryCount(3),
			WithParent(goldenTaskID(51), goldenTaskID(50)), WithGroup(goldenTaskID(52), 1))},
		{golden: "celery_v2_fifo", dest: kombu.Destination{Queue: "tasks.fifo", FIFO: true}, args: []any{8, 9}, opts: common(6),
			md: map[string]string{kombu.MetadataMessageGroupID: "group-1", kombu.MetadataDeduplicationID: "dedup-1"}},
		{golden: "celery_v2_callbacks", dest: celery, args: []any{1, 2}, opts: append(common(7),
			WithLink(Signature{Task: "proj.tasks.add", Args: []any{10, 20}, Options: map[string]any{"task_id": goldenTaskID(70)}, Immutable: true}),
			WithLinkError(Signature{Task: "proj.tasks.add", Args: []any{0, 0}, Options: map[string]any{"task_id": goldenTaskID(71)}, Immutable: true}))},
		{golden: "celery_v1_add", dest: celery, args: []any{2, 3}, opts: v1(8)},
		{golden: "celery_v1_eta_expires", dest: celery, args: []any{2, 3}, opts: append(v1(9),
			WithCountdown(30*time.Second), WithExpiresIn(120*time.Second))},
		{golden: "celery_v2_raw_json_envelope", dest: celery, args: []any{2, 3}, opts: common(10)},
	}
	for _, c := range cases {
		t.Run(c.golden, func(t *testing.T) {
			msg, err := NewTask("proj.tasks.add", c.args, nil, c.opts...)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range c.md {
				msg.Metadata.Set(k, v)
			}
			out := sameAsGolden(t, c.golden, c.dest, msg)
			v := golden.Get(t, c.golden)
			if g, _ := v.SendParams["MessageGroupId"].(string); g != out.MessageGroupID {
				t.Errorf("MessageGroupID %q, want %q", out.MessageGroupID, g)
			}
			if d, _ := v.SendParams["MessageDeduplicationId"].(string); d != out.DeduplicationID {
				t.Errorf("DeduplicationID %q, want %q", out.DeduplicationID, d)
			}
			var id string
			_ = json.Unmarshal(v.Properties["correlation_id"], &id)
			if msg.UUID != id {
				t.Errorf("UUID %s is not the task id %s", msg.UUID, id)
			}
		})
	}
}

func TestTaskRoundTrip(t *testing.T) {
	type point struct {
		X, Y int
	}
	eta := time.Date(2030, 1, 2, 3, 4, 5, 600000000, time.UTC)
	for _, proto := range []int{1, 2} {
		msg, err := NewTask("geo.move", []any{point{1, 2}, "ünï", nil}, map[string]any{"speed": 1.5, "when": DateTime{eta}},
			WithProtocol(proto), WithETA(eta), WithTimeLimit(10, 0), WithRetryCount(2), WithHeaders(map[string]any{"x-k": []int{1}}))
		if err != nil {
			t.Fatal(err)
		}
		if msg.Metadata[kombu.MetadataTask] != "geo.move" || msg.Metadata[kombu.MetadataCorrelationID] != msg.UUID || msg.Metadata[kombu.MetadataReplyTo] == "" {
			t.Fatalf("metadata %v", msg.Metadata)
		}
		out, err := kombu.EnvelopeMarshaler{}.Marshal(kombu.Destination{Queue: "celery"}, msg)
		if err != nil {
			t.Fatal(err)
		}
		back, err := kombu.EnvelopeMarshaler{}.Unmarshal("celery", &types.Message{Body: aws.String(out.Body), MessageId: aws.String("m")})
		if err != nil {
			t.Fatal(err)
		}
		if back.UUID != msg.UUID || back.Metadata[kombu.MetadataTask] != "geo.move" {
			t.Fatalf("protocol %d: UUID %s metadata %v", proto, back.UUID, back.Metadata)
		}
		task, err := TaskFromMessage(back)
		if err != nil {
			t.Fatal(err)
		}
		if task.Protocol != proto || task.Name != "geo.move" || task.ID != msg.UUID || task.Retries != 2 ||
			task.ETA == nil || !task.ETA.Equal(eta) || *task.TimeLimit[0] != 10 || task.TimeLimit[1] != nil {
			t.Errorf("protocol %d: %+v", proto, task)
		}
		var p point
		var s string
		if err := task.DecodeArgs(&p, &s, nil); err != nil || p != (point{1, 2}) || s != "ünï" {
			t.Errorf("DecodeArgs: %v %v %q", err, p, s)
		}
		var kw struct {
			Speed float64  `json:"speed"`
			When  DateTime `json:"when"`
		}
		if err := task.DecodeKwargs(&kw); err != nil || kw.Speed != 1.5 || !kw.When.Equal(eta) {
			t.Errorf("DecodeKwargs: %v %+v", err, kw)
		}
		if err := task.DecodeArgs(&p); !errors.Is(err, ErrTaskArguments) || !strings.Contains(err.Error(), "3 positional arguments") {
			t.Errorf("count mismatch: %v", err)
		}
		var n int
		if err := task.DecodeArgs(&n, nil, nil); !errors.Is(err, ErrTaskArguments) || !strings.Contains(err.Error(), "argument 0") {
			t.Errorf("type mismatch: %v", err)
		}
		if fmt.Sprint(task.Headers["x-k"]) != "[1]" {
			t.Errorf("custom header %v", task.Headers)
		}
		if proto == 2 && (task.ArgsRepr != "({'X': 1, 'Y': 2}, 'ünï', None)" || task.Lang != "go" || task.RootID != task.ID) {
			t.Errorf("argsrepr %q lang %q root %q", task.ArgsRepr, task.Lang, task.RootID)
		}
		if proto == 2 && task.KwargsRepr != "{'speed': 1.5, 'when': datetime.datetime(2030, 1, 2, 3, 4, 5, 600000, tzinfo=datetime.timezone.utc)}" {
			t.Errorf("kwargsrepr %q", task.KwargsRepr)
		}

		// A received task can be sent again, e.g. as a retry.
		task.Retries++
		again, err := task.Message()
		if err != nil || again.UUID != task.ID {
			t.Fatal(err)
		}
		retried, _ := TaskFromMessage(again)
		if retried.Retries != 3 || string(retried.RawArgs) != `[{"X": 1, "Y": 2}, "\u00fcn\u00ef", null]` {
			t.Errorf("retried %+v", retried)
		}
	}
}

func TestTaskFromMessageHybridAndErrors(t *testing.T) {
	hybrid := message.NewMessage("u", []byte(`{"task": "body.name", "id": "i1", "args": [1], "kwargs": {"a": 2}, "eta": "2024-01-01T00:00:00", "utc": true}`))
	hybrid.Metadata[kombu.MetadataHeaders] = `{"task": "header.name", "retries": 5}`
	task, err := TaskFromMessage(hybrid)
	if err != nil || task.Name != "header.name" || task.ID != "i1" || task.Retries != 5 || string(task.RawArgs) != "[1]" ||
		task.ETA == nil || !task.ETA.Equal(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("hybrid: %v %+v", err, task)
	}

	for name, msg := range map[string]*message.Message{
		"plain json": message.NewMessage("u", []byte(`{"hello": "world"}`)),
		"array":      message.NewMessage("u", []byte(`[1, 2]`)),
		"text":       message.NewMessage("u", []byte(`hi`)),
		"raw envelope": func() *message.Message {
			m := message.NewMessage("u", []byte(`{"task": "x"}`))
			m.Metadata[kombu.MetadataRaw] = "true"
			return m
		}(),
	} {
		if _, err := TaskFromMessage(msg); !errors.Is(err, ErrNotATask) {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := message.NewMessage("u", []byte(`{"not": "a list"}`))
	bad.Metadata[kombu.MetadataHeaders] = `{"task": "t", "id": "i"}`
	if _, err := TaskFromMessage(bad); !errors.Is(err, ErrNotATask) && !errors.Is(err, ErrInvalidTask) {
		t.Errorf("bad v2 body: %v", err)
	}
	bad = message.NewMessage("u", []byte(`[[], {}]`))
	bad.Metadata[kombu.MetadataHeaders] = `{"task": "t", "id": "i", "eta": "tomorrow"}`
	if _, err := TaskFromMessage(bad); !errors.Is(err, ErrInvalidTask) {
		t.Errorf("bad eta: %v", err)
	}
	if _, err := NewTask("", nil, nil); !errors.Is(err, ErrInvalidTask) {
		t.Errorf("empty name: %v", err)
	}
	if _, err := NewTask("t", []any{func() {}}, nil); !errors.Is(err, ErrInvalidTask) {
		t.Errorf("unencodable argument: %v", err)
	}
}

func TestCeleryTimes(t *testing.T) {
	want := time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)
	for _, s := range []string{"2025-03-14T15:09:26.535897+00:00", "2025-03-14T15:09:26.535897Z", "2025-03-14T15:09:26.535897",
		"2025-03-14 15:09:26.535897", "2025-03-14T16:09:26.535897+01:00"} {
		got, err := ParseTime(s, true)
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: %v %v", s, got, err)
		}
	}
	if got, err := ParseTime("2025-03-14T15:09:26", true); err != nil || !got.Equal(want.Truncate(time.Second)) {
		t.Errorf("no fraction: %v %v", got, err)
	}
	if _, err := ParseTime("soon", true); !errors.Is(err, ErrInvalidTask) {
		t.Errorf("bad time: %v", err)
	}
	var d DateTime
	for _, js := range []string{`{"__type__": "datetime", "__value__": "2025-03-14T15:09:26.535897+00:00"}`, `"2025-03-14T15:09:26.535897Z"`} {
		if err := json.Unmarshal([]byte(js), &d); err != nil || !d.Equal(want) {
			t.Errorf("%s: %v %v", js, d, err)
		}
	}
	if b, _ := json.Marshal(DateTime{want}); string(b) != `{"__type__":"datetime","__value__":"2025-03-14T15:09:26.535897+00:00"}` {
		t.Errorf("DateTime JSON %s", b)
	}
}

// TestKombuReadsGoBodies writes SQS bodies made by NewTask and has the pinned Kombu and
// Celery read them back (`interop/gen_golden.py --check-go DIR`): Kombu's SQS decoding and
// Celery's worker Request must see the task, its arguments, eta, expiry and time limits.
func TestKombuReadsGoBodies(t *testing.T) {
	dir := t.TempDir()
	eta := time.Now().Add(time.Hour)
	for name, c := range map[string]struct {
		opts []TaskOption
		m    kombu.EnvelopeMarshaler
	}{
		"v2":           {opts: []TaskOption{WithTimeLimit(30, 20), WithETA(eta), WithExpiresIn(2 * time.Hour), WithHeaders(map[string]any{"x": 1})}},
		"v2_gzip":      {m: kombu.EnvelopeMarshaler{Compression: "gzip"}},
		"v2_raw":       {m: kombu.EnvelopeMarshaler{RawEnvelope: true}},
		"v1":           {opts: []TaskOption{WithProtocol(1), WithETA(eta)}},
		"v1_links":     {opts: []TaskOption{WithProtocol(1), WithParent("p-1", "r-1"), WithShadow("shadowed"), WithIgnoreResult()}},
		"v2_links":     {opts: []TaskOption{WithParent("p-1", "r-1"), WithShadow("shadowed"), WithIgnoreResult()}},
		"v2_task_gzip": {opts: []TaskOption{WithCompression("gzip")}},
	} {
		msg, err := NewTask("proj.tasks.add", []any{2, 3}, map[string]any{"when": DateTime{eta}}, c.opts...)
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.m.Marshal(kombu.Destination{Queue: "celery"}, msg)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".sqs"), []byte(out.Body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(testenv.Python(t), filepath.Join(testenv.RepoRoot(t), "interop", "gen_golden.py"), "--check-go", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("Kombu/Celery could not read the Go bodies: %v\n%s", err, out)
	}
}
