package kombu

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
	"unsafe"

	"github.com/watermill-kombu/watermill-kombu/internal/b64"
	"github.com/watermill-kombu/watermill-kombu/internal/pywire"
)

// DecodeEnvelope decodes an SQS message body the way Kombu's SQS transport does:
//
//   - the body is base64-decoded only when it is canonical base64 (the whole body, padded,
//     re-encoding to itself) whose bytes are UTF-8; otherwise it is used as it is, so raw
//     JSON envelopes (sqs_base64_encoding false, SNS raw delivery) are read too;
//   - a JSON object with a "properties" key is an envelope; anything else (not JSON, not an
//     object, no properties) yields Raw true with the text in Body;
//   - the envelope's body is base64-decoded when properties.body_encoding is "base64", and
//     kept as text when it is null or "utf-8".
//
// Errors are *DecodeError (ErrUndecodableBody). Decompression and deserialization are left to
// the caller (EnvelopeMarshaler does both).
func DecodeEnvelope(body string) (*Envelope, error) {
	e := new(Envelope)
	if err := e.Decode(body); err != nil {
		return nil, err
	}
	return e, nil
}

// Decode is DecodeEnvelope into e, which it overwrites.
//
// The decoded fields share one buffer, which Decode allocates: the strings are not copied
// out of it, and Body and Headers are slices of it (they may be changed in place).
func (e *Envelope) Decode(body string) error {
	return e.decode(body, nil)
}

// decode is Decode that gives header, when not nil, each member of the headers object as it is
// read, so that a caller needing the headers does not read them a second time. header may be
// given members of a body that turns out not to be an envelope (Raw).
func (e *Envelope) decode(body string, header *headerReader) error {
	*e = Envelope{}
	text, decoded := optionalBase64(body)
	if !decoded && !utf8.Valid(text) {
		// SQS bodies are Unicode text, so only a corrupted message gets here.
		return &DecodeError{Part: "body", Err: errors.New("not valid UTF-8")}
	}
	// The scanner is a variable of its own: the decoder holding a pointer to it keeps the
	// envelope and the header reader on the caller's stack.
	sc := pywire.NewScanner(text)
	var sem error
	d := envelopeDecoder{s: &sc, e: e, header: header, sem: &sem}
	if d.s.Peek() != '{' {
		e.Raw, e.Body = true, text
		return nil
	}
	err := d.s.Object(d.member)
	if err == nil {
		err = d.s.End()
	}
	if err != nil || !d.sawProperties {
		// Not JSON, or JSON without properties: Kombu passes such bodies through.
		*e = Envelope{Raw: true, Body: text}
		return nil
	}
	if sem != nil {
		return sem
	}
	// An unknown body_encoding is an error even without a body, so that what decodes also
	// decodes again once encoded.
	enc := e.Properties.BodyEncoding
	switch enc {
	case "", "utf-8", "UTF-8", bodyEncodingBase64:
	default:
		return &DecodeError{Part: "body", Err: fmt.Errorf("unknown body_encoding %q", enc)}
	}
	if !d.hasBody {
		return nil
	}
	// The body's place in text (see envelopeDecoder).
	start := cap(text) - d.bodyCap
	bodyRaw := text[start : start+d.bodyLen]
	switch enc {
	case "", "utf-8", "UTF-8":
		if d.bodyEscaped {
			e.Body = pywire.Unescape(make([]byte, 0, len(bodyRaw)), bodyRaw)
		} else {
			e.Body = capped(bodyRaw)
		}
	case bodyEncodingBase64:
		raw := bodyRaw
		if d.bodyEscaped {
			raw = pywire.Unescape(nil, raw)
		}
		// The base64 text is the decoder's own (text, or raw when unescaped) and nothing
		// refers to it, so it is decoded in place.
		n, err := b64.Decode(raw, raw)
		if err == nil {
			e.Body = raw[:n:n]
			return nil
		}
		// Not canonical base64: the failed attempt wrote over the text, which is read again
		// and decoded by Python's rules.
		if d.bodyEscaped {
			raw = pywire.Unescape(nil, bodyRaw)
		} else {
			again, _ := optionalBase64(body)
			raw = again[start : start+d.bodyLen]
		}
		e.Body, err = decodeBase64Python(raw)
		if err != nil {
			return &DecodeError{Part: "body", Err: fmt.Errorf("body_encoding is base64 but the body does not decode: %w", err)}
		}
	default:
		return &DecodeError{Part: "body", Err: fmt.Errorf("unknown body_encoding %q", enc)}
	}
	return nil
}

