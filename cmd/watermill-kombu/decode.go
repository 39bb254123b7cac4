package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
)

// maxDecodeInput bounds what decode reads: an SQS body is at most 1 MiB.
const maxDecodeInput = 4 << 20

func decodeCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("decode", flag.ContinueOnError)
	fs.SetOutput(stderr)
	queue := fs.String("queue", "celery", "queue name to report the message as coming from")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: watermill-kombu decode [--queue NAME] < body\n\nDecodes one SQS message body read on stdin.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	in, err := io.ReadAll(io.LimitReader(stdin, maxDecodeInput+1))
	if err != nil {
		return fmt.Errorf("reading stdin: %w", err)
	}
	if len(in) > maxDecodeInput {
		return fmt.Errorf("input is larger than %d bytes", maxDecodeInput)
	}
	body := strings.TrimSpace(string(in))
	if body == "" {
		return errors.New("empty input: expected an SQS message body on stdin")
	}
	msg, err := kombu.EnvelopeMarshaler{}.Unmarshal(*queue, &types.Message{
		Body:      aws.String(body),
		MessageId: aws.String(""),
	})
	if err != nil {
		return err
	}
	if msg.Metadata.Get(kombu.MetadataRaw) == "true" {
		return errors.New("not a Kombu envelope: expected base64 or JSON of an object with \"properties\"")
	}
	v, err := describe(msg)
	if err != nil {
		return err
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}

// messageView is what decode and tail print for a message.
type messageView struct {
	SQSMessageID    string          `json:"sqs_message_id,omitempty"`
	ReceiveCount    int             `json:"receive_count,omitempty"`
	Raw             bool            `json:"raw,omitempty"`
	DecodeError     string          `json:"decode_error,omitempty"`
	ContentType     string          `json:"content_type,omitempty"`
	ContentEncoding string          `json:"content_encoding,omitempty"`
	Compression     string          `json:"compression,omitempty"`
	Headers         json.RawMessage `json:"headers,omitempty"`
	Properties      map[string]any  `json:"properties,omitempty"`
	Payload         json.RawMessage `json:"payload,omitempty"`
	PayloadText     *string         `json:"payload_text,omitempty"`
	PayloadBase64   string          `json:"payload_base64,omitempty"`
	Task            *taskView       `json:"task,omitempty"`
}

// taskView is a Celery task.
type taskView struct {
	Name     string          `json:"name"`
	ID       string          `json:"id"`
	Protocol int             `json:"protocol"`
	Args     json.RawMessage `json:"args"`
	Kwargs   json.RawMessage `json:"kwargs"`
	Retries  int             `json:"retries"`
	ETA      *time.Time      `json:"eta"`
	Expires  *time.Time      `json:"expires"`
	Group    string          `json:"group,omitempty"`
	ParentID string          `json:"parent_id,omitempty"`
	RootID   string          `json:"root_id,omitempty"`
	Origin   string          `json:"origin,omitempty"`
	Headers  map[string]any  `json:"headers,omitempty"`
}

// describe turns a message received through EnvelopeMarshaler into its printable form.
func describe(msg *message.Message) (*messageView, error) {
	md := msg.Metadata
	v := &messageView{
		SQSMessageID:    md.Get(kombu.MetadataSQSMessageID),
		Raw:             md.Get(kombu.MetadataRaw) == "true",
		DecodeError:     md.Get(kombu.MetadataDecodeError),
		ContentType:     md.Get(kombu.MetadataContentType),
		ContentEncoding: md.Get(kombu.MetadataContentEncoding),
		Compression:     md.Get(kombu.MetadataCompression),
	}
	v.ReceiveCount, _ = strconv.Atoi(md.Get(kombu.MetadataReceiveCount))
	if h := md.Get(kombu.MetadataHeaders); h != "" && json.Valid([]byte(h)) {
		v.Headers = json.RawMessage(h)
	}
	props := map[string]any{}
	for key, name := range map[string]string{
		kombu.MetadataCorrelationID:      "correlation_id",
		kombu.MetadataReplyTo:            "reply_to",
		kombu.MetadataExpiration:         "expiration",
		"kombu_body_encoding":            "body_encoding",
		kombu.MetadataReceivedGroupID:    "MessageGroupId",
		"kombu_message_deduplication_id": "MessageDeduplicationId",
	} {
		if s := md.Get(key); s != "" {
			props[name] = s
		}
	}
	for key, name := range map[string]string{kombu.MetadataPriority: "priority", "kombu_delivery_mode": "delivery_mode"} {
		if n, err := strconv.Atoi(md.Get(key)); err == nil {
			props[name] = n
		}
	}
	if md.Get(kombu.MetadataExchange) != "" || md.Get(kombu.MetadataRoutingKey) != "" {
		props["delivery_info"] = map[string]string{
			"exchange":    md.Get(kombu.MetadataExchange),
			"routing_key": md.Get(kombu.MetadataRoutingKey),
		}
	}
	if md.Get("kombu_redelivered") == "true" {
		props["redelivered"] = true
	}
	if len(props) > 0 {
		v.Properties = props
	}

	payload := []byte(msg.Payload)
	switch {
	case json.Valid(payload) && !v.Raw && v.DecodeError == "":
		v.Payload = json.RawMessage(bytes.TrimSpace(payload))
	case utf8.Valid(payload):
		s := string(payload)
		v.PayloadText = &s
	default:
		v.PayloadBase64 = base64.StdEncoding.EncodeToString(payload)
	}

	if v.Raw || v.DecodeError != "" {
		return v, nil
	}
	task, err := celery.TaskFromMessage(msg)
	switch {
	case errors.Is(err, celery.ErrNotATask):
		return v, nil
	case err != nil:
		return nil, err
	}
	v.Task = &taskView{
		Name: task.Name, ID: task.ID, Protocol: task.Protocol,
		Args: task.RawArgs, Kwargs: task.RawKwargs, Retries: task.Retries,
		ETA: task.ETA, Expires: task.Expires, Group: task.Group,
		ParentID: task.ParentID, RootID: task.RootID, Origin: task.Origin,
		Headers: task.Headers,
	}
	if v.Task.Protocol == 0 {
		v.Task.Protocol = 2
	}
	return v, nil
}
