package kombu

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testQueueARN = "arn:aws:sqs:us-east-1:123456789012:q"
	testTopicA   = "arn:aws:sns:us-east-1:123456789012:a"
	testTopicB   = "arn:aws:sns:us-east-1:123456789012:b"
)

func policyStatements(t *testing.T, policy string) []map[string]any {
	t.Helper()
	var doc struct {
		Version   string
		Statement []map[string]any
	}
	require.NoError(t, json.Unmarshal([]byte(policy), &doc), policy)
	require.Equal(t, "2012-10-17", doc.Version)
	return doc.Statement
}

func TestSNSQueuePolicy(t *testing.T) {
	// A fresh policy: Kombu's statement.
	p, changed := withTopicAllowed("", testQueueARN, testTopicA)
	require.True(t, changed)
	st := policyStatements(t, p)
	require.Len(t, st, 1)
	assert.Equal(t, "KombuManaged", st[0]["Sid"])
	assert.Equal(t, "SQS:SendMessage", st[0]["Action"])
	assert.Equal(t, testQueueARN, st[0]["Resource"])
	assert.Equal(t, map[string]any{"Service": "sns.amazonaws.com"}, st[0]["Principal"])
	assert.Equal(t, map[string]any{"ArnLike": map[string]any{"aws:SourceArn": testTopicA}}, st[0]["Condition"])

	// Idempotent: the same topic again changes nothing, so no SetQueueAttributes.
	_, changed = withTopicAllowed(p, testQueueARN, testTopicA)
	require.False(t, changed)

	// A second exchange: both topics allowed (Kombu would keep only the last one).
	p2, changed := withTopicAllowed(p, testQueueARN, testTopicB)
	require.True(t, changed)
	st = policyStatements(t, p2)
	require.Len(t, st, 1)
	assert.Equal(t, map[string]any{"ArnLike": map[string]any{"aws:SourceArn": []any{testTopicA, testTopicB}}}, st[0]["Condition"])
	_, changed = withTopicAllowed(p2, testQueueARN, testTopicA)
	require.False(t, changed)

	// Other statements are kept; a single statement object is read as a list.
	other := `{"Version":"2012-10-17","Statement":{"Sid":"Other","Effect":"Deny","Principal":"*","Action":"SQS:*","Resource":"` + testQueueARN + `"}}`
	p3, changed := withTopicAllowed(other, testQueueARN, testTopicA)
	require.True(t, changed)
	st = policyStatements(t, p3)
	require.Len(t, st, 2)
	assert.Equal(t, "Other", st[0]["Sid"])
	assert.Equal(t, "KombuManaged", st[1]["Sid"])

	// A malformed policy is replaced, as Kombu does.
	p4, changed := withTopicAllowed("{not json", testQueueARN, testTopicA)
	require.True(t, changed)
	require.Len(t, policyStatements(t, p4), 1)
}

func TestSNSNotificationUnwrap(t *testing.T) {
	inner := EnvelopeMarshaler{RawEnvelope: true}
	sent := newTestMessage("id-1", `{"x":1}`)
	sent.Metadata.Set("origin", "gen1@host")
	out, err := inner.Marshal(Destination{Exchange: "ex"}, sent)
	require.NoError(t, err)
	notification, err := json.Marshal(map[string]any{
		"Type": "Notification", "MessageId": "sns-id", "TopicArn": testTopicA, "Message": out.Body,
		"Timestamp": "2026-01-01T00:00:00.000Z", "SignatureVersion": "1",
		"MessageAttributes": map[string]any{
			"s": map[string]string{"Type": "String", "Value": "v"},
			"b": map[string]string{"Type": "Binary", "Value": "AAE="},
		},
	})
	require.NoError(t, err)
	msg, err := EnvelopeMarshaler{}.Unmarshal("q", &types.Message{MessageId: aws.String("sqs-id"), Body: aws.String(string(notification)), ReceiptHandle: aws.String("rh")})
	require.NoError(t, err)
	assert.Equal(t, "id-1", msg.UUID)
	assert.Equal(t, `{"x":1}`, string(msg.Payload))
	assert.Equal(t, "ex", msg.Metadata.Get(MetadataExchange))
	assert.Equal(t, "gen1@host", msg.Metadata.Get("origin"), "the inner envelope's headers")
	assert.Equal(t, `{"origin": "gen1@host"}`, msg.Metadata.Get(MetadataHeaders))
	assert.Equal(t, "v", msg.Metadata.Get(MetadataAttributePrefix+"s"))
	assert.Equal(t, "\x00\x01", msg.Metadata.Get(MetadataAttributePrefix+"b"))
	assert.Empty(t, msg.Metadata.Get(MetadataRaw))

	// A notification that does not carry a Kombu envelope stays whole.
	other, err := json.Marshal(map[string]any{"Type": "Notification", "TopicArn": testTopicA, "Message": "hello"})
	require.NoError(t, err)
	msg, err = EnvelopeMarshaler{}.Unmarshal("q", &types.Message{MessageId: aws.String("sqs-id"), Body: aws.String(string(other))})
	require.NoError(t, err)
	assert.Equal(t, string(other), string(msg.Payload))
	assert.Equal(t, "true", msg.Metadata.Get(MetadataRaw))
}

