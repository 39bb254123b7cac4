package pywire

import (
	"strings"
	"testing"
)

func TestRepr(t *testing.T) {
	for js, want := range map[string]string{
		`[]`:                          "()",
		`[1]`:                         "(1,)",
		`[2, 3]`:                      "(2, 3)",
		`["it's", "a\"b", "x\ny"]`:    `("it's", 'a"b', 'x\ny')`,
		`[true, false, null, 1.5]`:    "(True, False, None, 1.5)",
		`[[1, [2]], {"k": {"v": 1}}]`: "([1, [2]], {'k': {'v': 1}})",
	} {
		if got := Repr([]byte(js), true); got != want {
			t.Errorf("%s: %s, want %s", js, got, want)
		}
	}
	if got := Repr([]byte(`{"a": 1, "b": "\u00e9"}`), false); got != "{'a': 1, 'b': 'é'}" {
		t.Errorf("kwargs repr %s", got)
	}
	long := Repr([]byte(`["`+strings.Repeat("x", 2000)+`"]`), true)
	if len(long) != ReprMaxSize || !strings.HasSuffix(long, "...") {
		t.Errorf("long repr %d", len(long))
	}
}
