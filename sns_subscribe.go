package kombu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

// kombuPolicySid is the Sid of the queue policy statement Kombu manages.
const kombuPolicySid = "KombuManaged"

// bindQueues subscribes a queue to every SNS fanout exchange that Config.Exchanges binds it to.
func (f *snsFanout) bindQueues(ctx context.Context, queue string) error {
	for _, name := range sortedKeys(f.cfg.Exchanges) {
		if !f.cfg.snsExchange(name) {
			continue
		}
		for _, b := range f.cfg.Exchanges[name].Bindings {
			if b.Queue == queue {
				if err := f.bind(ctx, name, queue); err != nil {
					return err
				}
				break
			}
		}
	}
	return nil
}

// bindExchange subscribes every queue Config.Exchanges binds to an SNS fanout exchange.
func (f *snsFanout) bindExchange(ctx context.Context, exchange string) error {
	for _, b := range f.cfg.Exchanges[exchange].Bindings {
		if err := f.bind(ctx, exchange, b.Queue); err != nil {
			return err
		}
	}
	return nil
}

// bind subscribes a queue to the topic of an exchange, once: the queue (created when allowed)
// gets a policy statement that lets the topic send to it, then an SQS subscription with raw
// message delivery. Both steps are idempotent, so a queue Kombu subscribed already costs two
// requests that change nothing. An existing subscription without raw delivery (set up by
// hand) is kept: EnvelopeMarshaler unwraps SNS notifications.
func (f *snsFanout) bind(ctx context.Context, exchange, queue string) error {
	_, err := f.subs.get(ctx, exchange+"\x00"+queue, func(ctx context.Context) (string, error) {
		ref, err := f.topic(ctx, exchange)
		if err != nil {
			return "", err
		}
		f.cleanup(ctx, exchange, ref)
		arn, err := f.subscribe(ctx, exchange, queue, ref)
		if err != nil {
			return "", exchangeError("subscribe queue", exchange, queue, err)
		}
		return arn, nil
	})
	return err
}

func (f *snsFanout) subscribe(ctx context.Context, exchange, queueName string, ref topicRef) (string, error) {
	q, err := f.conn.resolver.resolve(ctx, queueName)
	if err != nil {
		return "", err
	}
	if q.fifo != ref.fifo {
		kind := map[bool]string{true: "a FIFO", false: "a standard"}
		return "", channelError("subscribe queue", queueName, "", fmt.Errorf(
			"%s topic cannot deliver to %s queue: a .fifo exchange needs .fifo queues, and only it", kind[ref.fifo], kind[q.fifo]))
	}
	queueARN, err := f.allowTopic(ctx, q, ref.arn)
	if err != nil {
		return "", err
	}
	out, err := ref.client.Subscribe(ctx, &sns.SubscribeInput{
		TopicArn:              aws.String(ref.arn),
		Protocol:              aws.String("sqs"),
		Endpoint:              aws.String(queueARN),
		Attributes:            map[string]string{"RawMessageDelivery": "true"},
		ReturnSubscriptionArn: true,
	})
	if err == nil {
		f.logger.Info("Queue subscribed to the SNS topic of a fanout exchange", watermill.LogFields{
			"exchange": exchange, "queue": queueName, "subscription_arn": aws.ToString(out.SubscriptionArn)})
		return aws.ToString(out.SubscriptionArn), nil
	}
	if !isSubscriptionExists(err) {
		return "", fmt.Errorf("subscribing queue %s to topic %s: %w", queueARN, ref.arn, err)
	}
	// Subscribed already, with other attributes: without raw delivery, most likely.
	arn, ferr := f.findSubscription(ctx, ref, queueARN)
	if ferr != nil || arn == "" {
		return "", fmt.Errorf("subscribing queue %s to topic %s: %w", queueARN, ref.arn, err)
	}
	f.logger.Info("Queue is subscribed to the SNS topic with other attributes (no raw message delivery?); "+
		"keeping that subscription, SNS notifications are unwrapped when received", watermill.LogFields{
		"exchange": exchange, "queue": queueName, "subscription_arn": arn})
	return arn, nil
}

// isSubscriptionExists reports SNS's answer to a Subscribe whose topic and endpoint are
// subscribed already with other attributes.
func isSubscriptionExists(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "InvalidParameter" &&
		strings.Contains(strings.ToLower(apiErr.ErrorMessage()), "already exists")
}

func (f *snsFanout) findSubscription(ctx context.Context, ref topicRef, queueARN string) (string, error) {
	p := sns.NewListSubscriptionsByTopicPaginator(ref.client, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(ref.arn)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", err
		}
		for _, s := range page.Subscriptions {
			if strings.EqualFold(aws.ToString(s.Protocol), "sqs") && aws.ToString(s.Endpoint) == queueARN {
				return aws.ToString(s.SubscriptionArn), nil
			}
		}
	}
	return "", nil
}

// allowTopic makes the queue's policy let the topic send to it and returns the queue's ARN.
// It reads the ARN and the policy in one GetQueueAttributes, and sets the policy only when the
// statement Kombu manages (Sid KombuManaged) does not allow the topic yet. Kombu's statement
// names one topic, the last one bound; here it names every topic bound, so a queue bound to
// two fanout exchanges receives from both. Other statements are kept as they are.
func (f *snsFanout) allowTopic(ctx context.Context, q *queue, topicARN string) (string, error) {
	mu := queuePolicyLock(q.url)
	mu.Lock() // one read-modify-write of this queue's policy at a time in the process
	defer mu.Unlock()
	out, err := q.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(q.url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn, sqstypes.QueueAttributeNamePolicy},
	})
	if err != nil {
		return "", classify("get queue attributes", q.name, "", err)
	}
	queueARN := out.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	if queueARN == "" {
		return "", channelError("get queue attributes", q.name, "", errors.New("SQS returned no QueueArn"))
	}
	policy, changed := withTopicAllowed(out.Attributes[string(sqstypes.QueueAttributeNamePolicy)], queueARN, topicARN)
	if !changed {
		return queueARN, nil
	}
	_, err = q.client.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
		QueueUrl:   aws.String(q.url),
		Attributes: map[string]string{string(sqstypes.QueueAttributeNamePolicy): policy},
	})
	if err != nil {
		return "", classify("set queue policy", q.name, "", err)
	}
	return queueARN, nil
}