func TestSNSErrorClass(t *testing.T) {
	for code, want := range map[string]error{
		"Throttled": ErrConnection, "KMSThrottling": ErrConnection, "InternalError": ErrConnection,
		"NotFound": ErrChannel, "AuthorizationError": ErrChannel, "InvalidParameter": ErrChannel,
		"KMSAccessDenied": ErrChannel,
	} {
		err := exchangeError("publish", "events", "", &smithy.GenericAPIError{Code: code, Message: "m", Fault: smithy.FaultClient})
		assert.Equal(t, want, errorClass(err), code)
		assert.ErrorIs(t, err, want, code)
		assert.Contains(t, err.Error(), `publish (exchange "events")`, code)
		var e *Error
		require.True(t, errors.As(err, &e), code)
		assert.Equal(t, "events", e.Exchange)
	}
	err := &PublishError{Exchange: "events", Failed: []FailedMessage{{MessageUUID: "u", Code: "InvalidParameter", SenderFault: true}}}
	assert.ErrorIs(t, err, ErrChannel)
	assert.Contains(t, err.Error(), `SNS rejected 1 message(s) for exchange "events": u (InvalidParameter`)
}

func TestSNSConfigValidate(t *testing.T) {
	base := Config{SupportsFanout: true, Exchanges: map[string]Exchange{"news": {Type: ExchangeFanout}}}
	require.NoError(t, base.Validate(), "an SNS fanout exchange needs no bindings")
	noSNS := base
	noSNS.SupportsFanout = false
	require.ErrorContains(t, noSNS.Validate(), "Exchanges[news].Bindings")

	cfg := Config{
		SupportsFanout: true,
		Exchanges: map[string]Exchange{
			"a":      {Type: ExchangeFanout, TopicARN: "arn:aws:sqs:us-east-1:1:a"},
			"b.fifo": {Type: ExchangeFanout, TopicARN: "arn:aws:sns:us-east-1:1:b"},
			"c":      {Type: ExchangeFanout, TopicARN: "arn:aws:sns:us-east-1:1:c", AccessKeyID: "AKID"},
			"d":      {Type: ExchangeDirect, TopicARN: "arn:aws:sns:us-east-1:1:d", Bindings: []Binding{{Queue: "q"}}},
			"e":      {Type: ExchangeFanout, AccessKeyID: "AKID", SecretAccessKey: "s"},
		},
		SNSEndpointURL: "localhost:4566",
	}
	err := cfg.Validate()
	require.ErrorIs(t, err, ErrInvalidConfig)
	for _, field := range []string{"Exchanges[a].TopicARN", "Exchanges[b.fifo].TopicARN", "Exchanges[c].AccessKeyID/SecretAccessKey",
		"Exchanges[d].TopicARN", "Exchanges[e].AccessKeyID", "SNSEndpointURL"} {
		assert.Contains(t, err.Error(), field)
	}

	cfg = Config{SupportsFanout: true, Exchanges: map[string]Exchange{
		"a": {Type: ExchangeFanout, TopicARN: "arn:aws:sns:us-east-1:1:a", AccessKeyID: "AKID", SecretAccessKey: "very-secret", SessionToken: "token-secret"},
	}}
	require.NoError(t, cfg.Validate())
	for _, s := range []string{fmt.Sprint(cfg.Exchanges), fmt.Sprintf("%+v", cfg.Exchanges), fmt.Sprintf("%#v", cfg.Exchanges), cfg.String()} {
		assert.NotContains(t, s, "very-secret")
		assert.NotContains(t, s, "token-secret")
	}
	assert.Contains(t, cfg.String(), "SupportsFanout:true")
}

