package kombu_test

import (
	"context"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// TestSNSPredefinedExchangeCredentials: two predefined exchanges (Exchange.TopicARN, Kombu's
// predefined_exchanges) with keys of their own, on topics that exist already. Through a proxy that records which key signed each request, every
// SNS request for a topic is signed with that exchange's key and every SQS request with the
// Config's; no topic is created and stale-subscription cleanup (ListSubscriptionsByTopic) is
// skipped, as in Kombu.
func TestSNSPredefinedExchangeCredentials(t *testing.T) {
	endpoint := testenv.MotoEndpoint(t)
	raw := testenv.SNSClient(t, endpoint)
	ctx := context.Background()
	ex1, ex2 := testenv.UniqueName("predef-ex-one"), testenv.UniqueName("predef-ex-two")
	topic := func(name string) string {
		out, err := raw.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name)})
		require.NoError(t, err)
		return aws.ToString(out.TopicArn)
	}
	// The topics are not named after the exchanges: only the ARNs link them.
	arn1, arn2 := topic(testenv.UniqueName("predef-topic-one")), topic(testenv.UniqueName("predef-topic-two"))
	q1, q2 := testenv.UniqueName("predef-q-one"), testenv.UniqueName("predef-q-two")
	proxy := newRecordingProxy(t, endpoint)

	const (
		defaultKey, defaultSecret = "AKIDSNSDEFAULT", "sns-default-secret"
		key1, secret1             = "AKIDEXCHANGEONE", "exchange-one-secret"
		key2, secret2, token2     = "AKIDEXCHANGETWO", "exchange-two-secret", "exchange-two-token"
	)
	cfg := kombu.Config{
		Region: "us-east-1", EndpointURL: proxy.URL, AccessKeyID: defaultKey, SecretAccessKey: defaultSecret,
		SupportsFanout: true,
		Exchanges: map[string]kombu.Exchange{
			ex1: {Type: kombu.ExchangeFanout, Bindings: []kombu.Binding{{Queue: q1}}, TopicARN: arn1, AccessKeyID: key1, SecretAccessKey: secret1},
			ex2: {Type: kombu.ExchangeFanout, Bindings: []kombu.Binding{{Queue: q2}}, TopicARN: arn2, AccessKeyID: key2, SecretAccessKey: secret2, SessionToken: token2},
		},
	}
	sub, err := kombu.NewSubscriber(quickSubscriberConfig(cfg), nil)
	require.NoError(t, err)
	defer sub.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch1, err := sub.Subscribe(sctx, q1)
	require.NoError(t, err)
	ch2, err := sub.Subscribe(sctx, q2)
	require.NoError(t, err)
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, nil)
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.Publish(ex1, message.NewMessage(watermill.NewUUID(), []byte("one"))))
	require.NoError(t, pub.Publish(ex2, message.NewMessage(watermill.NewUUID(), []byte("two-a")), message.NewMessage(watermill.NewUUID(), []byte("two-b"))))
	require.Equal(t, []string{"one"}, receiveAcked(t, ch1, 1, 30*time.Second))
	got := receiveAcked(t, ch2, 2, 30*time.Second)
	sort.Strings(got)
	require.Equal(t, []string{"two-a", "two-b"}, got)
	cancel()
	require.NoError(t, sub.Close())

	wantKey := map[string]string{arn1: key1, arn2: key2}
	snsOps := map[string]map[string]int{} // topic -> op -> count
	for _, r := range proxy.requests() {
		if r.Op != "GetQueueUrl" { // the queues are looked up, then created
			require.Equal(t, http.StatusOK, r.Status, "%s failed: %s", r.Op, r.Response)
		}
		if r.Form == nil { // SQS (JSON protocol)
			require.Equal(t, defaultKey, r.AccessKey, "SQS %s", r.Op)
			continue
		}
		topicARN := r.Form.Get("TopicArn")
		require.NotEmpty(t, topicARN, "SNS %s without a topic: %v", r.Op, r.Form)
		require.Equal(t, wantKey[topicARN], r.AccessKey, "SNS %s on %s", r.Op, topicARN)
		if snsOps[topicARN] == nil {
			snsOps[topicARN] = map[string]int{}
		}
		snsOps[topicARN][r.Op]++
	}
	t.Logf("SNS requests by topic: %v", snsOps)
	// One (idempotent) Subscribe by the Subscriber and one by the Publisher, which subscribes
	// the queues it is told are bound before its first publish.
	require.Equal(t, map[string]int{"Subscribe": 2, "Publish": 1}, snsOps[arn1])
	require.Equal(t, map[string]int{"Subscribe": 2, "PublishBatch": 1}, snsOps[arn2])
}
