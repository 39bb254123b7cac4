package kombu

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/watermill-kombu/watermill-kombu/internal/pywire"
)

// detectContentType picks the content type Kombu would give the payload.
func detectContentType(payload []byte) (contentType, contentEncoding string) {
	switch {
	case pywire.Valid(payload):
		return contentTypeJSON, "utf-8"
	case utf8.Valid(payload):
		return contentTypeText, "utf-8"
	default:
		return contentTypeData, "binary"
	}
}

// buildHeaders appends the envelope headers for a message to publish (see EnvelopeMarshaler)
// to dst; it returns dst unchanged when there are none. attrs reports whether md has keys
// of MetadataAttributePrefix, found in the same pass over md.
func buildHeaders(dst []byte, md message.Metadata, compressionHeader string) (headers []byte, attrs bool, err error) {
	base, hasBase := md[MetadataHeaders]
	// The metadata keys that become headers, sorted: few, so kept on the stack.
	var extraBuf [8]string
	extra := extraBuf[:0]
	for k := range md {
		if !isReservedMetadata(k) {
			extra = append(extra, k)
		} else if strings.HasPrefix(k, MetadataAttributePrefix) {
			attrs = true
		}
	}
	if !hasBase && len(extra) == 0 && compressionHeader == "" {
		return dst, attrs, nil
	}
	sort.Strings(extra)
	if hasBase && compressionHeader == "" {
		// Most messages to publish carry headers that need no change (a Celery task's, or a
		// received message's): they are sent as they are, once checked.
		if raw, ok := unchangedHeaders(base, extra, md); ok {
			return append(dst, raw...), attrs, nil
		}
	}
	// seen marks the extra keys that were headers already.
	var seenBuf [8]bool
	var seen []bool
	if len(extra) <= len(seenBuf) {
		seen = seenBuf[:len(extra)]
	} else {
		seen = make([]bool, len(extra))
	}
	start := len(dst)
	dst = append(dst, '{')
	if hasBase {
		s := pywire.NewScanner(stringBytes(base))
		err := s.Object(func(key []byte, escaped bool) error {
			raw, err := s.Value()
			if err != nil {
				return err
			}
			name := headerName(key)
			if escaped {
				name = string(pywire.Unescape(nil, key))
			}
			if name == "compression" {
				return nil
			}
			if len(dst) > start+1 {
				dst = append(dst, ", "...)
			}
			dst = append(appendKey(dst, key, escaped, name), ": "...)
			if i := indexSorted(extra, name); i >= 0 {
				seen[i] = true
				if text, _ := pywire.MetaText(raw); text != md[name] {
					dst = pywire.AppendString(dst, md[name])
					return nil
				}
			}
			dst = append(dst, raw...)
			return nil
		})
		if err == nil {
			err = s.End()
		}
		if err != nil {
			return nil, false, fmt.Errorf("metadata %s is not a JSON object: %w", MetadataHeaders, err)
		}
	}
	for i, k := range extra {
		if seen[i] || (hasBase && isV1BodyKey(k)) {
			continue
		}
		if len(dst) > start+1 {
			dst = append(dst, ", "...)
		}
		dst = append(pywire.AppendString(dst, k), ": "...)
		dst = pywire.AppendString(dst, md[k])
	}
	if compressionHeader != "" {
		if len(dst) > start+1 {
			dst = append(dst, ", "...)
		}
		dst = append(dst, `"compression": `...)
		dst = pywire.AppendString(dst, compressionHeader)
	}
	return append(dst, '}'), attrs, nil
}

// unchangedHeaders returns the object base when it is what buildHeaders would send for it: a
// JSON object without a compression member or a key to re-encode, holding each extra
// metadata key with the metadata's value (a protocol 1 body key may be absent). ok is false
// for anything else, invalid JSON included, which buildHeaders then rewrites or reports.
func unchangedHeaders(base string, extra []string, md message.Metadata) (raw []byte, ok bool) {
	if len(extra) > 64 {
		return nil, false
	}
	var found uint64 // bit i: extra[i] is a header
	s := pywire.NewScanner(stringBytes(base))
	raw, err := s.ObjectText(func(key []byte, escaped bool) error {
		if escaped || !printableASCII(key) || string(key) == "compression" {
			return errRewrite
		}
		value, err := s.Value()
		if err != nil {
			return err
		}
		if i := indexSorted(extra, bytesString(key)); i >= 0 {
			if text, _ := metaText(value); text != md[extra[i]] {
				return errRewrite
			}
			found |= 1 << i
		}
		return nil
	})
	if err != nil || s.End() != nil {
		return nil, false
	}
	for i, k := range extra {
		if found&(1<<i) == 0 && !isV1BodyKey(k) {
			return nil, false
		}
	}
	return raw, true
}

