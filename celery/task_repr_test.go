package celery_test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// TestTaskArgsReprMatchesCelery writes tasks with NewTask and compares their argsrepr and
// kwargsrepr headers with what Celery's own client writes for the same arguments
// (interop/argsrepr.py): saferepr's quoting, number forms, depth and length limits, typed
// values, and kwargs in the order given.
func TestTaskArgsReprMatchesCelery(t *testing.T) {
	long := strings.Repeat("word ", 300)
	var many []any
	for i := 0; i < 600; i++ {
		many = append(many, i)
	}
	var deep any = []any{"bottom"}
	for i := 0; i < 6; i++ {
		deep = []any{deep, i}
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	cases := []struct {
		name   string
		args   []any
		kwargs json.RawMessage // as given, in this order
	}{
		{"simple", []any{1, "two", 3.5}, json.RawMessage(`{}`)},
		{"one_arg", []any{"x"}, json.RawMessage(`{"b": 1, "a": 2, "c": {"z": 1, "y": 2}}`)},
		{"no_args", nil, json.RawMessage(`{"only": null}`)},
		{"quotes_and_escapes", []any{"it's", `say "hi"`, "line\nbreak\ttab", `back\slash`, "é ☃ 😀"}, json.RawMessage(`{"k'ey": "v'al"}`)},
		{"numbers", []any{0, -0.0, 1.0, 1e16, 1e15, 1.5e-5, 0.0001, 123456789012345678, 0.1, 1e22, -2.5, true, false, nil}, json.RawMessage(`{"big": 12345678901234567890123, "exp": 1E5, "neg": -1e-7}`)},
		{"datetimes", []any{celery.DateTime{Time: at}, celery.DateTime{Time: at.Truncate(time.Second)},
			celery.DateTime{Time: time.Date(2026, 1, 2, 3, 4, 0, 0, time.FixedZone("", 2*3600))},
			celery.DateTime{Time: time.Date(2026, 1, 2, 3, 4, 0, 0, time.FixedZone("", -5*3600-1800))}},
			json.RawMessage(`{"date": {"__type__": "date", "__value__": "2026-01-02"}, "time": {"__type__": "time", "__value__": "03:04:05.000100"}, "t2": {"__type__": "time", "__value__": "03:04:00+01:00"}, "naive": {"__type__": "datetime", "__value__": "2026-01-02T03:04:05"}}`)},
		{"floats", nil, json.RawMessage(`{"f": [1.0, -0.0, 1e16, 1.5e16, 9999999999999998.0, 123.456, 1e-4, 2.5e-5, 1e300, 1e400, 0.30000000000000004]}`)},
		{"typed", []any{map[string]any{"__type__": "decimal", "__value__": "1.50"},
			map[string]any{"__type__": "uuid", "__value__": map[string]any{"hex": "0123456789abcdef0123456789abcdef"}},
			map[string]any{"__type__": "bytes", "__value__": "raw bytes"}}, json.RawMessage(`{}`)},
		{"depth", []any{deep, map[string]any{"a": map[string]any{"b": map[string]any{"c": 1}}}, []any{}, map[string]any{}}, json.RawMessage(`{"d": {"e": {"f": {"g": 1}}}, "l": [[[[1]]]]}`)},
		{"long_string", []any{long, "after"}, json.RawMessage(`{"s": "` + strings.TrimSpace(long) + `"}`)},
		{"long_list", []any{many, "after"}, json.RawMessage(`{"l": [[1, 2], [3, [4, 5]]]}`)},
		{"long_nested", []any{[]any{many}, map[string]any{"k": many}}, json.RawMessage(`{}`)},
		{"cut_at_close", []any{strings.Repeat("x", 1010), []any{1, 2}}, json.RawMessage(`{}`)},
	}
	type pair [2]string
	var in []pair
	var got []pair
	for _, c := range cases {
		msg, err := celery.NewTask("repr.task", c.args, nil, celery.WithRawKwargs(c.kwargs))
		require.NoError(t, err, c.name)
		var h struct {
			ArgsRepr   string `json:"argsrepr"`
			KwargsRepr string `json:"kwargsrepr"`
		}
		require.NoError(t, json.Unmarshal([]byte(msg.Metadata.Get(kombu.MetadataHeaders)), &h))
		got = append(got, pair{h.ArgsRepr, h.KwargsRepr})
		task, err := celery.TaskFromMessage(msg)
		require.NoError(t, err)
		in = append(in, pair{string(task.RawArgs), string(task.RawKwargs)})
	}
	stdin, err := json.Marshal(in)
	require.NoError(t, err)
	cmd := exec.Command(testenv.Python(t), "interop/argsrepr.py")
	cmd.Dir = testenv.RepoRoot(t)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	var want []pair
	require.NoError(t, json.Unmarshal(out, &want))
	require.Len(t, want, len(cases))
	for i, c := range cases {
		assert.Equal(t, want[i][0], got[i][0], "%s: argsrepr", c.name)
		assert.Equal(t, want[i][1], got[i][1], "%s: kwargsrepr", c.name)
		if len(want[i][0]) < 400 && len(want[i][1]) < 400 {
			t.Logf("%s: %s %s", c.name, want[i][0], want[i][1])
		}
	}
}
