package kombu

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/watermill-kombu/watermill-kombu/internal/pywire"
)

// Metadata keys of EnvelopeMarshaler. Keys starting with "kombu_" or "sqs_" are reserved: they
// never become Kombu headers.
const (
	// MetadataContentType and MetadataContentEncoding are the envelope's content-type and
	// content-encoding. When set on a message to publish, they are sent instead of the
	// detected ones.
	MetadataContentType     = "kombu_content_type"
	MetadataContentEncoding = "kombu_content_encoding"
	// MetadataCorrelationID is properties.correlation_id (the task id for Celery). On
	// publish it defaults to the message UUID.
	MetadataCorrelationID = "kombu_correlation_id"
	// MetadataReplyTo is properties.reply_to (Celery's RPC result queue).
	MetadataReplyTo = "kombu_reply_to"
	// MetadataExchange and MetadataRoutingKey are the received delivery_info. Publishing
	// uses the Destination instead.
	MetadataExchange   = "kombu_exchange"
	MetadataRoutingKey = "kombu_routing_key"
	// MetadataPriority is properties.priority as decimal text; it is sent when set
	// (default 0).
	MetadataPriority = "kombu_priority"
	// MetadataRaw is "true" for a received body that was not a Kombu envelope; the payload is
	// then the body text.
	MetadataRaw = "kombu_raw"
	// MetadataHeaders holds the envelope headers as a JSON object, with their JSON types.
	// When set on a message to publish, these headers are sent as they are (see
	// EnvelopeMarshaler for how other metadata is merged in).
	MetadataHeaders = "kombu_headers"
	// MetadataCompression is the compression of the received payload (which Unmarshal
	// decompressed), e.g. "application/x-gzip". When set on a message to publish, the payload
	// is compressed with it (with zlib for Kombu's gzip; a bzip2 payload is sent uncompressed,
	// as Go has no bzip2 writer).
	MetadataCompression = "kombu_compression"
	// MetadataExpiration is properties.expiration: a TTL in milliseconds, as text.
	MetadataExpiration = "kombu_expiration"
	// MetadataReceivedGroupID is the MessageGroupId Kombu kept in the received properties
	// (kombu_message_deduplication_id holds its MessageDeduplicationId). They are
	// informational: to publish with a group or deduplication id, set
	// MetadataMessageGroupID or MetadataDeduplicationID.
	MetadataReceivedGroupID = "kombu_message_group_id"
)

// Metadata keys of the envelope properties a handler rarely needs. They are not exported;
// the package documentation lists them.
const (
	// metadataDeliveryMode is properties.delivery_mode as decimal text; sent when set
	// (default 2).
	metadataDeliveryMode = "kombu_delivery_mode"
	// metadataBodyEncoding is the received properties.body_encoding ("base64" by default).
	metadataBodyEncoding = "kombu_body_encoding"
	// metadataDeliveryTag is the received delivery tag: the SQS ReceiptHandle, as in Kombu.
	metadataDeliveryTag = "kombu_delivery_tag"
	// metadataRedelivered is "true" when Kombu flagged the message as redelivered.
	metadataRedelivered = "kombu_redelivered"
	// metadataReceivedDeduplicationID is the MessageDeduplicationId Kombu kept in the
	// received properties.
	metadataReceivedDeduplicationID = "kombu_message_deduplication_id"
)

// defaultMaxDecompressedSize bounds the size of a decompressed payload.
const defaultMaxDecompressedSize = 64 << 20

