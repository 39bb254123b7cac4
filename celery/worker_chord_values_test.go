package celery

import (
	"encoding/json"
	"testing"
)

// TestChordValues builds the body's argument from the header's results, and the ChordError
// message Celery gives for a failed member.
func TestChordValues(t *testing.T) {
	ok := func(id, v string) ChordResult {
		return ChordResult{TaskID: id, State: StateSuccess, Result: json.RawMessage(v)}
	}
	values, failure := chordValues([]ChordResult{ok("a", "1"), ok("b", `{"x": [2]}`), ok("c", "null")})
	if failure != "" {
		t.Fatal(failure)
	}
	if b, _ := json.Marshal(values); string(b) != `[1,{"x":[2]},null]` {
		t.Errorf("values %s", b)
	}

	failed := ChordResult{TaskID: "b", State: StateFailure,
		Result: json.RawMessage(`{"exc_type": "ValueError", "exc_message": ["it's", 2], "exc_module": "builtins"}`)}
	if _, failure := chordValues([]ChordResult{ok("a", "1"), failed}); failure != `Dependency b raised ValueError("it's", 2)` {
		t.Errorf("failure %q", failure)
	}
	revoked := ChordResult{TaskID: "r", State: StateRevoked,
		Result: json.RawMessage(`{"exc_type": "TaskRevokedError", "exc_message": ["expired"], "exc_module": "celery.exceptions"}`)}
	if _, failure := chordValues([]ChordResult{revoked}); failure != `Dependency r raised TaskRevokedError('expired')` {
		t.Errorf("revoked %q", failure)
	}

	// A saved GroupResult keeps nested groups; a failure there is a join error.
	nested := []ChordResult{ok("a", "1"), {TaskID: "g", Group: []ChordResult{ok("b", "2"), ok("c", "3")}}}
	values, failure = chordValues(nested)
	if b, _ := json.Marshal(values); failure != "" || string(b) != `[1,[2,3]]` {
		t.Errorf("nested %s %q", b, failure)
	}
	nested[1].Group[1] = failed
	if _, failure := chordValues(nested); failure != `Join error: ValueError("it's", 2)` {
		t.Errorf("nested failure %q", failure)
	}
}
