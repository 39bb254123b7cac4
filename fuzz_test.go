package kombu

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/watermill-kombu/watermill-kombu/internal/golden"
)

// FuzzDecode feeds SQS bodies to the envelope decoder and EnvelopeMarshaler.Unmarshal (the
// celery package fuzzes TaskFromMessage the same way): none may panic, and every failure must be one of the package's typed
// errors.
func FuzzDecode(f *testing.F) {
	for _, v := range golden.Load(f) {
		f.Add(v.Body)
		if env, err := DecodeEnvelope(v.Body); err == nil && !env.Raw {
			f.Add(env.EncodeJSON())
		}
	}
	f.Add(`{"properties": {"body_encoding": "base64"}, "body": "!!!"}`)
	f.Add(`{"properties": null}`)
	f.Add(`{"body": "e30=", "headers": {"compression": "application/x-gzip"}, "properties": {"body_encoding": "base64"}}`)
	f.Add(`{"body": "W10=", "content-type": "application/json", "headers": {"task": "t"}, "properties": {"body_encoding": "base64"}}`)
	f.Add(base64.StdEncoding.EncodeToString([]byte(`{"body": "\ud800", "properties": {}}`)))

	f.Fuzz(func(t *testing.T, body string) {
		env, err := DecodeEnvelope(body)
		if err != nil {
			if !errors.Is(err, ErrUndecodableBody) {
				t.Fatalf("DecodeEnvelope: untyped error %v", err)
			}
		} else if !env.Raw {
			// What was decoded encodes and decodes back to the same envelope.
			again, err := DecodeEnvelope(env.Encode())
			if err != nil || again.Raw || string(again.Body) != string(env.Body) ||
				again.Properties.CorrelationID != env.Properties.CorrelationID ||
				again.Properties.RoutingKey != env.Properties.RoutingKey {
				t.Fatalf("re-encoding %q changed it: %v", body, err)
			}
			if len(env.Headers) > 0 && !json.Valid(env.Headers) {
				t.Fatalf("headers %q are not JSON", env.Headers)
			}
		}

		msg, err := EnvelopeMarshaler{}.Unmarshal("q", &types.Message{
			Body: aws.String(body), MessageId: aws.String("m-1"), ReceiptHandle: aws.String("r-1"),
		})
		if err != nil {
			if !errors.Is(err, ErrUndecodableBody) && !errors.Is(err, ErrUnsupportedContentType) &&
				!errors.Is(err, ErrUnsupportedCompression) {
				t.Fatalf("Unmarshal: untyped error %v", err)
			}
			return
		}
		if msg.UUID == "" {
			t.Fatalf("empty UUID")
		}
		// A decoded message can be published again.
		if _, err := (EnvelopeMarshaler{}).Marshal(Destination{Queue: "q"}, msg); err != nil {
			t.Fatalf("Marshal of an unmarshalled message: %v", err)
		}
	})
}
