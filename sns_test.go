package kombu_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// motoConfig talks to the moto server (SQS and SNS on one endpoint) with SNS fanout on.
func motoConfig(endpoint string, exchanges map[string]kombu.Exchange) kombu.Config {
	cfg := testConfig(endpoint)
	cfg.SupportsFanout = true
	cfg.Exchanges = exchanges
	return cfg
}

func fanoutExchange(queues ...string) kombu.Exchange {
	ex := kombu.Exchange{Type: kombu.ExchangeFanout}
	for _, q := range queues {
		ex.Bindings = append(ex.Bindings, kombu.Binding{Queue: q})
	}
	return ex
}

// receiveMessages reads n messages from ch, acking each.
func receiveMessages(t *testing.T, ch <-chan *message.Message, n int, timeout time.Duration) []*message.Message {
	t.Helper()
	var got []*message.Message
	deadline := time.After(timeout)
	for len(got) < n {
		select {
		case msg, ok := <-ch:
			if !ok {
				t.Fatalf("subscription closed after %d of %d messages", len(got), n)
			}
			got = append(got, msg)
			msg.Ack()
		case <-deadline:
			t.Fatalf("received %d of %d messages in %s", len(got), n, timeout)
		}
	}
	return got
}

func payloads(msgs []*message.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Payload)
	}
	return out
}

// TestSNSFanoutGoToGo publishes to an SNS fanout exchange, one message then a batch, and
// checks that both bound queues get every message once, with the exchange in delivery_info,
// and what it cost: one SNS request per publish of one message or of up to 10, no SQS send.
func TestSNSFanoutGoToGo(t *testing.T) {
	endpoint := testenv.MotoEndpoint(t)
	exchange := testenv.UniqueName("fanout-go")
	q1, q2 := testenv.UniqueName("fanout-go-a"), testenv.UniqueName("fanout-go-b")
	cfg := motoConfig(endpoint, map[string]kombu.Exchange{exchange: fanoutExchange(q1, q2)})

	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, nil)
	require.NoError(t, err)
	defer pub.Close()
	sub, err := kombu.NewSubscriber(quickSubscriberConfig(cfg), nil)
	require.NoError(t, err)
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch1, err := sub.Subscribe(ctx, q1)
	require.NoError(t, err)
	ch2, err := sub.Subscribe(ctx, q2)
	require.NoError(t, err)
	// The first publish subscribes the bound queues (once; the Subscriber did it already).
	warmup := message.NewMessage(watermill.NewUUID(), []byte(`{"n":-1}`))
	require.NoError(t, pub.Publish(exchange, warmup))
	setup := pub.Stats()

	first := message.NewMessage(watermill.NewUUID(), []byte(`{"n":0}`))
	first.Metadata.Set(kombu.MetadataAttributePrefix+"origin", "go")
	require.NoError(t, pub.Publish(exchange, first))
	afterOne := pub.Stats()
	var batch []*message.Message
	for i := 1; i <= 15; i++ {
		batch = append(batch, message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprintf(`{"n":%d}`, i))))
	}
	require.NoError(t, pub.Publish(exchange, batch...))
	afterBatch := pub.Stats()

	for _, ch := range []<-chan *message.Message{ch1, ch2} {
		msgs := receiveMessages(t, ch, 17, 30*time.Second)
		seen := map[string]bool{}
		for _, p := range payloads(msgs) {
			seen[p] = true
		}
		require.Len(t, seen, 17, "every message once")
		for _, m := range msgs {
			require.Equal(t, exchange, m.Metadata.Get(kombu.MetadataExchange))
			require.Empty(t, m.Metadata.Get(kombu.MetadataDecodeError))
			if string(m.Payload) == `{"n":0}` {
				require.Equal(t, first.UUID, m.UUID)
				require.Equal(t, "go", m.Metadata.Get(kombu.MetadataAttributePrefix+"origin"), "message attributes pass through SNS")
			}
		}
	}

	one := diffCounts(setup, afterOne)
	many := diffCounts(afterOne, afterBatch)
	t.Logf("first publish (subscribes the bound queues): %+v; publish of 1: %+v; publish of 15: %+v", setup, one, many)
	require.Equal(t, kombu.RequestCounts{SNSPublish: 1}, one, "one message: one SNS Publish, nothing else")
	require.Equal(t, kombu.RequestCounts{SNSPublish: 2}, many, "15 messages: two PublishBatch calls, nothing else")
	require.Zero(t, afterBatch.Send, "no SQS send")
}

func diffCounts(a, b kombu.RequestCounts) kombu.RequestCounts {
	return kombu.RequestCounts{
		Receive: b.Receive - a.Receive, Delete: b.Delete - a.Delete, ChangeVisibility: b.ChangeVisibility - a.ChangeVisibility,
		Send: b.Send - a.Send, Other: b.Other - a.Other, SNSPublish: b.SNSPublish - a.SNSPublish, SNSOther: b.SNSOther - a.SNSOther,
	}
}

