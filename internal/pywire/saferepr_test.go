package pywire

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestArgsRepr holds outputs of Celery 5.7's saferepr(args, 1024, maxlevels=3) for the decoded
// JSON (celery/task_repr_test.go compares with Celery itself when Python is there).
func TestArgsRepr(t *testing.T) {
	for _, c := range []struct {
		js    string
		tuple bool
		want  string
	}{
		{`[]`, true, `()`},
		{`["x"]`, true, `('x',)`},
		{`[1, "two", 3.5, true, null]`, true, `(1, 'two', 3.5, True, None)`},
		{`["it's", "say \"hi\"", "back\\slash"]`, true, `('it\'s', 'say "hi"', 'back\slash')`},
		{`{"b": 1, "a": 2}`, false, `{'b': 1, 'a': 2}`},
		{`[1.0, -0.0, 1e16, 1.5e16, 9999999999999998.0, 1e-4, 2.5e-5, 1e400, 12345678901234567890123]`, true,
			`(1.0, -0.0, 1e+16, 1.5e+16, 9999999999999998.0, 0.0001, 2.5e-05, inf, 12345678901234567890123)`},
		{`[[[[[1]], 4], 5], {"a": {"b": {"c": 1}}}]`, true, `([[[...], 4], 5], {'a': {'b': {...}}})`},
		{`[{"__type__": "datetime", "__value__": "2026-01-02T03:04:05.123456+00:00"}, {"__type__": "datetime", "__value__": "2026-01-02T03:04:00-05:30"}]`, true,
			`(datetime.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.timezone.utc), datetime.datetime(2026, 1, 2, 3, 4, tzinfo=datetime.timezone(datetime.timedelta(days=-1, seconds=66600))))`},
		{`[{"__type__": "date", "__value__": "2026-01-02"}, {"__type__": "time", "__value__": "03:04:05.000100"}, {"__type__": "decimal", "__value__": "1.50"}, {"__type__": "uuid", "__value__": {"hex": "0123456789abcdef0123456789abcdef"}}, {"__type__": "bytes", "__value__": "raw"}]`, true,
			`(datetime.date(2026, 1, 2), datetime.time(3, 4, 5, 100), Decimal('1.50'), UUID('01234567-89ab-cdef-0123-456789abcdef'), b'raw')`},
	} {
		if got := ArgsRepr([]byte(c.js), c.tuple); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.js, got, c.want)
		}
	}

	// Long values are cut as saferepr cuts them, closing brackets kept.
	nums := make([]int, 400)
	for i := range nums {
		nums[i] = i
	}
	numsJSON, _ := json.Marshal([]any{nums})
	for _, c := range []struct {
		js         string
		wantSuffix string
		wantLen    int
	}{
		{`[["x", "` + strings.Repeat("word ", 250) + `"]]`, "word word word word word...'],)", 1029},
		{string(numsJSON), ", 220, 221, 222, 223, 224, 225, 22..., ...],)", 1035},
		{`["` + strings.Repeat("x", 1010) + `", [1, 2]]`, "xxxxxxxx', [1, 2])", 1022},
	} {
		got := ArgsRepr([]byte(c.js), true)
		if !strings.HasSuffix(got, c.wantSuffix) || len(got) != c.wantLen {
			t.Errorf("long value: %d characters ending %q, want %d ending %q", len(got), got[max(0, len(got)-60):], c.wantLen, c.wantSuffix)
		}
	}
}

// FuzzArgsRepr: any text gives a repr without panicking, valid UTF-8 for valid UTF-8 input.
func FuzzArgsRepr(f *testing.F) {
	f.Add([]byte(`[1, "a", {"b": [null, true, 1.5e300]}]`))
	f.Add([]byte(`[{"__type__": "datetime", "__value__": "2026-01-02T03:04:05+02:00"}]`))
	f.Add([]byte(`[{"__type__": "time", "__value__": "03:04Z"}, {"__type__": "base64", "__value__": "AAEC"}]`))
	f.Add([]byte(`[2, -0, "x y", true, null]`))
	f.Add([]byte(`{"a": 1, "b": false}`))
	f.Fuzz(func(t *testing.T, js []byte) {
		for _, tuple := range []bool{true, false} {
			out := ArgsRepr(js, tuple)
			if flat, ok := flatRepr(js, tuple, ReprMaxSize); ok {
				if tree := treeRepr(js, tuple, ReprMaxSize, ArgsReprMaxLevels); flat != tree {
					t.Fatalf("flat repr %q, tree repr %q of %q", flat, tree, js)
				}
			}
			if json.Valid(js) && utf8Valid(js) && !utf8Valid([]byte(out)) {
				t.Fatalf("invalid UTF-8 repr %q of %q", out, js)
			}
		}
	})
}

func utf8Valid(b []byte) bool { return strings.ToValidUTF8(string(b), "\uFFFD") == string(b) }

// TestFlatRepr: the one-pass repr of flat arguments takes the common cases and gives what
// the tree repr gives; it leaves everything else to the tree repr.
func TestFlatRepr(t *testing.T) {
	taken := []struct {
		js    string
		tuple bool
	}{
		{`[2, 3]`, true}, {`[]`, true}, {`{}`, false}, {`["x"]`, true}, {`[-0, 0, -12, 12345678901234567890123]`, true},
		{` [ true,false ,null, "a b" ] `, true}, {`{"a": 1, "b": "two", "c": null}`, false}, {`{"a": 1, "a": 2}`, false},
		{`[1, 2]`, false}, {"[\n1,\t2\r]", true}, {`["` + strings.Repeat("x", 1018) + `"]`, true},
	}
	for _, c := range taken {
		got, ok := flatRepr([]byte(c.js), c.tuple, ReprMaxSize)
		if !ok {
			t.Errorf("%s: left to the tree repr", c.js)
			continue
		}
		if want := treeRepr([]byte(c.js), c.tuple, ReprMaxSize, ArgsReprMaxLevels); got != want {
			t.Errorf("%s:\n got %s\nwant %s", c.js, got, want)
		}
	}
	left := []string{
		`[1.5]`, `[1e3]`, `[01]`, `[-]`, `[[1]]`, `[{}]`, `["it's"]`, `["a\"b"]`, `["é"]`, "[\"\x7f\"]",
		`{"__type__": "decimal", "__value__": "1.5"}`, `[1,]`, `[1 2]`, `[1] [2]`, `[1`, `[truex]`, `"x"`, `1`,
		`["` + strings.Repeat("x", 1019) + `"]`, `{"a" 1}`, `{1: 2}`, ``,
	}
	for _, js := range left {
		if got, ok := flatRepr([]byte(js), true, ReprMaxSize); ok {
			t.Errorf("%s: taken as %s", js, got)
		}
	}
}
