package kombu

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/watermill-kombu/watermill-kombu/internal/golden"
	"github.com/watermill-kombu/watermill-kombu/internal/pywire"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// objectKeys returns the keys of a JSON object in order.
func objectKeys(t testing.TB, obj []byte) []string {
	t.Helper()
	keys := []string{}
	s := pywire.NewScanner(obj)
	err := s.Object(func(key []byte, escaped bool) error {
		keys = append(keys, string(pywire.Unescape(nil, key)))
		_, err := s.Value()
		return err
	})
	if err != nil {
		t.Fatalf("%s: %v", obj, err)
	}
	return keys
}

func TestGoldenEnvelopeRoundTrip(t *testing.T) {
	for _, v := range golden.Load(t) {
		t.Run(v.Name, func(t *testing.T) {
			env, err := DecodeEnvelope(v.Body)
			if err != nil {
				t.Fatal(err)
			}
			if env.Raw != v.Raw {
				t.Fatalf("Raw = %v, want %v", env.Raw, v.Raw)
			}
			if v.Raw {
				want, _ := base64.StdEncoding.DecodeString(v.PayloadBase64)
				if string(env.Body) != string(want) {
					t.Fatalf("raw body %q, want %q", env.Body, want)
				}
				return
			}
			// Encoding what was decoded gives Kombu's bytes back, key order and layout included.
			got := env.EncodeJSON()
			if v.OuterBase64 {
				got = env.Encode()
			}
			if got != v.Body {
				t.Fatalf("re-encoded body differs\n got %s\nwant %s", got, v.Body)
			}
		})
	}
}

