package celery_test

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/watermill-kombu/watermill-kombu/celery"
)

// extendedGolden are the documents Celery 5.7's backend stores with result_extended=True,
// written by interop/gen_result_extended.py.
func extendedGolden(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("testdata/result_extended.json")
	require.NoError(t, err)
	var cases []struct{ Name, Doc string }
	require.NoError(t, json.Unmarshal(b, &cases))
	out := map[string]string{}
	for _, c := range cases {
		var buf bytes.Buffer
		require.NoError(t, json.Compact(&buf, []byte(c.Doc)), c.Name)
		out[c.Name] = buf.String()
	}
	return out
}

func intp(n int) *int { return &n }

// TestResultExtendedMatchesCelery encodes the results Celery stored in the golden file and
// compares the documents byte for byte once compacted: same keys, same order, same values.
// Reading Celery's documents back gives the same results.
func TestResultExtendedMatchesCelery(t *testing.T) {
	golden := extendedGolden(t)
	done := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	worker := func(retries int) *celery.RequestInfo {
		return &celery.RequestInfo{Name: "proj.tasks.add",
			Args:   json.RawMessage(`[2, 18446744073709551617, 0.1, "x"]`),
			Kwargs: json.RawMessage(`{"z": {"a": [null, true]}, "b": 1.5}`),
			Worker: "celery@host", Retries: intp(retries), Queue: "tasks"}
	}
	stamped := worker(2)
	stamped.StampedHeaders = []string{"on", "flag", "missing"}
	stamped.Stamps = map[string]any{"on": "v", "flag": []any{json.Number("1"), "a"}, "extra": json.Number("3")}
	id := func(n string) string { return "00000000-0000-4000-8000-00000000000" + n }
	valueError := func(msg string) *celery.ExceptionInfo {
		return &celery.ExceptionInfo{Type: "ValueError", Message: []any{msg}, Module: "builtins"}
	}
	cases := map[string]celery.TaskResult{
		"success": {TaskID: id("1"), Status: celery.StateSuccess, Result: json.RawMessage(`{"sum": 5}`),
			DateDone: done, Request: worker(2)},
		"started": {TaskID: id("2"), Status: celery.StateStarted,
			Result: json.RawMessage(`{"pid": 42, "hostname": "celery@host"}`), Request: worker(2)},
		"retry": {TaskID: id("3"), Status: celery.StateRetry, Result: valueError("not yet"),
			Traceback: "Traceback (most recent call last):\nRetry\n", GroupID: "g-1", ParentID: "p-1", Request: worker(2)},
		"failure": {TaskID: id("4"), Status: celery.StateFailure, Result: valueError("broke"),
			Traceback: "Traceback (most recent call last):\nValueError: broke\n", DateDone: done, Request: worker(0)},
		"stamped": {TaskID: id("5"), Status: celery.StateSuccess, DateDone: done, Request: stamped},
		"unknown": {TaskID: id("6"), Status: celery.StateFailure, DateDone: done, Request: &celery.RequestInfo{},
			Result: &celery.ExceptionInfo{Type: "NotRegistered", Message: []any{"proj.tasks.nope"}, Module: "celery.exceptions"}},
		"chain_step": {TaskID: id("7"), Status: celery.StateFailure, Result: valueError("upstream"),
			Traceback: "Traceback (most recent call last):\n", DateDone: done, GroupID: "g-7",
			Request: &celery.RequestInfo{Name: "proj.tasks.mul", Args: json.RawMessage(`[3, 0.5]`),
				Kwargs: json.RawMessage(`{"k": "v"}`), Retries: intp(0)}},
	}
	require.Len(t, golden, len(cases))
	for name, want := range golden {
		t.Run(name, func(t *testing.T) {
			r, ok := cases[name]
			require.True(t, ok)
			got, err := json.Marshal(r)
			require.NoError(t, err)
			assert.Equal(t, want, string(got))

			var back celery.TaskResult
			require.NoError(t, json.Unmarshal([]byte(want), &back))
			require.NotNil(t, back.Request)
			assert.Equal(t, r.Request.Name, back.Request.Name)
			assert.JSONEq(t, orNull(r.Request.Args), orNull(back.Request.Args))
			assert.JSONEq(t, orNull(r.Request.Kwargs), orNull(back.Request.Kwargs))
			assert.Equal(t, r.Request.Worker, back.Request.Worker)
			assert.Equal(t, r.Request.Retries, back.Request.Retries)
			assert.Equal(t, r.Request.Queue, back.Request.Queue)
			assert.Equal(t, r.Request.StampedHeaders, back.Request.StampedHeaders)
			if r.Request.Stamps != nil {
				assert.Equal(t, map[string]any{"on": "v", "flag": []any{json.Number("1"), "a"}}, back.Request.Stamps,
					"only the stamped headers' stamps are stored")
			}
			again, err := json.Marshal(back)
			require.NoError(t, err)
			assert.Equal(t, want, string(again), "a result Celery stored is written back unchanged")
		})
	}
}