// TestSNSFanoutPublisherSubscribesBoundQueues checks that the bindings a Publisher is told
// about are subscribed before its first publish, so a queue nobody consumes yet keeps the
// messages, and that binding again (a second Publisher) changes nothing: one subscription per
// queue, one policy statement.
func TestSNSFanoutPublisherSubscribesBoundQueues(t *testing.T) {
	endpoint := testenv.MotoEndpoint(t)
	exchange := testenv.UniqueName("fanout-pub")
	q := testenv.UniqueName("fanout-pub-q")
	cfg := motoConfig(endpoint, map[string]kombu.Exchange{exchange: fanoutExchange(q)})
	for i := 0; i < 2; i++ {
		pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, nil)
		require.NoError(t, err)
		require.NoError(t, pub.Publish(exchange, message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprint("m", i)))))
		require.NoError(t, pub.Close())
	}

	snsClient := testenv.SNSClient(t, endpoint)
	sqsClient := testenv.SQSClient(t, endpoint)
	topicARN := topicARNOf(t, snsClient, exchange)
	subs, err := snsClient.ListSubscriptionsByTopic(context.Background(), &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(topicARN)})
	require.NoError(t, err)
	require.Len(t, subs.Subscriptions, 1)
	attrs, err := snsClient.GetSubscriptionAttributes(context.Background(), &sns.GetSubscriptionAttributesInput{SubscriptionArn: subs.Subscriptions[0].SubscriptionArn})
	require.NoError(t, err)
	require.Equal(t, "true", attrs.Attributes["RawMessageDelivery"])

	url, err := sqsClient.GetQueueUrl(context.Background(), &sqs.GetQueueUrlInput{QueueName: aws.String(q)})
	require.NoError(t, err)
	qa, err := sqsClient.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: url.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNamePolicy},
	})
	require.NoError(t, err)
	var policy struct {
		Statement []struct {
			Sid       string
			Condition map[string]map[string]any
		}
	}
	require.NoError(t, json.Unmarshal([]byte(qa.Attributes["Policy"]), &policy), qa.Attributes["Policy"])
	require.Len(t, policy.Statement, 1)
	require.Equal(t, "KombuManaged", policy.Statement[0].Sid)
	require.Equal(t, topicARN, policy.Statement[0].Condition["ArnLike"]["aws:SourceArn"])

	sub, err := kombu.NewSubscriber(quickSubscriberConfig(testConfig(endpoint)), nil)
	require.NoError(t, err)
	defer sub.Close()
	ch, err := sub.Subscribe(context.Background(), q)
	require.NoError(t, err)
	got := payloads(receiveMessages(t, ch, 2, 30*time.Second))
	sort.Strings(got)
	require.Equal(t, []string{"m0", "m1"}, got)
}

// topicARNOf finds the topic Kombu names after an exchange.
func topicARNOf(t *testing.T, client *sns.Client, exchange string) string {
	t.Helper()
	name := kombu.CanonicalQueueName("", exchange)
	p := sns.NewListTopicsPaginator(client, &sns.ListTopicsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		require.NoError(t, err)
		for _, topic := range page.Topics {
			if arn := aws.ToString(topic.TopicArn); strings.HasSuffix(arn, ":"+name) {
				return arn
			}
		}
	}
	t.Fatalf("no SNS topic %q", name)
	return ""
}

// TestSNSFanoutPolicyKeepsEveryTopic: two Publishers of one process bind the same queue to two
// fanout exchanges at the same moment (each on its first publish); the queue's policy must
// then let both topics send to it, not only the one whose write came last.
func TestSNSFanoutPolicyKeepsEveryTopic(t *testing.T) {
	endpoint := testenv.MotoEndpoint(t)
	snsClient := testenv.SNSClient(t, endpoint)
	sqsClient := testenv.SQSClient(t, endpoint)
	for round := 0; round < 3; round++ {
		q := testenv.UniqueName("policy-q")
		exchanges := []string{testenv.UniqueName("policy-a"), testenv.UniqueName("policy-b")}
		cfg := motoConfig(endpoint, map[string]kombu.Exchange{exchanges[0]: fanoutExchange(q), exchanges[1]: fanoutExchange(q)})
		errs := make(chan error, len(exchanges))
		for _, ex := range exchanges {
			pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, nil)
			require.NoError(t, err)
			defer pub.Close()
			go func() { errs <- pub.Publish(ex, message.NewMessage(watermill.NewUUID(), []byte("m"))) }()
		}
		for range exchanges {
			require.NoError(t, <-errs)
		}
		url, err := sqsClient.GetQueueUrl(context.Background(), &sqs.GetQueueUrlInput{QueueName: aws.String(q)})
		require.NoError(t, err)
		qa, err := sqsClient.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
			QueueUrl: url.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNamePolicy},
		})
		require.NoError(t, err)
		for _, ex := range exchanges {
			require.Contains(t, qa.Attributes["Policy"], topicARNOf(t, snsClient, ex), "round %d: the policy lost a topic", round)
		}
	}
}