// EnvelopeMarshaler reads and writes Kombu's SQS format, so that Celery and Kombu producers and
// workers interoperate with Watermill.
//
// The SQS body is base64 of a JSON envelope (see Envelope) whose "body" is base64 of the
// serialized payload.
//
// Unmarshal maps a received message as follows:
//
//   - UUID: properties.correlation_id, else headers.id (Celery protocol 2), else the id of a
//     protocol 1 task body, else the SQS MessageId.
//   - Payload: the serialized payload (after body_encoding and decompression), e.g.
//     [[2, 3], {}, {...}] for a Celery task. application/json payloads are checked to be
//     JSON; text/plain, application/data and other types pass as they are; pickle, YAML and
//     msgpack give a *DecodeError wrapping ErrUnsupportedContentType.
//   - Each header becomes metadata under its own name: strings as they are, other values as
//     compact JSON text, null headers are left out. All headers are also kept, typed, in
//     MetadataHeaders. The compression header is replaced by MetadataCompression.
//   - MetadataTask ("task") is the task name for protocol 2 (a header) and protocol 1 (from
//     the body, together with "id", "eta" and "expires").
//   - The kombu_* keys above carry the rest of the envelope; kombu_delivery_tag is the
//     ReceiptHandle.
//   - A body that is not an envelope is passed on as it is (after Kombu's optional base64
//     decoding) with MetadataRaw "true".
//
// Marshal builds the envelope Kombu's Producer.publish would:
//
//   - content-type: MetadataContentType if set, else application/json for a JSON payload,
//     text/plain for UTF-8 text, and application/data with content-encoding binary otherwise;
//   - headers: MetadataHeaders if set, as they are, except that a metadata key equal to a
//     header name and holding another value replaces it as a string; other metadata keys
//     become string headers (sorted), except reserved ones (kombu_*, sqs_*, MessageGroupId,
//     MessageDeduplicationId, DelaySeconds) and, when MetadataHeaders is set without them,
//     the task, id, eta and expires keys that Unmarshal takes from a protocol 1 body;
//   - properties: correlation_id (MetadataCorrelationID, else the UUID), reply_to,
//     MessageGroupId / MessageDeduplicationId / DelaySeconds when set, delivery_mode,
//     expiration, delivery_info from the Destination (routing key defaulting to the queue),
//     priority, body_encoding base64 and a fresh delivery_tag.
//
// Messages built by celery.NewTask carry MetadataHeaders, so they go out exactly as Celery's
// apply_async would send them.
type EnvelopeMarshaler struct {
	// RawEnvelope sends the envelope JSON as the SQS body, without the outer base64 layer
	// (Kombu's sqs_base64_encoding false). Receiving accepts both.
	RawEnvelope bool
	// Compression compresses every published payload unless MetadataCompression says
	// otherwise: "" for none, or "zlib" / "gzip" / "application/x-gzip" (Kombu's gzip, which
	// is zlib data).
	Compression string
	// MaxDecompressedSize bounds decompressed payloads; 0 means 64 MiB.
	MaxDecompressedSize int
}

// v1BodyKeys are the metadata keys Unmarshal takes from a protocol 1 body rather than headers.
var v1BodyKeys = [...]string{MetadataTask, "id", "eta", "expires"}

// isReservedMetadata reports whether a metadata key never becomes a header.
func isReservedMetadata(k string) bool {
	return strings.HasPrefix(k, "kombu_") || strings.HasPrefix(k, "sqs_") ||
		k == MetadataMessageGroupID || k == MetadataDeduplicationID || k == MetadataDelaySeconds ||
		k == "compression"
}