func orNull(raw json.RawMessage) string {
	if raw == nil {
		return "null"
	}
	return string(raw)
}

// TestResultExtendedPythonFloats stores and reads back arguments holding Python's NaN and
// Infinity, which Celery's JSON serializer writes as bare words.
func TestResultExtendedPythonFloats(t *testing.T) {
	r := celery.TaskResult{TaskID: "id-1", Status: celery.StateSuccess, Result: 1,
		DateDone: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Request: &celery.RequestInfo{Name: "t", Args: json.RawMessage("[NaN, 1e400, \n -Infinity]"),
			Kwargs: json.RawMessage(`{"x": Infinity, "s": "NaN"}`), Retries: intp(1)}}
	doc, err := r.MarshalJSON()
	require.NoError(t, err)
	assert.Equal(t, `{"status":"SUCCESS","result":1,"traceback":null,"children":[],"date_done":"2026-01-02T03:04:05.000000+00:00",`+
		`"name":"t","args":[NaN,1e400,-Infinity],"kwargs":{"x":Infinity,"s":"NaN"},"worker":null,"retries":1,"queue":null,"task_id":"id-1"}`,
		string(doc))
	var back celery.TaskResult
	require.NoError(t, back.UnmarshalJSON(doc))
	require.NotNil(t, back.Request)
	assert.Equal(t, "[NaN,1e400,-Infinity]", string(back.Request.Args))
	assert.Equal(t, `{"x":Infinity,"s":"NaN"}`, string(back.Request.Kwargs))
	assert.Equal(t, json.RawMessage("1"), back.Result)

	r.Request.Args = json.RawMessage("[1,")
	_, err = r.MarshalJSON()
	assert.Error(t, err, "arguments that are not JSON")
}

// TestResultWithoutExtendedKeys reads a result stored without result_extended: no Request,
// and none of its keys written back.
func TestResultWithoutExtendedKeys(t *testing.T) {
	doc := `{"status": "SUCCESS", "result": 3, "traceback": null, "children": [], "date_done": "2026-01-02T03:04:05.000001+00:00", "task_id": "x"}`
	var r celery.TaskResult
	require.NoError(t, json.Unmarshal([]byte(doc), &r))
	assert.Nil(t, r.Request)
	out, err := json.Marshal(r)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, json.Compact(&buf, []byte(doc)))
	assert.Equal(t, buf.String(), string(out))
}

// FuzzTaskResultJSON reads arbitrary documents as results: no panic, and a result that reads
// is written back and reads again with the same request.
func FuzzTaskResultJSON(f *testing.F) {
	b, err := os.ReadFile("testdata/result_extended.json")
	require.NoError(f, err)
	var cases []struct{ Doc string }
	require.NoError(f, json.Unmarshal(b, &cases))
	for _, c := range cases {
		f.Add([]byte(c.Doc))
	}
	f.Add([]byte(`{"status": "SUCCESS", "result": NaN, "name": 1, "args": [Infinity], "retries": "x", "stamped_headers": ["s", "status"], "s": -Infinity, "task_id": "t"}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		var r celery.TaskResult
		if r.UnmarshalJSON(doc) != nil {
			return
		}
		out, err := r.MarshalJSON()
		if err != nil {
			return // e.g. a stamp holding NaN, which encoding/json cannot write
		}
		var back celery.TaskResult
		require.NoError(t, back.UnmarshalJSON(out), "%s", out)
		if r.Request == nil {
			assert.Nil(t, back.Request)
			return
		}
		require.NotNil(t, back.Request, "%s", out)
		assert.Equal(t, [3]string{r.Request.Name, r.Request.Worker, r.Request.Queue},
			[3]string{back.Request.Name, back.Request.Worker, back.Request.Queue})
		assert.Equal(t, r.Request.Retries, back.Request.Retries)
	})
}

// TestResultExtendedOddValues reads extended keys of other types than Celery writes as null:
// the result itself still reads (a backend reads it before storing the next state).
func TestResultExtendedOddValues(t *testing.T) {
	doc := `{"status": "FAILURE", "result": null, "traceback": null, "children": [], "date_done": null, ` +
		`"name": 1, "args": "a", "kwargs": [], "worker": {}, "retries": "2", "queue": true, "stamped_headers": "s", "task_id": "x"}`
	var r celery.TaskResult
	require.NoError(t, r.UnmarshalJSON([]byte(doc)))
	assert.Equal(t, celery.StateFailure, r.Status)
	assert.Equal(t, &celery.RequestInfo{Args: json.RawMessage(`"a"`), Kwargs: json.RawMessage(`[]`)}, r.Request)
}
