package kombu

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"sync"
	"unsafe"

	"github.com/watermill-kombu/watermill-kombu/internal/b64"
	"github.com/watermill-kombu/watermill-kombu/internal/pywire"
)

// Sentinel errors of the Kombu wire format, for errors.Is.
var (
	// ErrUndecodableBody means an SQS body looked like a Kombu envelope but could not be
	// decoded. The error is a *DecodeError naming the message and what was wrong.
	ErrUndecodableBody = errors.New("kombu: undecodable message body")
	// ErrUnsupportedContentType means the payload uses a serializer Go cannot read (pickle,
	// YAML, msgpack). The error is a *DecodeError (Part "content-type") wrapping it.
	ErrUnsupportedContentType = errors.New("unsupported content type (use the json serializer in Celery/Kombu)")
	// ErrUnsupportedCompression means the payload is compressed with a codec this library
	// lacks (brotli, lzma, zstd). On receipt the error is a *DecodeError (Part
	// "compression") wrapping it.
	ErrUnsupportedCompression = errors.New("unsupported compression (zlib/gzip and bzip2 are supported)")
)

// DecodeError tells what could not be decoded in a received SQS body.
type DecodeError struct {
	// MessageID is the SQS MessageId, when known.
	MessageID string
	// Part names what was wrong: "envelope", "properties", "body", "headers", "content-type",
	// "compression", "payload".
	Part string
	// Err is the underlying error.
	Err error
}