func TestSNSTransportOptions(t *testing.T) {
	opts, err := ParseTransportOptions(map[string]any{
		"supports_fanout": true,
		"predefined_exchanges": map[string]any{
			"exchange-1":      map[string]any{"arn": "arn:aws:sns:us-east-1:123456789012:exchange-1", "access_key_id": "a", "secret_access_key": "b"},
			"exchange-2.fifo": map[string]any{"arn": "arn:aws:sns:eu-west-1:123456789012:exchange-2.fifo", "access_key_id": "c", "secret_access_key": "d", "session_token": "t", "region": "eu-west-1"},
		},
	})
	require.NoError(t, err)
	assert.True(t, opts.SupportsFanout)
	assert.True(t, opts.DisableTopicCreation, "with predefined_exchanges Kombu creates no topic")
	assert.Equal(t, map[string]Exchange{
		"exchange-1":      {Type: ExchangeFanout, TopicARN: "arn:aws:sns:us-east-1:123456789012:exchange-1", AccessKeyID: "a", SecretAccessKey: "b"},
		"exchange-2.fifo": {Type: ExchangeFanout, TopicARN: "arn:aws:sns:eu-west-1:123456789012:exchange-2.fifo", AccessKeyID: "c", SecretAccessKey: "d", SessionToken: "t"},
	}, opts.Exchanges)
	assert.NotContains(t, opts.NoEffect, "supports_fanout")

	// As in Kombu, predefined_exchanges does nothing without supports_fanout.
	opts, err = ParseTransportOptions(map[string]any{
		"predefined_exchanges": map[string]any{"e": map[string]any{"arn": "arn:aws:sns:us-east-1:1:e"}},
	})
	require.NoError(t, err)
	assert.Empty(t, opts.Exchanges)
	assert.False(t, opts.DisableTopicCreation)
	assert.Contains(t, opts.NoEffect, "predefined_exchanges")

	_, err = ParseTransportOptions(map[string]any{
		"supports_fanout": true,
		"predefined_exchanges": map[string]any{
			"e":      map[string]any{"arn": "arn:aws:sqs:us-east-1:1:e", "secret_access_key": "hidden-secret", "url": "x"},
			"f.fifo": map[string]any{"arn": "arn:aws:sns:us-east-1:1:f"},
			"g":      map[string]any{"arn": "arn:aws:sns:us-east-1:1:g", "region": "eu-west-1"},
			"h":      map[string]any{},
		},
	})
	require.ErrorIs(t, err, ErrInvalidConfig)
	for _, key := range []string{`predefined_exchanges["e"]["arn"]`, `predefined_exchanges["e"]["url"]`,
		`predefined_exchanges["e"]["access_key_id"] and ["secret_access_key"] must be given together`, `predefined_exchanges["f.fifo"]["arn"]`,
		`predefined_exchanges["g"]["region"]`, `predefined_exchanges["h"]["arn"]`} {
		assert.Contains(t, err.Error(), key)
	}
	assert.NotContains(t, err.Error(), "hidden-secret")

	_, err = ParseTransportOptions(map[string]any{"supports_fanout": "maybe"})
	require.ErrorContains(t, err, "supports_fanout")
}

func newTestMessage(uuid, payload string) *message.Message {
	return message.NewMessage(uuid, []byte(payload))
}

func TestSNSSubscriptionExists(t *testing.T) {
	// AWS's answer to a Subscribe of a queue subscribed already with other attributes (by
	// hand, without raw delivery): the existing subscription is looked up and kept.
	exists := &smithy.GenericAPIError{Code: "InvalidParameter", Message: "Invalid parameter: Attributes Reason: Subscription already exists with different attributes"}
	assert.True(t, isSubscriptionExists(fmt.Errorf("subscribing: %w", exists)))
	assert.False(t, isSubscriptionExists(&smithy.GenericAPIError{Code: "InvalidParameter", Message: "Invalid parameter: Endpoint"}))
	assert.False(t, isSubscriptionExists(&smithy.GenericAPIError{Code: "AuthorizationError", Message: "already exists"}))
	assert.True(t, isTopicNotFound(&smithy.GenericAPIError{Code: "NotFound"}))
	assert.False(t, isTopicNotFound(errors.New("NotFound")))
}