// Marshal implements Marshaler.
func (m EnvelopeMarshaler) Marshal(dest Destination, msg *message.Message) (*OutgoingMessage, error) {
	md := msg.Metadata
	// The keys that become headers: few, so kept on the stack.
	var extraBuf [8]metaPair
	pm, extra := readPublishMetadata(md, extraBuf[:0])
	env := Envelope{Body: msg.Payload}
	if pm.contentType != "" {
		env.ContentType, env.ContentEncoding = pm.contentType, pm.contentEncoding
	} else {
		env.ContentType, env.ContentEncoding = detectContentType(msg.Payload)
	}

	compression := m.Compression
	if pm.hasCompression {
		compression = pm.compression
	}
	var compressionHeader string
	if compression != "" {
		var err error
		env.Body, compressionHeader, err = compress(compression, msg.Payload)
		if err != nil {
			return nil, fmt.Errorf("kombu: message %s: %w", msg.UUID, err)
		}
	}

	scratch := getBuffer()
	defer putBuffer(scratch)
	headers, err := pm.appendHeaders((*scratch)[:0], extra, compressionHeader)
	if err != nil {
		return nil, fmt.Errorf("kombu: message %s: %w", msg.UUID, err)
	}
	*scratch = headers
	env.Headers = headers

	p := &env.Properties
	p.CorrelationID = msg.UUID
	if pm.correlationID != "" {
		p.CorrelationID = pm.correlationID
	}
	p.ReplyTo = pm.replyTo
	p.MessageGroupID = pm.groupID
	p.MessageDeduplicationID = pm.deduplicationID
	if d := pm.delaySeconds; d != "" && !dest.FIFO {
		// As asked for, as Kombu keeps the property; SQS gets at most 900 s (see
		// applyPublishMetadata).
		if n, err := strconv.Atoi(d); err == nil && n >= 0 {
			p.DelaySeconds = &n
		}
	}
	p.Expiration = pm.expiration
	p.DeliveryMode = 2
	if n, err := atoiIfSet(pm.deliveryMode); err == nil && (n == 1 || n == 2) {
		p.DeliveryMode = n
	}
	if n, err := atoiIfSet(pm.priority); err == nil && n >= 0 && n <= 255 {
		p.Priority = n
	}
	p.Exchange, p.RoutingKey = dest.Exchange, dest.RoutingKey
	if p.RoutingKey == "" && dest.Exchange == "" {
		p.RoutingKey = dest.Queue
	}
	p.BodyEncoding = bodyEncodingBase64
	p.DeliveryTag = newDeliveryTag()

	out := &OutgoingMessage{}
	if m.RawEnvelope {
		out.Body = env.EncodeJSON()
	} else {
		out.Body = env.Encode()
	}
	applyPublishMetadata(out, dest, pm.groupID, pm.deduplicationID, pm.delaySeconds)
	if pm.attrs {
		out.MessageAttributes = attributesFromMetadata(md)
	}
	return out, nil
}

// Unmarshal implements Marshaler.
func (m EnvelopeMarshaler) Unmarshal(queue string, in *types.Message) (*message.Message, error) {
	msgID := aws.ToString(in.MessageId)
	var env Envelope
	var h headerReader
	if err := env.decode(aws.ToString(in.Body), &h); err != nil {
		var de *DecodeError
		if errors.As(err, &de) {
			de.MessageID = msgID
		}
		return nil, err
	}
	// A queue subscribed to an SNS topic without raw message delivery gets the envelope
	// wrapped in an SNS notification.
	in = unwrapSNSNotification(&env, &h, in)
	if env.Raw {
		msg := message.NewMessage(msgID, env.Body)
		msg.Metadata[MetadataRaw] = "true"
		if in.ReceiptHandle != nil {
			msg.Metadata[metadataDeliveryTag] = *in.ReceiptHandle
		}
		metadataFromAttributes(msg.Metadata, in.MessageAttributes)
		return msg, nil
	}

	switch strings.ToLower(env.ContentType) {
	case contentTypePickle, contentTypeYAML, contentTypeMsgpack, "application/x-pickle", "application/yaml", "application/msgpack":
		return nil, &DecodeError{MessageID: msgID, Part: "content-type", Err: fmt.Errorf("%w: %q", ErrUnsupportedContentType, env.ContentType)}
	}

	md, headerID, compression := h.md, h.id, h.compression
	if md == nil {
		md = make(message.Metadata, 16)
	}
	switch {
	case len(env.Headers) == 0:
		md[MetadataHeaders] = "{}"
	case h.hasCompression:
		md[MetadataHeaders] = string(withoutMember(env.Headers, "compression"))
	default:
		md[MetadataHeaders] = bytesString(env.Headers)
	}

	payload := env.Body
	if compression != "" {
		var err error
		limit := m.MaxDecompressedSize
		if limit <= 0 {
			limit = defaultMaxDecompressedSize
		}
		if payload, err = decompress(compression, payload, limit); err != nil {
			setMessageID(err, msgID)
			return nil, err
		}
		md[MetadataCompression] = compression
	}
	// Python's JSON, NaN and Infinity included, which Kombu's json.loads reads.
	if strings.EqualFold(env.ContentType, contentTypeJSON) && !pywire.ValidPython(payload) {
		return nil, &DecodeError{MessageID: msgID, Part: "payload", Err: errors.New("content type is application/json but the payload is not JSON")}
	}

	id := env.Properties.CorrelationID
	if id == "" {
		id = headerID
	}
	if _, isV2 := md[MetadataTask]; !isV2 && strings.EqualFold(env.ContentType, contentTypeJSON) {
		if fields := v1TaskFields(payload); fields[0] != "" {
			for i, k := range v1BodyKeys {
				if fields[i] != "" {
					md[k] = fields[i]
				}
			}
			if id == "" {
				id = fields[1]
			}
		}
	}
	if id == "" {
		id = msgID
	}

	setIf(md, MetadataContentType, env.ContentType)
	setIf(md, MetadataContentEncoding, env.ContentEncoding)
	p := &env.Properties
	setIf(md, MetadataCorrelationID, p.CorrelationID)
	setIf(md, MetadataReplyTo, p.ReplyTo)
	md[MetadataExchange] = p.Exchange
	md[MetadataRoutingKey] = p.RoutingKey
	md[MetadataPriority] = strconv.Itoa(p.Priority)
	if p.DeliveryMode != 0 {
		md[metadataDeliveryMode] = strconv.Itoa(p.DeliveryMode)
	}
	setIf(md, metadataBodyEncoding, p.BodyEncoding)
	setIf(md, MetadataExpiration, p.Expiration)
	setIf(md, MetadataReceivedGroupID, p.MessageGroupID)
	setIf(md, metadataReceivedDeduplicationID, p.MessageDeduplicationID)
	if p.Redelivered {
		md[metadataRedelivered] = "true"
	}
	if in.ReceiptHandle != nil {
		md[metadataDeliveryTag] = *in.ReceiptHandle
	} else {
		setIf(md, metadataDeliveryTag, p.DeliveryTag)
	}

	metadataFromAttributes(md, in.MessageAttributes)
	msg := message.NewMessage(id, payload)
	msg.Metadata = md
	return msg, nil
}

