package kombu

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/smithy-go/middleware"
)

// snsFanout runs fanout exchanges on SNS as Kombu 5.7 does (kombu/transport/SQS/SNS.py): an
// exchange is a topic named like a queue (CanonicalQueueName, a FIFO topic for a .fifo
// exchange), a bound queue is subscribed to it with raw message delivery and a queue policy
// that lets the topic send to it, and a publish is one SNS Publish of the JSON envelope (here
// a PublishBatch for up to 10). It caches topic ARNs and subscriptions; concurrent lookups of
// one key share one request.
type snsFanout struct {
	cfg     Config
	conn    *sqsConn
	logger  watermill.LoggerAdapter
	def     *sns.Client
	topics  onceCache[topicRef]
	subs    onceCache[string]   // exchange + "\x00" + queue -> subscription ARN
	cleaned onceCache[struct{}] // exchanges whose stale subscriptions were looked for

	mu          sync.Mutex
	perExchange map[string]*sns.Client
}

// topicRef is a resolved topic: its ARN and the client that signs its requests.
type topicRef struct {
	arn    string
	client *sns.Client
	fifo   bool
}

// newSNSFanout returns nil when cfg does not enable SNS fanout.
func newSNSFanout(cfg Config, conn *sqsConn, logger watermill.LoggerAdapter) *snsFanout {
	if !cfg.SupportsFanout {
		return nil
	}
	f := &snsFanout{cfg: cfg, conn: conn, logger: logger, perExchange: map[string]*sns.Client{}}
	f.def = f.newClient(conn.clients.base, "")
	return f
}

func (f *snsFanout) newClient(cfg aws.Config, region string) *sns.Client {
	return sns.NewFromConfig(cfg, func(o *sns.Options) {
		if region != "" {
			o.Region = region
		}
		if ep := f.cfg.snsEndpoint(); ep != "" {
			o.BaseEndpoint = aws.String(ep)
		}
		o.APIOptions = append(o.APIOptions, f.conn.stats.snsMiddleware)
		if f.cfg.RequestTimeout > 0 {
			o.APIOptions = append(o.APIOptions, requestTimeoutMiddleware(f.cfg.RequestTimeout))
		}
	})
}

// client is the SNS client of an exchange: its own when it has credentials of its own or a
// TopicARN in another region (SNS serves a topic only in its region), else the default one.
func (f *snsFanout) client(exchange string) *sns.Client {
	ex := f.cfg.Exchanges[exchange]
	region := ""
	if arn, err := parseTopicARN(ex.TopicARN); err == nil && arn.region != f.conn.clients.base.Region {
		region = arn.region
	}
	if ex.AccessKeyID == "" && region == "" {
		return f.def
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.perExchange[exchange]; ok {
		return c
	}
	cfg := f.conn.clients.base.Copy()
	if ex.AccessKeyID != "" {
		cfg.Credentials = f.conn.clients.withSTS(aws.NewCredentialsCache(
			credentials.NewStaticCredentialsProvider(ex.AccessKeyID, ex.SecretAccessKey, ex.SessionToken)), region)
	}
	c := f.newClient(cfg, region)
	f.perExchange[exchange] = c
	return c
}

// managed reports whether the topic of an exchange is this package's to create, re-create
// and clean of stale subscriptions: not with a TopicARN, nor with DisableTopicCreation.
func (f *snsFanout) managed(exchange string) bool {
	return f.cfg.Exchanges[exchange].TopicARN == "" && !f.cfg.DisableTopicCreation
}

// topic resolves the topic of an exchange: its TopicARN, else CreateTopic (which returns the
// existing topic's ARN when there is one), else, with DisableTopicCreation, a lookup by name.
func (f *snsFanout) topic(ctx context.Context, exchange string) (topicRef, error) {
	ref, err := f.topics.get(ctx, exchange, func(ctx context.Context) (topicRef, error) {
		client := f.client(exchange)
		if arn := f.cfg.Exchanges[exchange].TopicARN; arn != "" {
			return topicRef{arn: arn, client: client, fifo: strings.HasSuffix(arn, ".fifo")}, nil
		}
		name := CanonicalQueueName(f.cfg.QueueNamePrefix, exchange)
		fifo := strings.HasSuffix(name, ".fifo")
		if f.cfg.DisableTopicCreation {
			arn, err := f.findTopic(ctx, client, name)
			return topicRef{arn: arn, client: client, fifo: fifo}, err
		}
		// The attributes and tags Kombu gives its topics, so that either side may create the
		// topic first and the other's CreateTopic is a no-op.
		out, err := client.CreateTopic(ctx, &sns.CreateTopicInput{
			Name:       aws.String(name),
			Attributes: map[string]string{"FifoTopic": fmt.Sprint(fifo)},
			Tags: []snstypes.Tag{
				{Key: aws.String("ManagedBy"), Value: aws.String("Celery/Kombu")},
				{Key: aws.String("Description"), Value: aws.String("This SNS topic is used by Kombu to enable Fanout support for AWS SQS.")},
			},
		})
		if err != nil {
			return topicRef{}, fmt.Errorf("creating SNS topic %q: %w", name, err)
		}
		f.logger.Debug("SNS topic of fanout exchange", watermill.LogFields{"exchange": exchange, "topic_arn": aws.ToString(out.TopicArn)})
		return topicRef{arn: aws.ToString(out.TopicArn), client: client, fifo: fifo}, nil
	})
	if err != nil {
		return topicRef{}, exchangeError("resolve topic", exchange, "", err)
	}
	return ref, nil
}

// findTopic looks a topic up by name with ListTopics.
func (f *snsFanout) findTopic(ctx context.Context, client *sns.Client, name string) (string, error) {
	p := sns.NewListTopicsPaginator(client, &sns.ListTopicsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("looking up SNS topic %q: %w", name, err)
		}
		for _, t := range page.Topics {
			if arn := aws.ToString(t.TopicArn); strings.HasSuffix(arn, ":"+name) {
				return arn, nil
			}
		}
	}
	return "", fmt.Errorf("looking up SNS topic %q (DisableTopicCreation is set): %w", name,
		&snstypes.NotFoundException{Message: aws.String("no topic named " + name)})
}

