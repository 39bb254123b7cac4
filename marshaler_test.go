package kombu

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/watermill-kombu/watermill-kombu/internal/golden"
)

func TestDefaultMarshalerIsEnvelope(t *testing.T) {
	pc := PublisherConfig{}
	pc.setDefaults()
	sc := SubscriberConfig{}
	sc.setDefaults()
	if _, ok := pc.Marshaler.(EnvelopeMarshaler); !ok {
		t.Errorf("default PublisherConfig.Marshaler = %T", pc.Marshaler)
	}
	if _, ok := sc.Unmarshaler.(EnvelopeMarshaler); !ok {
		t.Errorf("default SubscriberConfig.Unmarshaler = %T", sc.Unmarshaler)
	}
}

func unmarshalBody(t *testing.T, body string) (*message.Message, error) {
	t.Helper()
	return EnvelopeMarshaler{}.Unmarshal("q1", &types.Message{Body: aws.String(body), MessageId: aws.String("sqs-id"), ReceiptHandle: aws.String("receipt")})
}

func TestMarshalPlainMessage(t *testing.T) {
	cases := []struct {
		payload       []byte
		ctype, cenc   string
		wantPayloadIn string
	}{
		{[]byte(`{"hello": "world"}`), contentTypeJSON, "utf-8", ""},
		{[]byte("héllo text"), contentTypeText, "utf-8", ""},
		{[]byte{0, 1, 0xfe, 0xff}, contentTypeData, "binary", ""},
	}
	for _, c := range cases {
		msg := message.NewMessage("uuid-1", c.payload)
		msg.Metadata.Set("x-trace", "abc")
		msg.Metadata.Set("a-first", "1")
		msg.Metadata.Set("sqs_queue", "ignored")
		msg.Metadata.Set("kombu_anything", "ignored")
		msg.Metadata.Set(MetadataMessageGroupID, "g")
		out, err := EnvelopeMarshaler{}.Marshal(Destination{Queue: "jobs.fifo", FIFO: true}, msg)
		if err != nil {
			t.Fatal(err)
		}
		env, err := DecodeEnvelope(out.Body)
		if err != nil {
			t.Fatal(err)
		}
		p := env.Properties
		if env.ContentType != c.ctype || env.ContentEncoding != c.cenc || !bytes.Equal(env.Body, c.payload) {
			t.Errorf("%q: content %q/%q body %q", c.payload, env.ContentType, env.ContentEncoding, env.Body)
		}
		if string(env.Headers) != `{"a-first": "1", "x-trace": "abc"}` {
			t.Errorf("headers %s", env.Headers)
		}
		if p.CorrelationID != "uuid-1" || p.RoutingKey != "jobs.fifo" || p.Exchange != "" || p.DeliveryMode != 2 ||
			p.BodyEncoding != "base64" || p.MessageGroupID != "g" || len(p.DeliveryTag) != 36 {
			t.Errorf("properties %+v", p)
		}
		if out.MessageGroupID != "g" || out.DeduplicationID == "" {
			t.Errorf("FIFO parameters %q %q", out.MessageGroupID, out.DeduplicationID)
		}
		if !strings.HasPrefix(out.Body, "eyJib2R5Ijog") {
			t.Errorf("body does not start like Kombu's: %.20s", out.Body)
		}

		back, err := EnvelopeMarshaler{}.Unmarshal("jobs.fifo", &types.Message{Body: aws.String(out.Body), MessageId: aws.String("m"), ReceiptHandle: aws.String("r")})
		if err != nil {
			t.Fatal(err)
		}
		if back.UUID != "uuid-1" || !bytes.Equal(back.Payload, c.payload) || back.Metadata["x-trace"] != "abc" ||
			back.Metadata[MetadataContentType] != c.ctype || back.Metadata[metadataDeliveryTag] != "r" ||
			back.Metadata[MetadataReceivedGroupID] != "g" {
			t.Errorf("round trip: %s %q %v", back.UUID, back.Payload, back.Metadata)
		}
	}
}