// queuePolicyLocks serialise the read-modify-writes of each queue's policy across every
// Publisher and Subscriber of the process: two of them binding one queue to two topics at
// once would otherwise each write back the policy they read, and the last write would drop
// the other topic.
var queuePolicyLocks sync.Map // queue URL -> *sync.Mutex

func queuePolicyLock(queueURL string) *sync.Mutex {
	mu, _ := queuePolicyLocks.LoadOrStore(queueURL, new(sync.Mutex))
	return mu.(*sync.Mutex)
}

// withTopicAllowed returns the queue policy with the KombuManaged statement allowing topicARN
// to send to queueARN, and whether that changed anything. A policy that is not a JSON object
// is replaced, as Kombu does.
func withTopicAllowed(policy, queueARN, topicARN string) (string, bool) {
	doc := map[string]any{}
	if policy != "" {
		if err := json.Unmarshal([]byte(policy), &doc); err != nil || doc == nil {
			doc = map[string]any{}
		}
	}
	if _, ok := doc["Version"]; !ok {
		doc["Version"] = "2012-10-17"
	}
	var statements []any
	switch s := doc["Statement"].(type) {
	case []any:
		statements = s
	case map[string]any:
		statements = []any{s}
	}
	topics := []string{topicARN}
	index := -1
	for i, s := range statements {
		stmt, ok := s.(map[string]any)
		if !ok || stmt["Sid"] != kombuPolicySid {
			continue
		}
		index = i
		if stmt["Resource"] != queueARN {
			break
		}
		var existing []string
		if cond, ok := stmt["Condition"].(map[string]any); ok {
			if like, ok := cond["ArnLike"].(map[string]any); ok {
				switch v := like["aws:SourceArn"].(type) {
				case string:
					existing = []string{v}
				case []any:
					for _, a := range v {
						if s, ok := a.(string); ok {
							existing = append(existing, s)
						}
					}
				}
			}
		}
		for _, a := range existing {
			if a == topicARN {
				return policy, false
			}
		}
		topics = append(existing, topicARN)
		break
	}
	var source any = topics[0]
	if len(topics) > 1 {
		source = topics
	}
	stmt := map[string]any{
		"Sid":       kombuPolicySid,
		"Effect":    "Allow",
		"Principal": map[string]any{"Service": "sns.amazonaws.com"},
		"Action":    "SQS:SendMessage",
		"Resource":  queueARN,
		"Condition": map[string]any{"ArnLike": map[string]any{"aws:SourceArn": source}},
	}
	if index >= 0 {
		statements[index] = stmt
	} else {
		statements = append(statements, stmt)
	}
	doc["Statement"] = statements
	b, err := json.Marshal(doc)
	if err != nil {
		return policy, false
	}
	return string(b), true
}

// cleanup removes, once per exchange, the topic's SQS subscriptions whose queue was deleted,
// as Kombu does when a queue is bound; failures are logged only. Topics this package does not
// manage (TopicARN, DisableTopicCreation: Kombu's predefined exchanges) are left alone, and so
// are subscriptions of queues in another region, which the SQS client cannot see.
func (f *snsFanout) cleanup(ctx context.Context, exchange string, ref topicRef) {
	if !f.managed(exchange) {
		return
	}
	_, _ = f.cleaned.get(ctx, exchange, func(ctx context.Context) (struct{}, error) {
		region := f.conn.clients.base.Region
		p := sns.NewListSubscriptionsByTopicPaginator(ref.client, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(ref.arn)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				f.logger.Info("Could not list the subscriptions of an SNS topic to remove stale ones", watermill.LogFields{
					"exchange": exchange, "topic_arn": ref.arn, "error": err.Error()})
				return struct{}{}, nil
			}
			for _, s := range page.Subscriptions {
				parts := strings.Split(aws.ToString(s.Endpoint), ":")
				if !strings.EqualFold(aws.ToString(s.Protocol), "sqs") || len(parts) != 6 || parts[2] != "sqs" || parts[3] != region {
					continue
				}
				_, err := f.conn.clients.def.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(parts[5]), QueueOwnerAWSAccountId: aws.String(parts[4])})
				if err == nil || !isQueueDoesNotExist(err) {
					continue
				}
				subARN := aws.ToString(s.SubscriptionArn)
				if _, err := ref.client.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: aws.String(subARN)}); err != nil {
					f.logger.Info("Could not remove a stale SNS subscription", watermill.LogFields{
						"exchange": exchange, "subscription_arn": subARN, "error": err.Error()})
					continue
				}
				f.logger.Info("Removed the SNS subscription of a deleted queue", watermill.LogFields{
					"exchange": exchange, "subscription_arn": subARN, "queue_arn": aws.ToString(s.Endpoint)})
			}
		}
		return struct{}{}, nil
	})
}

// bindFanout subscribes the queue to the SNS topics of the fanout exchanges Config.Exchanges
// binds it to, when SupportsFanout is set (Kombu does so when a consumer starts on the queue).
func (s *Subscriber) bindFanout(ctx context.Context, queue string) error {
	if s.fanout == nil {
		return nil
	}
	return s.fanout.bindQueues(ctx, queue)
}
