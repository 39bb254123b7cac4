package celery

import (
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
)

// rawCases are objects and arrays for rawMembers and rawItems, the common and the unusual.
var rawCases = []string{
	`{"lang": "py", "task": "t", "id": "x", "retries": 0, "timelimit": [null, null], "stamps": {}}`,
	`{}`, ` { "a" : 1 , "a" : 2 } `, `{"k\u00e9": 1}`, "{\"\xff\": 1}", `{"a": "caf\u00e9", "b": "\xff"}`,
	`null`, `"x"`, `{"a": NaN}`, `{"a": 1,}`, `{"a": 1} x`, `{"a"}`, ``, `{"a": [1, {"b": null}]}`,
	`[[2, 3], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]`, `[]`, ` [ 1 , "a" ] `,
	`[[1, [2]], {"a": {"b": []}}]`, `[1,]`, `[1 2]`, `[1] x`, `[NaN]`, `[`, "[\"\xff\"]",
}

// TestRawMembersAndItems: rawMembers and rawItems give what json.Unmarshal gives, errors
// included.
func TestRawMembersAndItems(t *testing.T) {
	for _, c := range rawCases {
		checkRaw(t, []byte(c))
	}
}

// FuzzRawMembersAndItems: rawMembers and rawItems agree with json.Unmarshal on any text.
func FuzzRawMembersAndItems(f *testing.F) {
	for _, c := range rawCases {
		f.Add([]byte(c))
	}
	f.Fuzz(checkRaw)
}

func checkRaw(t *testing.T, b []byte) {
	checkLikeUnmarshal(t, b, rawMembers)
	checkLikeUnmarshal(t, b, rawItems)
}

// checkLikeUnmarshal fails when read does not give, for b, what json.Unmarshal gives into a
// T (a map or a slice; empty and nil are alike), error text included.
func checkLikeUnmarshal[T any](t *testing.T, b []byte, read func([]byte) (T, error)) {
	var want T
	wantErr := json.Unmarshal(b, &want)
	got, err := read(b)
	if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
		t.Fatalf("%q: error %v, json.Unmarshal: %v", b, err, wantErr)
	}
	if err == nil && reflect.ValueOf(got).Len()+reflect.ValueOf(want).Len() > 0 && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: %s, json.Unmarshal: %s", b, fmtRaw(got), fmtRaw(want))
	}
}

// fmtRaw shows a map or slice of raw JSON texts.
func fmtRaw(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestTakePlain: the header fields read without json.Unmarshal get what it gives, and the
// values it would refuse or transform are left to it.
func TestTakePlain(t *testing.T) {
	for _, raw := range []string{`"abc"`, `""`, `"caf` + "\xc3\xa9" + `"`, `0`, `-12`, `123456789012345`, `true`, `false`} {
		for _, dst := range []func() any{
			func() any { return new(string) }, func() any { return new(int) },
			func() any { return new(*int) }, func() any { return new(bool) },
		} {
			got, want := dst(), dst()
			wantErr := json.Unmarshal([]byte(raw), want)
			if takePlain(json.RawMessage(raw), got) {
				if wantErr != nil || !reflect.DeepEqual(got, want) {
					t.Errorf("%s into %T: %v, json.Unmarshal: %v (%v)", raw, got, reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem(), wantErr)
				}
			}
		}
	}
	for _, raw := range []string{`1.0`, `1e2`, `1234567890123456789012`, `"5"`, `true`} {
		if takePlain(json.RawMessage(raw), new(int)) {
			t.Errorf("%s taken as an int", raw)
		}
	}
	for _, raw := range []string{`"a\"b"`, `"\u00e9"`, "\"\xff\"", `5`, `null`} {
		if takePlain(json.RawMessage(raw), new(string)) {
			t.Errorf("%s taken as a plain string", raw)
		}
	}
}

// TestTaskFromMessagePriority: the priority metadata is read as fmt.Sscan reads it, base
// prefixes included, with the decimal EnvelopeMarshaler writes taken without it.
func TestTaskFromMessagePriority(t *testing.T) {
	for text, want := range map[string]string{"0": "0", "7": "7", "255": "255", "-3": "-3", "+4": "4",
		"010": "8", "0x10": "16", " 5": "5", "x": "none", "": "none"} {
		msg, err := NewTask("t", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		msg.Metadata["kombu_priority"] = text
		task, err := TaskFromMessage(msg)
		if err != nil {
			t.Fatal(err)
		}
		got := "none"
		if task.Priority != nil {
			got = strconv.Itoa(*task.Priority)
		}
		if got != want {
			t.Errorf("%q: priority %s, want %s", text, got, want)
		}
	}
}

// TestTaskFromMessageOwnsArguments: a task's raw arguments do not share the message payload,
// which its owner may reuse.
func TestTaskFromMessageOwnsArguments(t *testing.T) {
	msg, err := NewTask("t", []any{1, 2}, map[string]any{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	task, err := TaskFromMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range msg.Payload {
		msg.Payload[i] = ' '
	}
	if string(task.RawArgs) != `[1, 2]` || string(task.RawKwargs) != `{"k": "v"}` {
		t.Errorf("arguments %s %s after the payload changed", task.RawArgs, task.RawKwargs)
	}
}