func TestMarshalRawEnvelopeAndDelay(t *testing.T) {
	msg := message.NewMessage("u", []byte(`[1]`))
	msg.Metadata.Set(MetadataDelaySeconds, "30")
	out, err := EnvelopeMarshaler{RawEnvelope: true}.Marshal(Destination{Queue: "q", Exchange: "ex", RoutingKey: "rk"}, msg)
	if err != nil {
		t.Fatal(err)
	}
	want := `"properties": {"correlation_id": "u", "DelaySeconds": 30, "delivery_mode": 2, "delivery_info": {"exchange": "ex", "routing_key": "rk"}, "priority": 0, "body_encoding": "base64", "delivery_tag": `
	if !strings.HasPrefix(out.Body, `{"body": "WzFd", "content-encoding": "utf-8", "content-type": "application/json", "headers": {}, `+want) {
		t.Errorf("raw envelope %s", out.Body)
	}
	if out.DelaySeconds != 30 {
		t.Errorf("DelaySeconds %d", out.DelaySeconds)
	}
}

func TestForwardKeepsTypedHeaders(t *testing.T) {
	v := golden.Get(t, "celery_v2_options")
	msg, err := EnvelopeMarshaler{}.Unmarshal(v.Queue, v.SQS())
	if err != nil {
		t.Fatal(err)
	}
	msg.Metadata.Set("sqs_message_id", "x") // as the subscriber does
	msg.Metadata.Set("retries", "4")        // changed: sent as a string
	msg.Metadata.Set("added", "yes")
	out, err := EnvelopeMarshaler{}.Marshal(Destination{Queue: "celery"}, msg)
	if err != nil {
		t.Fatal(err)
	}
	env, _ := DecodeEnvelope(out.Body)
	h := string(env.Headers)
	for _, want := range []string{`"timelimit": [30, 20.5]`, `"retries": "4"`, `"group_index": 1`, `"eta": null`, `"x-number": 7, "added": "yes"}`} {
		if !strings.Contains(h, want) {
			t.Errorf("headers lack %s: %s", want, h)
		}
	}
	if strings.Contains(h, "sqs_") || env.Properties.CorrelationID != msg.UUID || env.Properties.Priority != 5 {
		t.Errorf("forwarded %s %+v", h, env.Properties)
	}

	// A protocol 1 task stays one: its body's task name does not become a header.
	v1 := golden.Get(t, "celery_v1_add")
	msg, _ = EnvelopeMarshaler{}.Unmarshal(v1.Queue, v1.SQS())
	if msg.Metadata[MetadataTask] != "proj.tasks.add" || msg.Metadata["id"] == "" {
		t.Fatalf("v1 metadata %v", msg.Metadata)
	}
	out, _ = EnvelopeMarshaler{}.Marshal(Destination{Queue: "celery"}, msg)
	env, _ = DecodeEnvelope(out.Body)
	if string(env.Headers) != "{}" {
		t.Errorf("v1 forwarded with headers %s", env.Headers)
	}
}

func TestCompressionRoundTrip(t *testing.T) {
	payload := []byte(`{"data": "` + strings.Repeat("x", 500) + `"}`)
	msg := message.NewMessage("u", payload)
	out, err := EnvelopeMarshaler{Compression: "gzip"}.Marshal(Destination{Queue: "q"}, msg)
	if err != nil {
		t.Fatal(err)
	}
	env, _ := DecodeEnvelope(out.Body)
	if string(env.Headers) != `{"compression": "application/x-gzip"}` || len(env.Body) >= len(payload) {
		t.Fatalf("compressed envelope %s, %d bytes", env.Headers, len(env.Body))
	}
	back, err := unmarshalBody(t, out.Body)
	if err != nil || !bytes.Equal(back.Payload, payload) || back.Metadata[MetadataCompression] != compressionGzip ||
		back.Metadata[MetadataHeaders] != "{}" {
		t.Fatalf("%v %v", err, back.Metadata)
	}

	// Real gzip data under Kombu's gzip header is read too.
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(payload)
	_ = zw.Close()
	env.Body = buf.Bytes()
	back, err = unmarshalBody(t, env.Encode())
	if err != nil || !bytes.Equal(back.Payload, payload) {
		t.Fatalf("gzip: %v", err)
	}

	// Bounded decompression.
	_, err = EnvelopeMarshaler{MaxDecompressedSize: 100}.Unmarshal("q", &types.Message{Body: aws.String(out.Body)})
	if !errors.Is(err, ErrUndecodableBody) {
		t.Fatalf("oversized: %v", err)
	}
}

