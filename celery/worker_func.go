package celery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// RegisterFunc registers a typed task function: the task's arguments are decoded into an A,
// and the R it returns is the task's result.
//
// When A is a struct, its exported fields are the task's parameters, in order: positional
// arguments fill them from the first, keyword arguments by name (the json tag's name, else the
// field name, compared without case), so that add.delay(2, 3) and add.delay(a=2, b=3) both
// fill
//
//	struct {
//		A int `json:"a"`
//		B int `json:"b"`
//	}
//
// A field may be given only once; a missing one is an error unless it is a pointer. When A is
// not a struct, the task takes exactly one positional argument (or none, when A is struct{}).
//
// Arguments that do not decode fail the task with a Python TypeError naming the task and the
// argument; fn is not called.
func RegisterFunc[A, R any](w *Worker, name string, fn func(ctx context.Context, args A) (R, error), opts ...RegisterOption) {
	w.Register(name, func(ctx context.Context, t *Task) (any, error) {
		var a A
		if err := decodeTaskArgs(t, &a); err != nil {
			return nil, err
		}
		return fn(ctx, a)
	}, opts...)
}

// decodeTaskArgs decodes t's arguments into dst (a pointer), as RegisterFunc describes.
func decodeTaskArgs(t *Task, dst any) error {
	args, err := splitPyList(t.rawArgs())
	if err != nil {
		return argumentError(t, "args", err)
	}
	var kwargs map[string]json.RawMessage
	raw := t.RawKwargs
	if raw == nil {
		raw, _ = json.Marshal(t.Kwargs)
	}
	if !isJSONNull(raw) {
		if kwargs, err = splitPyObject(raw); err != nil {
			return argumentError(t, "kwargs", err)
		}
	}
	v := reflect.ValueOf(dst).Elem()
	if v.Kind() != reflect.Struct {
		if len(kwargs) > 0 {
			return argumentError(t, "kwargs", fmt.Errorf("unexpected keyword arguments %s", keyList(kwargs)))
		}
		if len(args) != 1 {
			return argumentError(t, "args", fmt.Errorf("takes 1 positional argument but %d were given", len(args)))
		}
		if err := decodeArg(args[0], dst); err != nil {
			return argumentError(t, "0", err)
		}
		return nil
	}
	typ := v.Type()
	type param struct {
		index int
		name  string
	}
	var params []param
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Name
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == "-" {
			continue
		} else if tag != "" {
			name = tag
		}
		params = append(params, param{i, name})
	}
	if len(args) > len(params) {
		return argumentError(t, "args", fmt.Errorf("takes %d positional arguments but %d were given", len(params), len(args)))
	}
	set := make([]bool, len(params))
	for i, a := range args {
		if err := decodeArg(a, v.Field(params[i].index).Addr().Interface()); err != nil {
			return argumentError(t, params[i].name, err)
		}
		set[i] = true
	}
	for key, a := range kwargs {
		j := -1
		for i, p := range params {
			if strings.EqualFold(p.name, key) {
				j = i
				break
			}
		}
		if j < 0 {
			return argumentError(t, key, errors.New("unexpected keyword argument"))
		}
		if set[j] {
			return argumentError(t, params[j].name, errors.New("given both by position and by keyword"))
		}
		if err := decodeArg(a, v.Field(params[j].index).Addr().Interface()); err != nil {
			return argumentError(t, params[j].name, err)
		}
		set[j] = true
	}
	for i, p := range params {
		if !set[i] && v.Field(p.index).Kind() != reflect.Pointer {
			return argumentError(t, p.name, errors.New("missing"))
		}
	}
	return nil
}

func keyList(m map[string]json.RawMessage) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return strings.Join(keys, ", ")
}
