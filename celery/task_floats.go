package celery

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"

	"github.com/watermill-kombu/watermill-kombu/internal/pywire"
)

// A Celery client encodes float('nan'), float('inf') and -float('inf') arguments as the bare
// words NaN, Infinity and -Infinity, as Python's json.dumps does, and Celery's worker reads
// them back. The Go worker reads them too: Task.Args and Task.Kwargs hold them as float64
// NaN and infinities, RawArgs, RawKwargs, ArgValues and KwargValues keep the words as the
// client wrote them, and DecodeArgs and RegisterFunc decode an argument that is one of them
// into a float (or an any). encoding/json cannot decode them anywhere else (inside a list,
// a struct...): such an argument fails the task with a TypeError naming it, stored like any
// failure, rather than leaving the message undecodable.

// errPythonFloat is the reason an argument holding NaN or Infinity inside another value
// cannot be decoded.
var errPythonFloat = errors.New("holds Python's NaN or Infinity, which only a float argument can take")

// pyFloat returns the float64 a Python word stands for.
func pyFloat(word string) float64 {
	switch word {
	case "NaN":
		return math.NaN()
	case "Infinity":
		return math.Inf(1)
	}
	return math.Inf(-1)
}

// decodePyJSON is decodeJSONNumbers for a text that may hold Python's NaN and Infinity, which
// become float64 values in v (a *[]any or *map[string]any).
func decodePyJSON(b []byte, v any) error {
	hidden, replaced := pywire.HideFloats(b)
	if err := decodeJSONNumbers(hidden, v); err != nil || !replaced {
		return err
	}
	switch x := v.(type) {
	case *[]any:
		*x = showFloatValues(*x).([]any)
	case *map[string]any:
		*x = showFloatValues(*x).(map[string]any)
	}
	return nil
}

// showFloatValues replaces the placeholder strings of pywire.HideFloats in a decoded value by
// the floats they stand for.
func showFloatValues(v any) any {
	switch x := v.(type) {
	case string:
		if w, ok := pywire.FloatWord(x); ok {
			return pyFloat(w)
		}
	case []any:
		for i := range x {
			x[i] = showFloatValues(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = showFloatValues(x[k])
		}
	}
	return v
}

// splitPyList returns the values of a JSON list that may hold Python's NaN and Infinity, each
// as the client wrote it.
func splitPyList(raw []byte) ([]json.RawMessage, error) {
	hidden, replaced := pywire.HideFloats(raw)
	var vs []json.RawMessage
	if err := json.Unmarshal(hidden, &vs); err != nil {
		return nil, err
	}
	if replaced {
		for i := range vs {
			vs[i] = pywire.ShowFloats(vs[i])
		}
	}
	return vs, nil
}

// splitPyObject is splitPyList for a JSON object.
func splitPyObject(raw []byte) (map[string]json.RawMessage, error) {
	hidden, replaced := pywire.HideFloats(raw)
	var vs map[string]json.RawMessage
	if err := json.Unmarshal(hidden, &vs); err != nil {
		return nil, err
	}
	if replaced {
		for k := range vs {
			vs[k] = pywire.ShowFloats(vs[k])
		}
	}
	return vs, nil
}

// decodeArg decodes one argument into dst with encoding/json, and Python's NaN, Infinity and
// -Infinity into a float or an any.
func decodeArg(raw json.RawMessage, dst any) error {
	if w, ok := pywire.FloatWord("\x00" + string(raw)); ok {
		v := reflect.ValueOf(dst)
		if v.Kind() == reflect.Pointer && !v.IsNil() {
			switch e := v.Elem(); e.Kind() {
			case reflect.Float32, reflect.Float64:
				e.SetFloat(pyFloat(w))
				return nil
			case reflect.Interface:
				if e.NumMethod() == 0 {
					e.Set(reflect.ValueOf(pyFloat(w)))
					return nil
				}
			}
		}
		return fmt.Errorf("Python's %s can only be decoded into a float, not %T", w, dst)
	}
	err := json.Unmarshal(raw, dst)
	if err != nil {
		if _, replaced := pywire.HideFloats(raw); replaced {
			return errPythonFloat
		}
	}
	return err
}

// pyJSONText re-encodes a JSON text in Python's layout, keeping Python's NaN and Infinity.
func pyJSONText(raw []byte) ([]byte, error) {
	hidden, replaced := pywire.HideFloats(raw)
	out, err := pywire.AppendJSON(nil, hidden)
	if err != nil || !replaced {
		return out, err
	}
	return pywire.ShowFloats(out), nil
}