func TestUnmarshalErrors(t *testing.T) {
	envelope := func(body, ctype, headers string) string {
		js := `{"body": ` + body + `, "content-encoding": "utf-8", "content-type": ` + ctype + `, "headers": ` + headers +
			`, "properties": {"delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": "q1"}, "priority": 0, "body_encoding": "base64", "delivery_tag": "t"}}`
		return base64.StdEncoding.EncodeToString([]byte(js))
	}
	cases := []struct {
		name, body string
		sentinel   error
		part       string
	}{
		{"bad base64 body", envelope(`"not base64!!"`, `"application/json"`, `{}`), ErrUndecodableBody, "body"},
		{"body not a string", envelope(`42`, `"application/json"`, `{}`), ErrUndecodableBody, "body"},
		{"properties not an object", `{"body": "", "properties": "x"}`, ErrUndecodableBody, "properties"},
		{"headers not an object", envelope(`"e30="`, `"application/json"`, `[1]`), ErrUndecodableBody, "headers"},
		{"json that is not", envelope(`"bm90IGpzb24="`, `"application/json"`, `{}`), ErrUndecodableBody, "payload"},
		{"unknown body_encoding", `{"body": "x", "properties": {"body_encoding": "rot13"}}`, ErrUndecodableBody, "body"},
		{"pickle", envelope(`"gAR9lC4="`, `"application/x-python-serialize"`, `{}`), ErrUnsupportedContentType, "content-type"},
		{"yaml", envelope(`"e30="`, `"application/x-yaml"`, `{}`), ErrUnsupportedContentType, "content-type"},
		{"msgpack", envelope(`"gA=="`, `"application/x-msgpack"`, `{}`), ErrUnsupportedContentType, "content-type"},
		{"lzma", envelope(`"e30="`, `"application/json"`, `{"compression": "application/x-lzma"}`), ErrUnsupportedCompression, "compression"},
		{"corrupt zlib", envelope(`"e30="`, `"application/json"`, `{"compression": "application/x-gzip"}`), ErrUndecodableBody, "compression"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := unmarshalBody(t, c.body)
			if !errors.Is(err, c.sentinel) {
				t.Fatalf("err = %v, want %v", err, c.sentinel)
			}
			if !strings.Contains(err.Error(), "sqs-id") {
				t.Errorf("error does not name the message: %v", err)
			}
			var de *DecodeError
			if c.part != "" && (!errors.As(err, &de) || de.Part != c.part) {
				t.Errorf("err = %#v, want part %q", err, c.part)
			}
		})
	}
}

func TestUnmarshalRawBodies(t *testing.T) {
	for body, want := range map[string]string{
		"plain text":         "plain text",
		`{"no": "props"}`:    `{"no": "props"}`,
		`[1, 2]`:             `[1, 2]`,
		"aGVsbG8=":           "hello", // valid base64 is decoded, as Kombu does
		"aGVsbG8":            "aGVsbG8",
		"aGVs\nbG8=":         "aGVs\nbG8=",
		`{"properties": {`:   `{"properties": {`, // broken JSON: not an envelope
		"  eyJhIjogMX0=  \n": `{"a": 1}`,
		"":                   "",
	} {
		msg, err := unmarshalBody(t, body)
		if err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		if string(msg.Payload) != want || msg.Metadata[MetadataRaw] != "true" || msg.UUID != "sqs-id" {
			t.Errorf("%q: payload %q metadata %v", body, msg.Payload, msg.Metadata)
		}
	}
}