// envelopeDecoder reads an envelope in one pass. Syntax errors end the pass (the body is then
// not an envelope); wrong types are kept in sem and reported once the body is known to be an
// envelope.
type envelopeDecoder struct {
	s             *pywire.Scanner
	e             *Envelope
	sem           *error // the first wrong type seen; a pointer, for the same reason
	sawProperties bool
	// The body string's length and the capacity of its slice of the text: a place rather than
	// a slice, because the compiler would move the decoder's pointees to the heap once one of
	// its slices is passed to the (assembly) base64 decoder.
	hasBody     bool
	bodyLen     int
	bodyCap     int
	bodyEscaped bool
	header      *headerReader
}

func (d *envelopeDecoder) wrongType(part, what string) error {
	if *d.sem == nil {
		*d.sem = &DecodeError{Part: part, Err: errors.New(what)}
	}
	_, err := d.s.Value()
	return err
}

func (d *envelopeDecoder) member(key []byte, escaped bool) error {
	s, e := d.s, d.e
	var err error
	switch keyName(key, escaped) {
	case "body":
		switch s.Peek() {
		case '"':
			var raw []byte
			raw, d.bodyEscaped, err = s.RawString()
			d.hasBody, d.bodyLen, d.bodyCap = true, len(raw), cap(raw)
		case 'n':
			d.hasBody, err = false, s.Literal("null")
		default:
			return d.wrongType("body", "the envelope body is not a string")
		}
	case "content-type":
		if !d.stringOrNull() {
			return d.wrongType("envelope", "content-type is not a string")
		}
		e.ContentType, err = nullableString(s)
	case "content-encoding":
		if !d.stringOrNull() {
			return d.wrongType("envelope", "content-encoding is not a string")
		}
		e.ContentEncoding, err = nullableString(s)
	case "headers":
		switch s.Peek() {
		case '{':
			var raw []byte
			if d.header == nil {
				raw, err = s.Value()
			} else {
				raw, err = s.ObjectText(d.headerMember)
			}
			e.Headers = json.RawMessage(capped(raw))
		case 'n':
			e.Headers, err = nil, s.Literal("null")
		default:
			return d.wrongType("headers", "headers is not a JSON object")
		}
	case "properties":
		d.sawProperties = true
		if s.Peek() != '{' {
			return d.wrongType("properties", "properties is not a JSON object")
		}
		e.Properties = Properties{}
		err = s.Object(d.property)
	default:
		_, err = s.Value()
	}
	return err
}

func (d *envelopeDecoder) headerMember(key []byte, escaped bool) error {
	raw, err := d.s.Value()
	if err == nil {
		d.header.add(key, escaped, raw)
	}
	return err
}

func (d *envelopeDecoder) stringOrNull() bool {
	c := d.s.Peek()
	return c == '"' || c == 'n'
}

// scalar reads a property that should be a string: strings verbatim, null as "", numbers and
// booleans as their JSON text; objects and arrays are wrong.
func (d *envelopeDecoder) scalar(name string, dst *string) error {
	switch d.s.Peek() {
	case '"':
		raw, escaped, err := d.s.RawString()
		if err == nil {
			if escaped {
				*dst = string(pywire.Unescape(nil, raw))
			} else {
				*dst = bytesString(raw)
			}
		}
		return err
	case '{', '[':
		return d.wrongType("properties", name+" is not a string")
	}
	raw, err := d.s.Value()
	if err == nil && string(raw) != "null" {
		*dst = string(raw)
	}
	return err
}

func (d *envelopeDecoder) property(key []byte, escaped bool) error {
	s, p := d.s, &d.e.Properties
	k := keyName(key, escaped)
	switch k {
	case "correlation_id":
		return d.scalar(k, &p.CorrelationID)
	case "reply_to":
		return d.scalar(k, &p.ReplyTo)
	case "MessageGroupId":
		return d.scalar(k, &p.MessageGroupID)
	case "MessageDeduplicationId":
		return d.scalar(k, &p.MessageDeduplicationID)
	case "expiration":
		return d.scalar(k, &p.Expiration)
	case "delivery_tag":
		return d.scalar(k, &p.DeliveryTag)
	case "body_encoding":
		if !d.stringOrNull() {
			return d.wrongType("properties", "body_encoding is not a string")
		}
		var err error
		p.BodyEncoding, err = nullableString(s)
		return err
	case "delivery_mode", "priority", "DelaySeconds", "redelivered":
		// Numbers that are not integers are ignored: SQS uses none of them.
		raw, err := s.Value()
		if k == "redelivered" {
			p.Redelivered = string(raw) == "true"
		} else if n, ok := pywire.ParseInt(raw); ok {
			switch k {
			case "delivery_mode":
				p.DeliveryMode = n
			case "priority":
				p.Priority = n
			default:
				delay := n // a variable of its own, so that only DelaySeconds allocates
				p.DelaySeconds = &delay
			}
		}
		return err
	case "delivery_info":
		switch s.Peek() {
		case '{':
			return s.Object(d.deliveryInfo)
		case 'n':
			return s.Literal("null")
		}
		return d.wrongType("properties", "delivery_info is not a JSON object")
	}
	raw, err := s.Value()
	if err == nil {
		name := k
		if name == "" {
			name = bytesString(key)
			if escaped {
				name = string(pywire.Unescape(nil, key))
			}
		}
		p.Extra = append(p.Extra, Field{Key: name, Value: json.RawMessage(capped(raw))})
	}
	return err
}

