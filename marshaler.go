package kombu

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Metadata keys set by the subscriber on every received message, whatever the marshaler.
const (
	// MetadataSQSMessageID is the SQS MessageId.
	MetadataSQSMessageID = "sqs_message_id"
	// MetadataReceiveCount is SQS's ApproximateReceiveCount: 1 on the first delivery.
	MetadataReceiveCount = "sqs_approximate_receive_count"
	// MetadataQueue is the Kombu queue name (the topic) the message came from.
	MetadataQueue = "sqs_queue"
)

// Metadata keys read by the publisher for FIFO queues and delays; they travel as Kombu
// properties of the same names, as in Kombu.
const (
	// MetadataMessageGroupID sets the FIFO MessageGroupId (default "default", as Kombu).
	MetadataMessageGroupID = "MessageGroupId"
	// MetadataDeduplicationID sets the FIFO MessageDeduplicationId (default: a fresh UUID per
	// send, as Kombu; set it to the message UUID to let SQS drop repeated publishes).
	MetadataDeduplicationID = "MessageDeduplicationId"
	// MetadataDelaySeconds delays delivery of a message on a standard queue (0 to 900; a
	// longer delay is cut to 900 s, as Kombu does).
	MetadataDelaySeconds = "DelaySeconds"
)

// MetadataTask is the metadata key holding the Celery task name (the `task` header of protocol
// v2, or the `task` field of a protocol v1 body). The backoff policy reads it.
const MetadataTask = "task"

// Destination tells a Marshaler where a message goes.
type Destination struct {
	// Queue is the Kombu queue name (the Watermill topic) before prefixing and mangling.
	Queue string
	// Exchange and RoutingKey are what Kombu writes in delivery_info: "" and the queue name
	// when publishing straight to a queue, as Celery does.
	Exchange   string
	RoutingKey string
	// FIFO is true for queues whose name ends in .fifo.
	FIFO bool
}

// OutgoingMessage is an SQS message ready to send.
type OutgoingMessage struct {
	Body              string
	MessageAttributes map[string]types.MessageAttributeValue
	// MessageGroupID and DeduplicationID are used on FIFO queues (and the group on fair queues).
	MessageGroupID  string
	DeduplicationID string
	DelaySeconds    int32
}

// size is the SQS-counted size: the body plus every attribute's name, type and value.
func (m *OutgoingMessage) size() int {
	n := len(m.Body)
	for name, attr := range m.MessageAttributes {
		n += len(name) + len(aws.ToString(attr.DataType)) + len(aws.ToString(attr.StringValue)) + len(attr.BinaryValue)
	}
	return n
}

// Marshaler turns a Watermill message into an SQS message, and a received SQS message back
// into a Watermill message. The default is EnvelopeMarshaler, which speaks Kombu's envelope.
type Marshaler interface {
	Marshal(dest Destination, msg *message.Message) (*OutgoingMessage, error)
	// Unmarshal decodes a received message; queue is the Kombu queue name (topic) it came from.
	Unmarshal(queue string, msg *types.Message) (*message.Message, error)
}

// uuidAttribute is the SQS message attribute carrying the Watermill UUID in PlainMarshaler,
// the same name the other Watermill pubsubs use.
const uuidAttribute = "_watermill_message_uuid"

// PlainMarshaler sends the payload as the SQS body, the UUID and metadata as SQS message
// attributes. It does not speak Kombu; use it between Go services only. SQS allows at most
// 10 attributes per message, so at most 9 metadata keys.
//
// A payload that is not valid UTF-8 (SQS bodies must be text) is base64-encoded and flagged
// with the attribute "_watermill_body_encoding" = "base64".
type PlainMarshaler struct{}

const plainBodyEncodingAttribute = "_watermill_body_encoding"

// Marshal implements Marshaler.
func (PlainMarshaler) Marshal(dest Destination, msg *message.Message) (*OutgoingMessage, error) {
	attrs := make(map[string]types.MessageAttributeValue, len(msg.Metadata)+1)
	attrs[uuidAttribute] = stringAttr(msg.UUID)
	for k, v := range msg.Metadata {
		if k == uuidAttribute || k == plainBodyEncodingAttribute {
			return nil, fmt.Errorf("kombu: metadata key %q is reserved", k)
		}
		attrs[k] = stringAttr(v)
	}
	body := string(msg.Payload)
	if !validSQSBody(msg.Payload) {
		body = base64.StdEncoding.EncodeToString(msg.Payload)
		attrs[plainBodyEncodingAttribute] = stringAttr("base64")
	}
	if len(attrs) > 10 {
		return nil, fmt.Errorf("kombu: message %s has %d metadata keys; SQS allows 10 attributes, one of which holds the UUID", msg.UUID, len(msg.Metadata))
	}
	out := &OutgoingMessage{Body: body, MessageAttributes: attrs}
	md := msg.Metadata
	applyPublishMetadata(out, dest, md.Get(MetadataMessageGroupID), md.Get(MetadataDeduplicationID), md.Get(MetadataDelaySeconds))
	return out, nil
}