func TestBodyEncodingText(t *testing.T) {
	env := Envelope{Body: []byte(`{"k": "ünï"}`), ContentType: contentTypeJSON, ContentEncoding: "utf-8",
		Properties: Properties{BodyEncoding: "utf-8", RoutingKey: "q", DeliveryTag: "t"}}
	js := env.EncodeJSON()
	if !strings.HasPrefix(js, `{"body": "{\"k\": \"\u00fcn\u00ef\"}"`) {
		t.Fatalf("%s", js)
	}
	back, err := DecodeEnvelope(js)
	if err != nil || string(back.Body) != string(env.Body) || back.Properties.BodyEncoding != "utf-8" {
		t.Fatalf("%v %q", err, back.Body)
	}
}

func BenchmarkEnvelopeMarshalerUnmarshal(b *testing.B) {
	v := golden.Get(b, "celery_v2_add")
	in := v.SQS()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (EnvelopeMarshaler{}).Unmarshal("celery", in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEnvelopeMarshalerMarshal(b *testing.B) {
	// The message celery.NewTask("proj.tasks.add", []any{2, 3}, nil) builds.
	const id = "0a7a0c5e-3f6b-4a0e-9a55-3d2b0c6e1f00"
	msg := message.NewMessage(id, []byte(`[[2, 3], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]`))
	msg.Metadata = message.Metadata{
		MetadataContentEncoding: "utf-8",
		MetadataContentType:     contentTypeJSON,
		MetadataCorrelationID:   id,
		MetadataReplyTo:         "b9ef0cc3-a678-44f6-9a70-be0da406edf0",
		MetadataTask:            "proj.tasks.add",
		MetadataHeaders: `{"lang": "go", "task": "proj.tasks.add", "id": "` + id + `", "shadow": null, "eta": null, ` +
			`"expires": null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], ` +
			`"root_id": "` + id + `", "parent_id": null, "argsrepr": "(2, 3)", "kwargsrepr": "{}", ` +
			`"origin": "gen4859@vm", "ignore_result": false, "replaced_task_nesting": 0, "stamped_headers": null, "stamps": {}}`,
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (EnvelopeMarshaler{}).Marshal(Destination{Queue: "celery"}, msg); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMarshalDelayOverMaximum: a delay over SQS's 900 s maximum is clamped to it, as Kombu's
// SQS channel does, rather than dropped, which would deliver the message at once. The
// envelope keeps the delay asked for, as Kombu keeps the property it was given.
func TestMarshalDelayOverMaximum(t *testing.T) {
	for _, m := range []Marshaler{EnvelopeMarshaler{}, PlainMarshaler{}} {
		msg := message.NewMessage("u", []byte(`[1]`))
		msg.Metadata.Set(MetadataDelaySeconds, "1200")
		out, err := m.Marshal(Destination{Queue: "q"}, msg)
		if err != nil {
			t.Fatal(err)
		}
		if out.DelaySeconds != 900 {
			t.Errorf("%T: DelaySeconds %d, want 900", m, out.DelaySeconds)
		}
	}
	msg := message.NewMessage("u", []byte(`[1]`))
	msg.Metadata.Set(MetadataDelaySeconds, "1200")
	out, err := EnvelopeMarshaler{}.Marshal(Destination{Queue: "q"}, msg)
	if err != nil {
		t.Fatal(err)
	}
	env, err := DecodeEnvelope(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	if env.Properties.DelaySeconds == nil || *env.Properties.DelaySeconds != 1200 {
		t.Errorf("envelope DelaySeconds %v, want 1200", env.Properties.DelaySeconds)
	}
}