func setIf(md message.Metadata, key, value string) {
	if value != "" {
		md[key] = value
	}
}

// errUnset is atoiIfSet's answer for an empty string, without strconv's error allocation.
var errUnset = errors.New("unset")

// atoiIfSet is strconv.Atoi for metadata that is often absent.
func atoiIfSet(s string) (int, error) {
	if s == "" {
		return 0, errUnset
	}
	return strconv.Atoi(s)
}

// headerReader turns the envelope headers into metadata as the decoder reads them: each value
// is a string sharing the decoded buffer when it can be.
type headerReader struct {
	md             message.Metadata
	id             string // the "id" header, when a string
	compression    string
	hasCompression bool
}

func (h *headerReader) add(key []byte, escaped bool, raw []byte) {
	if h.md == nil {
		// A Celery task's headers and envelope give some 23 metadata entries, the subscriber
		// adds 3: sized once (a hint of 32 would double the map's table).
		h.md = make(message.Metadata, 28)
	}
	name := headerName(key)
	if escaped {
		name = string(pywire.Unescape(nil, key))
	}
	text, ok := metaText(raw)
	switch {
	case name == "compression":
		h.hasCompression, h.compression = true, text
	case ok && !isReservedMetadata(name):
		// A header named like a reserved key stays in MetadataHeaders only.
		h.md[name] = text
		if name == "id" && raw[0] == '"' {
			h.id = text
		}
	}
}

// metaText is pywire.MetaText of raw, a value in the decoder's buffer, without a copy when
// the text is there as it is: a string without escapes, or a value without spaces. The
// timelimit header Celery sends for a task without time limits is a constant too.
func metaText(raw []byte) (string, bool) {
	if len(raw) >= 2 && raw[0] == '"' {
		if bytes.IndexByte(raw, '\\') < 0 {
			return bytesString(raw[1 : len(raw)-1]), true
		}
	} else if string(raw) != "null" && !hasSpace(raw) {
		return bytesString(raw), true
	} else if string(raw) == "[null, null]" {
		return "[null,null]", true
	}
	return pywire.MetaText(raw)
}

// hasSpace reports whether a JSON value has white space between its tokens (or in a string).
func hasSpace(raw []byte) bool {
	for _, c := range raw {
		if c <= ' ' {
			return true
		}
	}
	return false
}