// Error names the part and the cause.
func (e *DecodeError) Error() string {
	msg := "kombu: undecodable " + e.Part
	if e.MessageID != "" {
		msg += " in SQS message " + e.MessageID
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *DecodeError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUndecodableBody) hold.
func (e *DecodeError) Is(target error) bool { return target == ErrUndecodableBody }

// Content types and encodings Kombu writes in the envelope.
const (
	// contentTypeJSON is Kombu's json serializer, Celery's default.
	contentTypeJSON = "application/json"
	// contentTypeText is a str body published without serializer.
	contentTypeText = "text/plain"
	// contentTypeData is a bytes body published without serializer (content-encoding binary).
	contentTypeData = "application/data"
	// contentTypePickle, contentTypeYAML and contentTypeMsgpack are serializers Go does not
	// read: Unmarshal returns an *UnsupportedContentTypeError for them.
	contentTypePickle  = "application/x-python-serialize"
	contentTypeYAML    = "application/x-yaml"
	contentTypeMsgpack = "application/x-msgpack"

	// bodyEncodingBase64 is Kombu's default body_encoding.
	bodyEncodingBase64 = "base64"
)

// Envelope is the JSON object Kombu's SQS transport puts in a message body:
//
//	{"body": ..., "content-encoding": ..., "content-type": ..., "headers": {...},
//	 "properties": {..., "delivery_mode": 2, "delivery_info": {"exchange": ..., "routing_key": ...},
//	  "priority": 0, "body_encoding": "base64", "delivery_tag": ...}}
//
// Encode writes the keys in that order, with Python's JSON layout, so the result is what
// Kombu itself would send.
type Envelope struct {
	// Body is the serialized payload (e.g. JSON bytes), after the body_encoding layer was
	// removed and before any decompression.
	Body []byte
	// ContentType and ContentEncoding are the serializer's; "" is written as null.
	ContentType     string
	ContentEncoding string
	// Headers is a JSON object; nil or empty is written as {}.
	Headers json.RawMessage
	// Properties are Kombu's message properties.
	Properties Properties
	// Raw is true when a decoded SQS body was not a Kombu envelope (not JSON, not an object,
	// or without "properties"). Body then holds the body text, after Kombu's optional base64
	// decoding, and the other fields are zero.
	Raw bool
}

// Properties are the "properties" of a Kombu envelope.
type Properties struct {
	// CorrelationID and ReplyTo are written only when not empty. Celery sets both: the
	// correlation id is the task id.
	CorrelationID string
	ReplyTo       string
	// MessageGroupID and MessageDeduplicationID are kept in the properties by Kombu for FIFO
	// and fair queues, besides being SendMessage parameters. Written only when not empty.
	MessageGroupID         string
	MessageDeduplicationID string
	// DelaySeconds, when not nil, is written as Kombu keeps it.
	DelaySeconds *int
	// Expiration is a TTL in milliseconds as a decimal string (Celery sets it from expires);
	// SQS ignores it.
	Expiration string
	// Extra are other properties, in the order received, written before delivery_mode.
	Extra []Field
	// DeliveryMode is 2 (persistent) or 1; 0 is written as 2.
	DeliveryMode int
	// Exchange and RoutingKey are the delivery_info.
	Exchange   string
	RoutingKey string
	// Priority is 0 to 255; SQS ignores it.
	Priority int
	// BodyEncoding is "base64" (Kombu's default) or "" / "utf-8" for a body kept as text.
	// Encode writes "" as null.
	BodyEncoding string
	// DeliveryTag is a fresh UUID per publish; receivers replace it with the ReceiptHandle.
	DeliveryTag string
	// Redelivered is set by Kombu on messages it put back.
	Redelivered bool
}

// Field is one JSON member kept verbatim.
type Field struct {
	Key   string
	Value json.RawMessage
}

// AppendJSON appends the envelope as JSON, with Kombu's key order and Python's layout.
// Body is base64-encoded when BodyEncoding is "base64", otherwise written as a JSON string
// (it must then be UTF-8 text). Headers must be a JSON object.
func (e *Envelope) AppendJSON(dst []byte) []byte {
	p := &e.Properties
	dst = append(dst, `{"body": `...)
	if p.BodyEncoding == "" || p.BodyEncoding == "utf-8" {
		dst = pywire.AppendString(dst, string(e.Body))
	} else {
		dst = append(dst, '"')
		dst = appendBase64(dst, e.Body)
		dst = append(dst, '"')
	}
	dst = append(dst, `, "content-encoding": `...)
	dst = pywire.AppendNullableString(dst, e.ContentEncoding)
	dst = append(dst, `, "content-type": `...)
	dst = pywire.AppendNullableString(dst, e.ContentType)
	dst = append(dst, `, "headers": `...)
	if len(e.Headers) == 0 {
		dst = append(dst, "{}"...)
	} else {
		dst = append(dst, e.Headers...)
	}
	dst = append(dst, `, "properties": {`...)
	if p.CorrelationID != "" {
		dst = append(dst, `"correlation_id": `...)
		dst = append(pywire.AppendString(dst, p.CorrelationID), ", "...)
	}
	if p.ReplyTo != "" {
		dst = append(dst, `"reply_to": `...)
		dst = append(pywire.AppendString(dst, p.ReplyTo), ", "...)
	}
	if p.MessageGroupID != "" {
		dst = append(dst, `"MessageGroupId": `...)
		dst = append(pywire.AppendString(dst, p.MessageGroupID), ", "...)
	}
	if p.MessageDeduplicationID != "" {
		dst = append(dst, `"MessageDeduplicationId": `...)
		dst = append(pywire.AppendString(dst, p.MessageDeduplicationID), ", "...)
	}
	if p.DelaySeconds != nil {
		dst = append(dst, `"DelaySeconds": `...)
		dst = append(strconv.AppendInt(dst, int64(*p.DelaySeconds), 10), ", "...)
	}
	for _, f := range p.Extra {
		dst = append(pywire.AppendString(dst, f.Key), ": "...)
		dst = append(append(dst, f.Value...), ", "...)
	}
	mode := p.DeliveryMode
	if mode == 0 {
		mode = 2
	}
	dst = append(dst, `"delivery_mode": `...)
	dst = strconv.AppendInt(dst, int64(mode), 10)
	if p.Expiration != "" {
		dst = append(dst, `, "expiration": `...)
		dst = pywire.AppendString(dst, p.Expiration)
	}
	dst = append(dst, `, "delivery_info": {"exchange": `...)
	dst = pywire.AppendString(dst, p.Exchange)
	dst = append(dst, `, "routing_key": `...)
	dst = pywire.AppendString(dst, p.RoutingKey)
	dst = append(dst, `}, "priority": `...)
	dst = strconv.AppendInt(dst, int64(p.Priority), 10)
	dst = append(dst, `, "body_encoding": `...)
	dst = pywire.AppendNullableString(dst, p.BodyEncoding)
	dst = append(dst, `, "delivery_tag": `...)
	dst = pywire.AppendString(dst, p.DeliveryTag)
	if p.Redelivered {
		dst = append(dst, `, "redelivered": true`...)
	}
	return append(dst, "}}"...)
}

// buffers holds scratch buffers for the JSON that only lives until it is base64-encoded.
var buffers = sync.Pool{New: func() any { return new([]byte) }}

func getBuffer() *[]byte { return buffers.Get().(*[]byte) }

// putBuffer returns a buffer to the pool unless it grew past what a typical message needs.
func putBuffer(b *[]byte) {
	if cap(*b) <= 64<<10 {
		buffers.Put(b)
	}
}

// estimatedJSONSize is a generous guess of the envelope's JSON size, to allocate once.
func (e *Envelope) estimatedJSONSize() int {
	n := 300 + b64.EncodedLen(len(e.Body)) + len(e.Headers) + len(e.ContentType) +
		len(e.Properties.CorrelationID) + len(e.Properties.ReplyTo) + len(e.Properties.RoutingKey) +
		len(e.Properties.Exchange) + len(e.Properties.DeliveryTag) + len(e.Properties.MessageGroupID) +
		len(e.Properties.MessageDeduplicationID) + len(e.Properties.Expiration)
	for _, f := range e.Properties.Extra {
		n += len(f.Key) + len(f.Value) + 8
	}
	if e.Properties.BodyEncoding == "" || e.Properties.BodyEncoding == "utf-8" {
		n += len(e.Body) * 5 // room for \uXXXX escapes
	}
	return n
}

// Encode returns the SQS message body Kombu sends by default: base64 of the envelope JSON
// (sqs_base64_encoding true).
func (e *Envelope) Encode() string {
	buf := getBuffer()
	defer putBuffer(buf)
	js := e.AppendJSON(slices.Grow((*buf)[:0], e.estimatedJSONSize()))
	*buf = js
	out := make([]byte, b64.EncodedLen(len(js)))
	b64.Encode(out, js)
	// out is never written again, so it can back the string without a copy.
	return unsafe.String(unsafe.SliceData(out), len(out))
}

// EncodeJSON returns the envelope JSON itself, the SQS body Kombu sends with
// sqs_base64_encoding false, and that SNS fanout delivers.
func (e *Envelope) EncodeJSON() string {
	js := e.AppendJSON(make([]byte, 0, e.estimatedJSONSize()))
	return unsafe.String(unsafe.SliceData(js), len(js))
}