// forgetTopic drops the cached topic of an exchange after SNS said it does not exist, so that
// the next publish creates it again, when the topic is this package's to create.
func (f *snsFanout) forgetTopic(exchange string, ref topicRef) bool {
	if !f.managed(exchange) {
		return false
	}
	f.topics.forget(exchange, func(r topicRef) bool { return r.arn == ref.arn })
	// Its subscriptions went with it.
	f.subs.forgetPrefix(exchange + "\x00")
	f.cleaned.forget(exchange, func(struct{}) bool { return true })
	return true
}

// snsMiddleware counts SNS requests, each attempt, like middleware does for SQS.
func (s *requestStats) snsMiddleware(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("kombuSNSRequestStats",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			switch awsmiddleware.GetOperationName(ctx) {
			case "Publish", "PublishBatch":
				s.snsPublish.Add(1)
			default:
				s.snsOther.Add(1)
			}
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

// onceCache caches values by key; concurrent gets of a missing key share one call of fill,
// and a failed fill is not cached.
type onceCache[V any] struct {
	mu      sync.Mutex
	entries map[string]*onceEntry[V]
}

type onceEntry[V any] struct {
	ready chan struct{}
	v     V
	err   error
}

func (c *onceCache[V]) get(ctx context.Context, key string, fill func(context.Context) (V, error)) (V, error) {
	for {
		c.mu.Lock()
		if c.entries == nil {
			c.entries = map[string]*onceEntry[V]{}
		}
		e, ok := c.entries[key]
		if !ok {
			e = &onceEntry[V]{ready: make(chan struct{})}
			c.entries[key] = e
			c.mu.Unlock()
			e.v, e.err = fill(ctx)
			if e.err != nil {
				c.mu.Lock()
				delete(c.entries, key)
				c.mu.Unlock()
			}
			close(e.ready)
			return e.v, e.err
		}
		c.mu.Unlock()
		select {
		case <-e.ready:
			if e.err == nil {
				return e.v, nil
			}
			// That fill failed (perhaps on its caller's context): try ourselves.
		case <-ctx.Done():
			var zero V
			return zero, ctx.Err()
		}
	}
}

// forget drops key when its cached value satisfies match.
func (c *onceCache[V]) forget(key string, match func(V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		select {
		case <-e.ready:
			if e.err == nil && match(e.v) {
				delete(c.entries, key)
			}
		default:
		}
	}
}

// forgetPrefix drops every settled key that starts with prefix.
func (c *onceCache[V]) forgetPrefix(prefix string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, e := range c.entries {
		if !strings.HasPrefix(key, prefix) {
			continue
		}
		select {
		case <-e.ready:
			delete(c.entries, key)
		default:
		}
	}
}