// MetadataAttributePrefix prefixes the metadata keys that EnvelopeMarshaler carries as SQS message
// attributes, outside the Kombu envelope: a received message's attributes (set by a producer
// that is not Kombu, or by Kombu's `message_attributes` property) appear as
// "sqs_attr_<name>" = value, and a published message's "sqs_attr_<name>" keys are sent as
// String attributes. Binary attribute values are carried as their bytes.
const MetadataAttributePrefix = "sqs_attr_"

func attributesFromMetadata(md message.Metadata) map[string]types.MessageAttributeValue {
	var attrs map[string]types.MessageAttributeValue
	for k, v := range md {
		if name, ok := strings.CutPrefix(k, MetadataAttributePrefix); ok && name != "" {
			if attrs == nil {
				attrs = map[string]types.MessageAttributeValue{}
			}
			attrs[name] = stringAttr(v)
		}
	}
	return attrs
}

func metadataFromAttributes(md message.Metadata, attrs map[string]types.MessageAttributeValue) {
	for name, v := range attrs {
		val := aws.ToString(v.StringValue)
		if v.BinaryValue != nil {
			val = string(v.BinaryValue)
		}
		md[MetadataAttributePrefix+name] = val
	}
}

// Unmarshal implements Marshaler.
func (PlainMarshaler) Unmarshal(queue string, in *types.Message) (*message.Message, error) {
	payload := []byte(aws.ToString(in.Body))
	uuid := aws.ToString(in.MessageId)
	md := make(message.Metadata, len(in.MessageAttributes))
	for k, v := range in.MessageAttributes {
		val := aws.ToString(v.StringValue)
		if v.BinaryValue != nil {
			val = string(v.BinaryValue)
		}
		switch k {
		case uuidAttribute:
			uuid = val
		case plainBodyEncodingAttribute:
			if val == "base64" {
				decoded, err := base64.StdEncoding.DecodeString(string(payload))
				if err != nil {
					return nil, fmt.Errorf("kombu: body of SQS message %s is flagged base64 but does not decode: %w", aws.ToString(in.MessageId), err)
				}
				payload = decoded
			}
		default:
			md[k] = val
		}
	}
	msg := message.NewMessage(uuid, payload)
	msg.Metadata = md
	return msg, nil
}

func stringAttr(v string) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
}

// applyPublishMetadata copies the FIFO and delay metadata (the values of MetadataMessageGroupID,
// MetadataDeduplicationID and MetadataDelaySeconds) into the outgoing message, with Kombu's
// defaults for FIFO queues.
func applyPublishMetadata(out *OutgoingMessage, dest Destination, groupID, deduplicationID, delay string) {
	out.MessageGroupID = groupID
	out.DeduplicationID = deduplicationID
	if dest.FIFO {
		if out.MessageGroupID == "" {
			out.MessageGroupID = "default"
		}
		if out.DeduplicationID == "" {
			out.DeduplicationID = watermill.NewUUID()
		}
	}
	if delay != "" && !dest.FIFO {
		// A longer delay than SQS takes is clamped to its maximum, as Kombu's SQS channel
		// does: dropped, it would deliver the message at once.
		if n, err := strconv.Atoi(delay); err == nil && n > 0 {
			out.DelaySeconds = int32(min(n, maxDelaySeconds))
		}
	}
}

// maxDelaySeconds is the longest per-message delay SQS takes.
const maxDelaySeconds = 900

// validSQSBody reports whether b is text SQS accepts: valid UTF-8 made only of #x9, #xA, #xD,
// #x20 to #xD7FF, #xE000 to #xFFFD and #x10000 to #x10FFFF.
func validSQSBody(b []byte) bool {
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size <= 1 {
			return false
		}
		switch {
		case r == 0x9 || r == 0xA || r == 0xD:
		case r >= 0x20 && r <= 0xD7FF:
		case r >= 0xE000 && r <= 0xFFFD:
		case r >= 0x10000 && r <= 0x10FFFF:
		default:
			return false
		}
		b = b[size:]
	}
	return true
}
