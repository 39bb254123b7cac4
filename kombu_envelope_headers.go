package kombu

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

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

// appendHeaders appends the envelope headers for a message to publish (see
// EnvelopeMarshaler) to dst; it returns dst unchanged when there are none. extra are the
// metadata keys that become headers (see readPublishMetadata).
func (pm *publishMetadata) appendHeaders(dst []byte, extra []metaPair, compressionHeader string) ([]byte, error) {
	base, hasBase := pm.headers, pm.hasHeaders
	if !hasBase && len(extra) == 0 && compressionHeader == "" {
		return dst, nil
	}
	if hasBase && compressionHeader == "" {
		// Most messages to publish carry headers that need no change (a Celery task's, or a
		// received message's): they are sent as they are, once checked.
		if raw, ok := unchangedHeaders(base, extra); ok {
			return append(dst, raw...), nil
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
			if i := extraIndex(extra, name); i >= 0 {
				seen[i] = true
				if text, _ := pywire.MetaText(raw); text != extra[i].value {
					dst = pywire.AppendString(dst, extra[i].value)
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
			return nil, fmt.Errorf("metadata %s is not a JSON object: %w", MetadataHeaders, err)
		}
	}
	for i, kv := range extra {
		if seen[i] || (hasBase && isV1BodyKey(kv.key)) {
			continue
		}
		if len(dst) > start+1 {
			dst = append(dst, ", "...)
		}
		dst = append(pywire.AppendString(dst, kv.key), ": "...)
		dst = pywire.AppendString(dst, kv.value)
	}
	if compressionHeader != "" {
		if len(dst) > start+1 {
			dst = append(dst, ", "...)
		}
		dst = append(dst, `"compression": `...)
		dst = pywire.AppendString(dst, compressionHeader)
	}
	return append(dst, '}'), nil
}

// unchangedHeaders returns the object base when it is what appendHeaders would send for it:
// a JSON object without a compression member or a key to re-encode, holding each extra
// metadata key with the metadata's value (a protocol 1 body key may be absent). ok is
// false for anything else, invalid JSON included, which appendHeaders then rewrites or
// reports.
func unchangedHeaders(base string, extra []metaPair) (raw []byte, ok bool) {
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
		if i := extraIndex(extra, bytesString(key)); i >= 0 {
			if text, _ := metaText(value); text != extra[i].value {
				return errRewrite
			}
			found |= 1 << i
		}
		return nil
	})
	if err != nil || s.End() != nil {
		return nil, false
	}
	for i, kv := range extra {
		if found&(1<<i) == 0 && !isV1BodyKey(kv.key) {
			return nil, false
		}
	}
	return raw, true
}

// errRewrite ends unchangedHeaders' pass over headers that need rewriting.
var errRewrite = errors.New("headers need rewriting")

// printableASCII reports whether a raw JSON key (which has no control characters) is ASCII
// without DEL: Python writes such a key as it is. Eight bytes at a time: a byte is rejected
// when its high bit is set or when it is DEL (a zero byte once xored with 0x7f).
func printableASCII(b []byte) bool {
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		d := x ^ 0x7f7f7f7f7f7f7f7f
		if (x|(d-0x0101010101010101)&^d)&0x8080808080808080 != 0 {
			return false
		}
		b = b[8:]
	}
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
	if name, ok := pywire.HeaderName(key); ok {
		return name
	}
	// The key lies in a buffer that never changes: the decoder's or a metadata string.
	return bytesString(key)
}
