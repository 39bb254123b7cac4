package kombu

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// TestMessageAttributesCarried: SQS message attributes of a received message (from a producer
// that is not Kombu, with a Kombu envelope or a raw body) appear as sqs_attr_* metadata, and
// sqs_attr_* metadata of a published message is sent as String attributes.
func TestMessageAttributesCarried(t *testing.T) {
	attrs := map[string]types.MessageAttributeValue{
		"tenant": {DataType: aws.String("String"), StringValue: aws.String("acme")},
		"blob":   {DataType: aws.String("Binary"), BinaryValue: []byte("raw")},
	}
	env, err := EnvelopeMarshaler{}.Marshal(Destination{Queue: "q1", RoutingKey: "q1"}, message.NewMessage("u1", []byte(`{"a":1}`)))
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"kombu": env.Body, "raw": `{"not":"an envelope"}`} {
		msg, err := EnvelopeMarshaler{}.Unmarshal("q1", &types.Message{Body: aws.String(body), MessageId: aws.String("id"),
			ReceiptHandle: aws.String("rh"), MessageAttributes: attrs})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := msg.Metadata.Get(MetadataAttributePrefix + "tenant"); got != "acme" {
			t.Errorf("%s: tenant attribute = %q", name, got)
		}
		if got := msg.Metadata.Get(MetadataAttributePrefix + "blob"); got != "raw" {
			t.Errorf("%s: blob attribute = %q", name, got)
		}
	}

	out := message.NewMessage("u2", []byte("x"))
	out.Metadata.Set(MetadataAttributePrefix+"tenant", "acme")
	out.Metadata.Set("other", "not an attribute")
	sent, err := EnvelopeMarshaler{}.Marshal(Destination{Queue: "q1", RoutingKey: "q1"}, out)
	if err != nil {
		t.Fatal(err)
	}
	if len(sent.MessageAttributes) != 1 || aws.ToString(sent.MessageAttributes["tenant"].StringValue) != "acme" ||
		aws.ToString(sent.MessageAttributes["tenant"].DataType) != "String" {
		t.Errorf("sent attributes = %+v", sent.MessageAttributes)
	}
}

// TestPublishNilMessage: a nil message is an error, not a panic, and nothing is sent.
func TestPublishNilMessage(t *testing.T) {
	pub, err := NewPublisher(PublisherConfig{Config: Config{Region: "us-east-1", EndpointURL: "http://127.0.0.1:1",
		AccessKeyID: "test", SecretAccessKey: "test"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for _, msgs := range [][]*message.Message{{nil}, {message.NewMessage("1", nil), nil}} {
		if err := pub.Publish("q1", msgs...); err == nil {
			t.Errorf("Publish(%d messages with a nil one) = nil", len(msgs))
		}
	}
	if n := pub.Stats().Total(); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}
