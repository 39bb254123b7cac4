package celery

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/watermill-kombu/watermill-kombu/internal/pywire"
)

// headerWriter writes a JSON object in Python's layout, keeping key order, into one buffer;
// extra replaces members of the same name in place, as Python's dict.update does.
type headerWriter struct {
	buf []byte
	// members are the written members, tracked only when a key may be written twice (there
	// are extra headers): the other writers' keys are all different.
	members []headerMember
	track   bool
	// replaced is the member whose value is being written again, or -1; its new value is
	// written at the end of buf, from valueStart, then moved in place.
	replaced, valueStart int
}

// headerMember is a member's key and where its value lies in buf.
type headerMember struct {
	key        string
	start, end int
}

// newHeaderWriter starts an object of about size bytes; track is set when extra headers
// will be written.
func newHeaderWriter(size int, track bool) *headerWriter {
	h := &headerWriter{buf: make([]byte, 1, size), track: track}
	h.buf[0] = '{'
	if track {
		h.members = make([]headerMember, 0, 24)
	}
	return h
}

// open starts the value of key: after the key when it is new, else at the end of buf.
func (h *headerWriter) open(key string) {
	h.replaced = -1
	for i := range h.members {
		if h.members[i].key == key {
			h.replaced, h.valueStart = i, len(h.buf)
			return
		}
	}
	if len(h.buf) > 1 {
		h.buf = append(h.buf, ", "...)
	}
	h.buf = append(pywire.AppendString(h.buf, key), ": "...)
	if h.track {
		h.members = append(h.members, headerMember{key: key, start: len(h.buf)})
	}
}

// close ends the value open started.
func (h *headerWriter) close() {
	if h.replaced < 0 {
		if h.track {
			h.members[len(h.members)-1].end = len(h.buf)
		}
		return
	}
	v := bytes.Clone(h.buf[h.valueStart:])
	h.buf = h.buf[:h.valueStart]
	m := &h.members[h.replaced]
	h.buf = slices.Replace(h.buf, m.start, m.end, v...)
	shift := len(v) - (m.end - m.start)
	m.end = m.start + len(v)
	for i := h.replaced + 1; i < len(h.members); i++ {
		h.members[i].start += shift
		h.members[i].end += shift
	}
}

func (h *headerWriter) raw(key string, v []byte) {
	h.open(key)
	h.buf = append(h.buf, v...)
	h.close()
}

func (h *headerWriter) str(key, v string) {
	h.open(key)
	h.buf = pywire.AppendString(h.buf, v)
	h.close()
}

func (h *headerWriter) nullable(key, v string) {
	h.open(key)
	h.buf = pywire.AppendNullableString(h.buf, v)
	h.close()
}

func (h *headerWriter) int(key string, v int) {
	h.open(key)
	h.buf = strconv.AppendInt(h.buf, int64(v), 10)
	h.close()
}

func (h *headerWriter) intPtr(key string, v *int) {
	if v == nil {
		h.raw(key, []byte("null"))
		return
	}
	h.int(key, *v)
}

func (h *headerWriter) time(key string, t *time.Time) {
	if t == nil {
		h.raw(key, []byte("null"))
		return
	}
	h.str(key, pywire.FormatTime(*t))
}

func (h *headerWriter) value(key string, v any, null bool) error {
	if null || isNil(v) {
		h.raw(key, []byte("null"))
		return nil
	}
	h.open(key)
	b, err := appendPyValue(h.buf, v)
	if err != nil {
		return fmt.Errorf("header %s: %w", key, err)
	}
	h.buf = b
	h.close()
	return nil
}

func (h *headerWriter) extra(m map[string]any) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := h.value(k, m[k], false); err != nil {
			return err
		}
	}
	return nil
}

// bytes ends the object and returns it.
func (h *headerWriter) bytes() []byte { return append(h.buf, '}') }

// timeLimit writes Celery's [hard, soft] time limits.
func (h *headerWriter) timeLimit(key string, tl [2]*float64) {
	h.open(key)
	h.buf = append(h.buf, '[')
	for i, v := range tl {
		if i > 0 {
			h.buf = append(h.buf, ", "...)
		}
		h.buf = appendPyFloatPtr(h.buf, v)
	}
	h.buf = append(h.buf, ']')
	h.close()
}

// appendPyFloatPtr writes a limit as Python would: whole numbers as integers (Celery passes
// the value it was given, usually an int), others as floats; nil as null.
func appendPyFloatPtr(dst []byte, v *float64) []byte {
	if v == nil {
		return append(dst, "null"...)
	}
	return strconv.AppendFloat(dst, *v, 'f', -1, 64)
}
