package kombu

import (
	"bytes"
	"encoding/base64"
	"encoding/json"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// snsNotification is the JSON document SNS delivers to a queue subscribed without raw message
// delivery, wrapping the published message and its attributes.
type snsNotification struct {
	Type              string
	MessageId         string //nolint:revive // SNS's spelling
	TopicArn          string //nolint:revive // SNS's spelling
	Message           *string
	MessageAttributes map[string]struct {
		Type  string
		Value string
	}
}

// unwrapSNSNotification handles a body that decoded as no envelope (env.Raw): when it is an
// SNS notification whose message is a Kombu envelope, env becomes that envelope and the
// returned message carries the notification's message attributes as SQS ones would be.
// Otherwise env and in are returned unchanged, so a consumer of other SNS traffic still gets
// the whole notification. h gets the inner envelope's headers, as env.decode gives them.
func unwrapSNSNotification(env *Envelope, h *headerReader, in *types.Message) *types.Message {
	if !env.Raw || !bytes.Contains(env.Body, []byte(`"Notification"`)) {
		return in
	}
	var n snsNotification
	if err := json.Unmarshal(env.Body, &n); err != nil || n.Type != "Notification" || n.Message == nil || n.TopicArn == "" {
		return in
	}
	var inner Envelope
	var headers headerReader
	if err := inner.decode(*n.Message, &headers); err != nil || inner.Raw {
		return in
	}
	*env, *h = inner, headers
	out := *in
	out.Body = n.Message
	out.MessageAttributes = nil
	for name, a := range n.MessageAttributes {
		if out.MessageAttributes == nil {
			out.MessageAttributes = map[string]types.MessageAttributeValue{}
		}
		v := types.MessageAttributeValue{DataType: aws.String(a.Type)}
		if a.Type == "Binary" {
			b, err := base64.StdEncoding.DecodeString(a.Value)
			if err != nil {
				continue
			}
			v.BinaryValue = b
		} else {
			v.StringValue = aws.String(a.Value)
		}
		out.MessageAttributes[name] = v
	}
	return &out
}
