package kombu

import (
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/watermill-kombu/watermill-kombu/internal/pywire"
)

// Headers that need no change are sent as they are; every other case is rewritten as Kombu
// would write it.
func TestBuildHeaders(t *testing.T) {
	const task = `{"lang": "py", "task": "proj.add", "id": "i1", "retries": 0, "timelimit": [null, null]}`
	for _, c := range []struct {
		name        string
		md          message.Metadata
		compression string
		want        string
	}{
		{"celery task as built", message.Metadata{MetadataHeaders: task, MetadataTask: "proj.add", MetadataCorrelationID: "i1"}, "", task},
		{"layout kept", message.Metadata{MetadataHeaders: `{"a":1,"b" : [1,2]}`}, "", `{"a":1,"b" : [1,2]}`},
		{"spaces around the object", message.Metadata{MetadataHeaders: " {\"a\": 1}\n"}, "", `{"a": 1}`},
		{"protocol 1 body keys need not be headers", message.Metadata{MetadataHeaders: `{"a": 1}`, "task": "t", "id": "x"}, "", `{"a": 1}`},
		{"a changed header", message.Metadata{MetadataHeaders: task, MetadataTask: "proj.mul"},
			"", `{"lang": "py", "task": "proj.mul", "id": "i1", "retries": 0, "timelimit": [null, null]}`},
		{"a non-string header changed", message.Metadata{MetadataHeaders: `{"retries": 0}`, "retries": "1"}, "", `{"retries": "1"}`},
		{"a non-string header kept", message.Metadata{MetadataHeaders: `{"timelimit": [null, null]}`, "timelimit": "[null,null]"},
			"", `{"timelimit": [null, null]}`},
		{"a new header", message.Metadata{MetadataHeaders: `{"a": 1}`, "b": "2"}, "", `{"a": 1, "b": "2"}`},
		{"compression dropped", message.Metadata{MetadataHeaders: `{"compression": "x", "a": 1}`}, "", `{"a": 1}`},
		{"compression set", message.Metadata{MetadataHeaders: `{"a": 1}`}, "application/x-gzip", `{"a": 1, "compression": "application/x-gzip"}`},
		{"escaped key", message.Metadata{MetadataHeaders: `{"\u0061b": 1}`}, "", `{"ab": 1}`},
		{"non-ASCII key", message.Metadata{MetadataHeaders: `{"é": 1}`}, "", `{"\u00e9": 1}`},
		{"no base", message.Metadata{"b": "2", "a": "1", MetadataCorrelationID: "x"}, "", `{"a": "1", "b": "2"}`},
	} {
		pm, extra := readPublishMetadata(c.md, nil)
		got, err := pm.appendHeaders(nil, extra, c.compression)
		if err != nil || string(got) != c.want {
			t.Errorf("%s: appendHeaders = %s, %v; want %s", c.name, got, err, c.want)
		}
	}
	for _, bad := range []string{`{"a": 1`, `{"a": 1} x`, `[1]`, `{"a": tru}`} {
		pm := publishMetadata{headers: bad, hasHeaders: true}
		if got, err := pm.appendHeaders(nil, nil, ""); err == nil {
			t.Errorf("appendHeaders(%q) = %s, want an error", bad, got)
		}
	}
}

// metaText, which shares the decoder's buffer where it can, gives the same metadata text as
// pywire.MetaText for every kind of header value.
func TestMetaTextAsPywire(t *testing.T) {
	for _, raw := range []string{`"abc"`, `""`, `"a\"b"`, `"\u00e9"`, `0`, `-1.5e3`, `true`, `null`,
		`[null, null]`, `[null,null]`, `[null, 1]`, `[ null, null ]`, `{}`, `{"a": [1, "b c"]}`, `[]`} {
		got, gotOK := metaText([]byte(raw))
		want, wantOK := pywire.MetaText([]byte(raw))
		if got != want || gotOK != wantOK {
			t.Errorf("metaText(%s) = %q, %v; pywire.MetaText gives %q, %v", raw, got, gotOK, want, wantOK)
		}
	}
}

// printableASCII rejects every byte from DEL up, wherever it is in the key.
func TestPrintableASCII(t *testing.T) {
	for n := 0; n < 20; n++ {
		for pos := 0; pos < n; pos++ {
			for _, c := range []byte{0x7e, 0x7f, 0x80, 0xc3, 0xff, ' ', 'a'} {
				key := []byte(strings.Repeat("k", n))
				key[pos] = c
				if got, want := printableASCII(key), c < 0x7f; got != want {
					t.Fatalf("printableASCII(%q) = %v", key, got)
				}
			}
		}
	}
}