func (d *envelopeDecoder) deliveryInfo(key []byte, escaped bool) error {
	switch keyName(key, escaped) {
	case "exchange":
		return d.scalar("exchange", &d.e.Properties.Exchange)
	case "routing_key":
		return d.scalar("routing_key", &d.e.Properties.RoutingKey)
	}
	_, err := d.s.Value()
	return err
}

// nullableString reads a string or null ("").
func nullableString(s *pywire.Scanner) (string, error) {
	if s.Peek() == 'n' {
		return "", s.Literal("null")
	}
	raw, escaped, err := s.RawString()
	if err != nil {
		return "", err
	}
	if escaped {
		return string(pywire.Unescape(nil, raw)), nil
	}
	return bytesString(raw), nil
}

// bytesString is b as a string without a copy: b must never change afterwards. The decoder uses
// it for the parts of the buffer it allocated itself.
func bytesString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// capped is b with no room to grow, so that appending to a decoded Body or Headers copies
// them instead of writing over the rest of the buffer.
func capped(b []byte) []byte { return b[:len(b):len(b)] }

// stringBytes is s as a byte slice without a copy, for reading only.
func stringBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// optionalBase64 returns the decoded body when it is canonical, padded base64 as Kombu checks
// it (with surrounding ASCII spaces ignored) and decodes to UTF-8, else the body itself.
// decoded tells which.
func optionalBase64(body string) (text []byte, decoded bool) {
	candidate := body
	if len(candidate) > 0 && (isPySpace(candidate[0]) || isPySpace(candidate[len(candidate)-1])) {
		candidate = trimPySpace(candidate)
	}
	if len(candidate)%4 != 0 {
		return []byte(body), false
	}
	pad := 0
	if len(candidate) > 0 && candidate[len(candidate)-1] == '=' {
		pad++
		if candidate[len(candidate)-2] == '=' {
			pad++
		}
	}
	out := make([]byte, len(candidate)/4*3)
	// Strict: non-zero padding bits fail Kombu's re-encoding check too.
	n, err := b64.DecodeStrict(out, stringBytes(candidate))
	// The Go decoder skips \r and \n, which Kombu's pattern rejects: then fewer bytes come out.
	if err != nil || n != len(out)-pad || !utf8.Valid(out[:n]) {
		return []byte(body), false
	}
	return out[:n], true
}

func isPySpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\v', '\f':
		return true
	}
	return false
}

func trimPySpace(s string) string {
	for len(s) > 0 && isPySpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isPySpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// keyName returns a constant for the keys the decoder looks for, so that matching them does
// not allocate; other keys give "".
func keyName(key []byte, escaped bool) string {
	if escaped {
		key = pywire.Unescape(nil, key)
	}
	switch string(key) {
	case "body":
		return "body"
	case "content-type":
		return "content-type"
	case "content-encoding":
		return "content-encoding"
	case "headers":
		return "headers"
	case "properties":
		return "properties"
	case "correlation_id":
		return "correlation_id"
	case "reply_to":
		return "reply_to"
	case "delivery_mode":
		return "delivery_mode"
	case "delivery_info":
		return "delivery_info"
	case "priority":
		return "priority"
	case "body_encoding":
		return "body_encoding"
	case "delivery_tag":
		return "delivery_tag"
	case "redelivered":
		return "redelivered"
	case "expiration":
		return "expiration"
	case "MessageGroupId":
		return "MessageGroupId"
	case "MessageDeduplicationId":
		return "MessageDeduplicationId"
	case "DelaySeconds":
		return "DelaySeconds"
	case "exchange":
		return "exchange"
	case "routing_key":
		return "routing_key"
	}
	return ""
}