func TestGoldenUnmarshal(t *testing.T) {
	for _, v := range golden.Load(t) {
		t.Run(v.Name, func(t *testing.T) {
			msg, err := EnvelopeMarshaler{}.Unmarshal(v.Queue, v.SQS())
			if v.Error == "unsupported_content_type" {
				var de *DecodeError
				if !errors.Is(err, ErrUnsupportedContentType) || !errors.As(err, &de) || de.MessageID != v.SQSMessage.MessageID || de.Part != "content-type" {
					t.Fatalf("err = %v, want a content-type DecodeError naming the message", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			md := msg.Metadata
			want, _ := base64.StdEncoding.DecodeString(v.PayloadBase64)
			if string(msg.Payload) != string(want) {
				t.Fatalf("payload %q, want %q", msg.Payload, want)
			}
			if v.Decoded != nil && !golden.JSONEqual(t, msg.Payload, v.Decoded) {
				t.Fatalf("payload %s does not decode to %s", msg.Payload, v.Decoded)
			}
			if md[metadataDeliveryTag] != v.SQSMessage.ReceiptHandle {
				t.Errorf("delivery tag %q, want the ReceiptHandle", md[metadataDeliveryTag])
			}
			if v.Raw {
				if md[MetadataRaw] != "true" || msg.UUID != v.SQSMessage.MessageID {
					t.Fatalf("raw message: metadata %v, UUID %s", md, msg.UUID)
				}
				return
			}
			if _, ok := md[MetadataRaw]; ok {
				t.Errorf("kombu_raw set on an envelope")
			}
			checkMeta(t, md, MetadataContentType, v.ContentType)
			checkMeta(t, md, MetadataContentEncoding, v.ContentEncoding)

			// Headers: one metadata key each, and all of them, typed and in order, in kombu_headers.
			wantHeaders := map[string]json.RawMessage{}
			var wantKeys []string
			for _, k := range v.HeadersKeys {
				if k == "compression" {
					if md[MetadataCompression] != "application/x-gzip" && md[MetadataCompression] != "application/x-bz2" {
						t.Errorf("kombu_compression = %q", md[MetadataCompression])
					}
					if _, ok := md["compression"]; ok {
						t.Errorf("the compression header is in the metadata")
					}
					continue
				}
				wantKeys = append(wantKeys, k)
				raw := v.Headers[k]
				wantHeaders[k] = raw
				got, ok := md[k]
				switch {
				case string(raw) == "null":
					if ok {
						t.Errorf("null header %s in metadata as %q", k, got)
					}
				case raw[0] == '"':
					var s string
					_ = json.Unmarshal(raw, &s)
					if got != s {
						t.Errorf("header %s = %q, want %q", k, got, s)
					}
				default:
					if strings.ContainsAny(got, " \n") || !golden.JSONEqual(t, []byte(got), raw) {
						t.Errorf("header %s = %q, want compact %s", k, got, raw)
					}
				}
			}
			if keys := objectKeys(t, []byte(md[MetadataHeaders])); !reflect.DeepEqual(keys, wantKeys) && len(wantKeys) > 0 {
				t.Errorf("kombu_headers keys %v, want %v", keys, wantKeys)
			}
			wh, _ := json.Marshal(wantHeaders)
			if !golden.JSONEqual(t, []byte(md[MetadataHeaders]), wh) {
				t.Errorf("kombu_headers %s, want %s", md[MetadataHeaders], wh)
			}

			props := v.Properties
			checkMetaJSON(t, md, MetadataCorrelationID, props["correlation_id"])
			checkMetaJSON(t, md, MetadataReplyTo, props["reply_to"])
			checkMetaJSON(t, md, MetadataPriority, props["priority"])
			checkMetaJSON(t, md, metadataDeliveryMode, props["delivery_mode"])
			checkMetaJSON(t, md, metadataBodyEncoding, props["body_encoding"])
			checkMetaJSON(t, md, MetadataExpiration, props["expiration"])
			checkMetaJSON(t, md, MetadataReceivedGroupID, props["MessageGroupId"])
			checkMetaJSON(t, md, metadataReceivedDeduplicationID, props["MessageDeduplicationId"])
			var info struct {
				Exchange   string `json:"exchange"`
				RoutingKey string `json:"routing_key"`
			}
			_ = json.Unmarshal(props["delivery_info"], &info)
			if md[MetadataExchange] != info.Exchange || md[MetadataRoutingKey] != info.RoutingKey {
				t.Errorf("delivery info %q/%q, want %q/%q", md[MetadataExchange], md[MetadataRoutingKey], info.Exchange, info.RoutingKey)
			}

			// UUID: correlation_id, else headers.id, else the v1 body id, else the MessageId.
			wantUUID := v.SQSMessage.MessageID
			var corr string
			_ = json.Unmarshal(props["correlation_id"], &corr)
			if corr != "" {
				wantUUID = corr
			} else if v.Task != nil {
				_ = json.Unmarshal(v.Task.Headers["id"], &wantUUID)
			}
			if msg.UUID != wantUUID {
				t.Errorf("UUID %s, want %s", msg.UUID, wantUUID)
			}

			if v.Task != nil {
				var name string
				_ = json.Unmarshal(v.Task.Headers["task"], &name)
				if md[MetadataTask] != name {
					t.Errorf("metadata task = %q, want %q", md[MetadataTask], name)
				}
			}
		})
	}
}

func checkMeta(t *testing.T, md map[string]string, key string, want *string) {
	t.Helper()
	got, ok := md[key]
	if want == nil {
		if ok {
			t.Errorf("%s = %q, want absent", key, got)
		}
		return
	}
	if got != *want {
		t.Errorf("%s = %q, want %q", key, got, *want)
	}
}

func checkMetaJSON(t *testing.T, md map[string]string, key string, raw json.RawMessage) {
	t.Helper()
	if raw == nil || string(raw) == "null" {
		checkMeta(t, md, key, nil)
		return
	}
	var s string
	if raw[0] == '"' {
		_ = json.Unmarshal(raw, &s)
	} else {
		s = string(raw)
	}
	checkMeta(t, md, key, &s)
}

// benchEnvelope is the envelope of a typical Celery protocol 2 task (add.delay(2, 3)).
func benchEnvelope(b *testing.B) (*Envelope, string) {
	v := golden.Get(b, "celery_v2_add")
	env, err := DecodeEnvelope(v.Body)
	if err != nil {
		b.Fatal(err)
	}
	return env, v.Body
}

func BenchmarkEnvelopeEncode(b *testing.B) {
	env, want := benchEnvelope(b)
	if env.Encode() != want {
		b.Fatal("encoding differs")
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(want)))
	for b.Loop() {
		_ = env.Encode()
	}
}

func BenchmarkEnvelopeDecode(b *testing.B) {
	_, body := benchEnvelope(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	var env Envelope
	for b.Loop() {
		if err := env.Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEnvelopeDecodeNew(b *testing.B) {
	_, body := benchEnvelope(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEnvelope(body); err != nil {
			b.Fatal(err)
		}
	}
}

// The decoded fields share one buffer: appending to Body or Headers must not write over the
// fields that follow them in it.
func TestDecodedFieldsIndependent(t *testing.T) {
	js := `{"body": "{\"a\": 1}", "content-encoding": "utf-8", "content-type": "application/json", ` +
		`"headers": {"task": "t"}, "properties": {"correlation_id": "c", "delivery_info": ` +
		`{"exchange": "", "routing_key": "q"}, "body_encoding": "utf-8", "delivery_tag": "d"}}`
	env, err := DecodeEnvelope(js)
	if err != nil {
		t.Fatal(err)
	}
	_ = append(env.Body, `XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX`...)
	_ = append(env.Headers, `XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX`...)
	if string(env.Headers) != `{"task": "t"}` || env.ContentEncoding != "utf-8" ||
		env.Properties.CorrelationID != "c" || env.Properties.RoutingKey != "q" {
		t.Fatalf("appending changed the envelope: %q %+v", env.Headers, env)
	}
}

// A base64 body with characters outside the alphabet decodes as Python's b64decode (Kombu's)
// decodes it, skipping them, whether the envelope is sent as JSON or as base64, and whether
// the skipped characters are JSON escapes; the fields after the body are left intact.
func TestBodyBase64Lenient(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{`e3!0=`, `{}`},                // base64.b64decode('e3!0=') == b'{}'
		{`eyJh Ijog MX0=`, `{"a": 1}`}, // base64.b64decode('eyJh Ijog MX0=') == b'{"a": 1}'
		{`eyJh\u0021Ijog MX0=`, `{"a": 1}`},
		{`eyJhIjogMX0=`, `{"a": 1}`},
		{`e30==`, `{}`},    // Python stops at the padding that ends a group of four...
		{`e30=e30=`, `{}`}, // ...whatever follows it
		{`e3==`, `{`},
	} {
		js := `{"body": "` + c.body + `", "content-encoding": "utf-8", "content-type": "application/json", ` +
			`"headers": {"task": "t"}, "properties": {"correlation_id": "c", "delivery_info": ` +
			`{"exchange": "", "routing_key": "q"}, "body_encoding": "base64", "delivery_tag": "d"}}`
		for _, sqsBody := range []string{js, base64.StdEncoding.EncodeToString([]byte(js))} {
			env, err := DecodeEnvelope(sqsBody)
			if err != nil || string(env.Body) != c.want || string(env.Headers) != `{"task": "t"}` ||
				env.Properties.CorrelationID != "c" || env.Properties.DeliveryTag != "d" {
				t.Fatalf("body %s: %v, %q, %+v; want %s", c.body, err, env.Body, env, c.want)
			}
		}
	}
	for _, bad := range []string{`e30`, `e3!0`, `e3=0`, `=e30`, `e`} {
		js := `{"body": "` + bad + `", "properties": {"body_encoding": "base64"}}`
		if env, err := DecodeEnvelope(js); err == nil {
			t.Errorf("body %s decoded to %q, want an error (Python's b64decode fails too)", bad, env.Body)
		}
	}
}

// decodeBase64Python agrees with Python's base64.b64decode on every input: random strings
// of base64 characters, padding, line breaks and other characters.
func TestDecodeBase64MatchesPython(t *testing.T) {
	// Answers of Python 3.11, for go test -short.
	for in, want := range map[string]string{
		"e30==": "{}", "e30=e30=": "{}", "e30=x": "{}", "e3==": "{", "e30===": "{}",
		"eyJhIjogMX0=====": `{"a": 1}`, "e30=\n": "{}", "e30=!!": "{}", "e3!0=": "{}",
		"=e30": "error", "e3=0": "error", "e30": "error", "e": "error", "": "",
	} {
		got, err := decodeBase64Python([]byte(in))
		if err != nil {
			got = []byte("error")
		}
		if string(got) != want {
			t.Errorf("decodeBase64Python(%q) = %q, want %q", in, got, want)
		}
	}
	if testing.Short() {
		return
	}
	python := testenv.Python(t)
	rng := rand.New(rand.NewPCG(3, 4))
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/====\n\r !-_."
	inputs := make([]string, 3000)
	for i := range inputs {
		b := make([]byte, rng.IntN(14))
		for j := range b {
			b[j] = chars[rng.IntN(len(chars))]
		}
		inputs[i] = string(b)
	}
	script := `import base64, json, sys
out = []
for s in json.load(sys.stdin):
    try:
        out.append(base64.b64decode(s).hex())
    except Exception:
        out.append(None)
json.dump(out, sys.stdout)`
	cmd := exec.Command(python, "-c", script)
	in, _ := json.Marshal(inputs)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	var want []*string
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	for i, s := range inputs {
		got, err := decodeBase64Python([]byte(s))
		switch {
		case want[i] == nil && err == nil:
			t.Errorf("decodeBase64Python(%q) = %x, Python fails", s, got)
		case want[i] != nil && (err != nil || hex.EncodeToString(got) != *want[i]):
			t.Errorf("decodeBase64Python(%q) = %x, %v; Python: %s", s, got, err, *want[i])
		}
	}
}