// indexSorted returns the index of k in the sorted keys, or -1: a loop for the few keys
// messages usually have.
func indexSorted(keys []string, k string) int {
	if len(keys) > 8 {
		if i, ok := slices.BinarySearch(keys, k); ok {
			return i
		}
		return -1
	}
	for i, key := range keys {
		if key == k {
			return i
		}
	}
	return -1
}

// errRewrite ends unchangedHeaders' pass over headers that need rewriting.
var errRewrite = errors.New("headers need rewriting")

// printableASCII reports whether a raw JSON key (which has no control characters) is ASCII
// without DEL: Python writes such a key as it is.
func printableASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x7f {
			return false
		}
	}
	return true
}

// appendKey appends a header key as Python writes it: the raw key when it is printable ASCII
// without escapes (the same bytes), else name encoded.
func appendKey(dst, key []byte, escaped bool, name string) []byte {
	if !escaped && printableASCII(key) {
		dst = append(dst, '"')
		dst = append(dst, key...)
		return append(dst, '"')
	}
	return pywire.AppendString(dst, name)
}

func isV1BodyKey(k string) bool {
	for _, v := range v1BodyKeys {
		if k == v {
			return true
		}
	}
	return false
}

// withoutMember returns the JSON object obj without the member name, in Python's layout.
func withoutMember(obj []byte, name string) []byte {
	dst := []byte{'{'}
	s := pywire.NewScanner(obj)
	_ = s.Object(func(key []byte, escaped bool) error {
		raw, err := s.Value()
		if err != nil || pywire.KeyIs(key, escaped, name) {
			return err
		}
		if len(dst) > 1 {
			dst = append(dst, ", "...)
		}
		dst = append(dst, '"')
		dst = append(dst, key...)
		dst = append(dst, `": `...)
		dst = append(dst, raw...)
		return nil
	})
	return append(dst, '}')
}

// v1TaskFields returns the task, id, eta and expires strings of a protocol 1 task body (a JSON
// object with a string "task"); all are empty for anything else.
func v1TaskFields(payload []byte) (fields [len(v1BodyKeys)]string) {
	s := pywire.NewScanner(payload)
	if s.Peek() != '{' {
		return fields
	}
	_ = s.Object(func(key []byte, escaped bool) error {
		for i, k := range v1BodyKeys {
			if pywire.KeyIs(key, escaped, k) && s.Peek() == '"' {
				v, err := s.Str()
				fields[i] = v
				return err
			}
		}
		_, err := s.Value()
		return err
	})
	return fields
}

// headerName returns a header's name as a string, without allocating.
func headerName(key []byte) string {
	switch string(key) {
	case "lang":
		return "lang"
	case "task":
		return "task"
	case "id":
		return "id"
	case "shadow":
		return "shadow"
	case "eta":
		return "eta"
	case "expires":
		return "expires"
	case "group":
		return "group"
	case "group_index":
		return "group_index"
	case "retries":
		return "retries"
	case "timelimit":
		return "timelimit"
	case "root_id":
		return "root_id"
	case "parent_id":
		return "parent_id"
	case "argsrepr":
		return "argsrepr"
	case "kwargsrepr":
		return "kwargsrepr"
	case "origin":
		return "origin"
	case "ignore_result":
		return "ignore_result"
	case "replaced_task_nesting":
		return "replaced_task_nesting"
	case "stamped_headers":
		return "stamped_headers"
	case "stamps":
		return "stamps"
	case "compression":
		return "compression"
	}
	// The key lies in a buffer that never changes: the decoder's or a metadata string.
	return bytesString(key)
}
