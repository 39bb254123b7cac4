package pywire

import (
	"encoding/json"
	"testing"
)

// TestHideFloats reads what Python's json.dumps writes for [float('nan'), float('inf'),
// -float('inf'), 'NaN', {'Infinity': 1.5}]: the words outside strings only.
func TestHideFloats(t *testing.T) {
	in := `[NaN, Infinity, -Infinity, "NaN", {"Infinity": 1.5, "x\"NaN": -1}]`
	hidden, ok := HideFloats([]byte(in))
	if !ok {
		t.Fatal("nothing replaced")
	}
	var v []any
	if err := json.Unmarshal(hidden, &v); err != nil {
		t.Fatalf("%s: %v", hidden, err)
	}
	for i, want := range []string{"NaN", "Infinity", "-Infinity"} {
		if w, ok := FloatWord(v[i].(string)); !ok || w != want {
			t.Errorf("%d: %q", i, v[i])
		}
	}
	if v[3] != "NaN" {
		t.Errorf("a string changed: %q", v[3])
	}
	if got := string(ShowFloats(hidden)); got != in {
		t.Errorf("ShowFloats %s", got)
	}
	if _, ok := HideFloats([]byte(`[1, "NaN"]`)); ok {
		t.Error("replaced in a string")
	}
	if _, ok := HideFloats([]byte(`["\u0000NaN", NaN]`)); ok {
		t.Error("a text holding a placeholder is left alone")
	}
}
