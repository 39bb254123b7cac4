package kombu

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// defaultStsExpiryWindow is how long before expiry STS credentials are refreshed when
// StsTokenBufferTime is not set, so that no request goes out with credentials about to lapse.
const defaultStsExpiryWindow = time.Minute

// sqsConn is what a Publisher and a Subscriber both hold: the SQS clients, their request
// counts and the queue resolver.
type sqsConn struct {
	stats    *requestStats
	clients  *clientSet
	resolver *queueResolver
	// fanout serves SNS fanout exchanges; nil unless Config.SupportsFanout.
	fanout *snsFanout
}

// newSQSConn builds the clients for cfg; defaultBackoff applies to queues without their own.
func newSQSConn(cfg Config, defaultBackoff *backoffTable) (*sqsConn, error) {
	stats := &requestStats{}
	clients, err := newClientSet(context.Background(), cfg, stats)
	if err != nil {
		return nil, err
	}
	return &sqsConn{stats: stats, clients: clients, resolver: newQueueResolver(cfg, clients, defaultBackoff)}, nil
}

// componentLogger tags a logger with the component; nil logs nothing.
func componentLogger(logger watermill.LoggerAdapter, component string) watermill.LoggerAdapter {
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	return logger.With(watermill.LogFields{"component": component})
}

// clientSet holds the SQS clients: one for the config's credentials and one per predefined
// queue that has credentials or a region of its own.
type clientSet struct {
	base  aws.Config
	cfg   Config
	stats *requestStats
	def   *sqs.Client

	mu        sync.Mutex
	perQueue  map[string]*sqs.Client
	stsClient *sts.Client
}

func newClientSet(ctx context.Context, cfg Config, stats *requestStats) (*clientSet, error) {
	base, err := loadAWSConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	cs := &clientSet{base: base, cfg: cfg, stats: stats, perQueue: map[string]*sqs.Client{}}
	if cfg.AccessKeyID != "" {
		cs.base.Credentials = aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken))
	} else if cfg.AWSConfig == nil && cs.base.Credentials != nil {
		cs.base.Credentials = noCredentialsReporter{cs.base.Credentials}
	}
	cs.base.Credentials = cs.withSTS(cs.base.Credentials, cfg.Region)
	cs.def = cs.newSQSClient(cs.base, "")
	return cs, nil
}

// loadAWSConfig is the base AWS configuration: the user's, or the SDK's default chain.
func loadAWSConfig(ctx context.Context, cfg Config) (aws.Config, error) {
	var base aws.Config
	if cfg.AWSConfig != nil {
		base = cfg.AWSConfig.Copy()
	} else {
		var opts []func(*awsconfig.LoadOptions) error
		if cfg.Region != "" {
			opts = append(opts, awsconfig.WithRegion(cfg.Region))
		}
		if cfg.AccessKeyID != "" {
			// Static credentials given: do not let the default chain reach for IMDS or SSO.
			opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)))
		}
		loaded, err := awsconfig.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return aws.Config{}, fmt.Errorf("kombu: loading the AWS configuration: %w", err)
		}
		base = loaded
	}
	// Like Kombu: the configured region, else the SDK's (AWS_REGION, ~/.aws/config), else us-east-1.
	if cfg.Region != "" {
		base.Region = cfg.Region
	}
	if base.Region == "" {
		base.Region = defaultRegion
	}
	if cfg.HTTPClient != nil {
		base.HTTPClient = cfg.HTTPClient
	}
	if cfg.RetryMaxAttempts > 0 {
		base.RetryMaxAttempts = cfg.RetryMaxAttempts
	}
	if cfg.RetryMode != "" {
		base.RetryMode = cfg.RetryMode
	}
	return base, nil
}

// withSTS wraps credentials in an STS AssumeRole provider when a role is configured. The
// CredentialsCache refreshes them StsTokenBufferTime (default one minute) before
// they expire.
//
// Unlike Kombu, which assumes the role only for predefined queues, with the ambient AWS
// credentials, and keeps one expiry for all queues, every client assumes the role here, with
// its own credentials as the source (a predefined queue's keys, else the Config's, else the
// SDK's default chain), and each client refreshes on its own.
func (cs *clientSet) withSTS(creds aws.CredentialsProvider, region string) aws.CredentialsProvider {
	if cs.cfg.StsRoleArn == "" {
		return creds
	}
	stsCfg := cs.base.Copy()
	stsCfg.Credentials = creds
	if region != "" {
		stsCfg.Region = region
	}
	client := sts.NewFromConfig(stsCfg, func(o *sts.Options) {
		if cs.cfg.StsEndpointURL != "" {
			o.BaseEndpoint = aws.String(cs.cfg.StsEndpointURL)
		}
	})
	provider := stscreds.NewAssumeRoleProvider(client, cs.cfg.StsRoleArn, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = "Celery"
		o.Duration = cs.cfg.StsTokenTimeout
	})
	window := cs.cfg.StsTokenBufferTime
	if window <= 0 {
		window = defaultStsExpiryWindow
	}
	return aws.NewCredentialsCache(provider, func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = window })
}

// noCredentialsReporter wraps the SDK's default credential chain so that finding no
// credentials at all reads as such, rather than as the chain's last attempt (typically "no EC2
// IMDS role found", which looks like a network failure).
type noCredentialsReporter struct{ aws.CredentialsProvider }

func (r noCredentialsReporter) Retrieve(ctx context.Context) (aws.Credentials, error) {
	creds, err := r.CredentialsProvider.Retrieve(ctx)
	if err != nil && ctx.Err() == nil {
		return creds, &noCredentialsError{err: err}
	}
	return creds, err
}

// noCredentialsError is a channel error: trying again does not help until credentials are
// configured.
type noCredentialsError struct{ err error }

func (e *noCredentialsError) Error() string {
	return "no AWS credentials found: set Config.AccessKeyID and SecretAccessKey (any value for a local ElasticMQ, " +
		"as Celery's sqs://test:test@host:port), or give the AWS SDK's credential chain some (AWS_ACCESS_KEY_ID and " +
		"AWS_SECRET_ACCESS_KEY, a profile, an IAM role); the chain said: " + e.err.Error()
}

func (e *noCredentialsError) Unwrap() error { return e.err }

// Is makes errors.Is(err, ErrChannel) hold.
func (e *noCredentialsError) Is(target error) bool { return target == ErrChannel }

func (cs *clientSet) newSQSClient(cfg aws.Config, region string) *sqs.Client {
	return sqs.NewFromConfig(cfg, func(o *sqs.Options) {
		if region != "" {
			o.Region = region
		}
		if ep := cs.cfg.EndpointURL; ep != "" {
			o.BaseEndpoint = aws.String(ep)
		}
		if cs.stats != nil {
			o.APIOptions = append(o.APIOptions, cs.stats.middleware)
		}
		if cs.cfg.RequestTimeout > 0 {
			o.APIOptions = append(o.APIOptions, requestTimeoutMiddleware(cs.cfg.RequestTimeout))
		}
		o.APIOptions = append(o.APIOptions, explicitShortPollMiddleware)
		for _, fn := range cs.cfg.SQSOptions {
			fn(o)
		}
	})
}

// forPredefined is the client for a predefined queue: its own when it has its own credentials
// or region, else the default one.
func (cs *clientSet) forPredefined(name string, pq PredefinedQueue) (*sqs.Client, error) {
	if pq.AccessKeyID == "" && pq.Region == "" {
		return cs.def, nil
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if c, ok := cs.perQueue[name]; ok {
		return c, nil
	}
	cfg := cs.base.Copy()
	if pq.AccessKeyID != "" {
		cfg.Credentials = cs.withSTS(aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(pq.AccessKeyID, pq.SecretAccessKey, pq.SessionToken)), pq.Region)
	}
	c := cs.newSQSClient(cfg, pq.Region)
	cs.perQueue[name] = c
	return c, nil
}

// requestStats counts the HTTP requests sent to SQS, by API call, retries included: what AWS
// bills. Safe for concurrent use.
type requestStats struct {
	receive, delete, changeVisibility, send, other atomic.Int64
	snsPublish, snsOther                           atomic.Int64
}

// RequestCounts is a snapshot of requestStats.
type RequestCounts struct {
	// Receive counts ReceiveMessage requests.
	Receive int64
	// Delete counts DeleteMessage and DeleteMessageBatch requests.
	Delete int64
	// ChangeVisibility counts ChangeMessageVisibility and ChangeMessageVisibilityBatch requests.
	ChangeVisibility int64
	// Send counts SendMessage and SendMessageBatch requests.
	Send int64
	// Other counts every other request (GetQueueUrl, CreateQueue, GetQueueAttributes, ...).
	Other int64
	// SNSPublish counts SNS Publish and PublishBatch requests, SNSOther the other SNS requests
	// (CreateTopic, Subscribe, ...), of fanout exchanges (Config.SupportsFanout).
	SNSPublish int64
	SNSOther   int64
}

// Total is the number of requests of every kind.
func (c RequestCounts) Total() int64 {
	return c.Receive + c.Delete + c.ChangeVisibility + c.Send + c.Other + c.SNSPublish + c.SNSOther
}

// Snapshot returns the counts so far.
func (s *requestStats) Snapshot() RequestCounts {
	return RequestCounts{
		Receive:          s.receive.Load(),
		Delete:           s.delete.Load(),
		ChangeVisibility: s.changeVisibility.Load(),
		Send:             s.send.Load(),
		Other:            s.other.Load(),
		SNSPublish:       s.snsPublish.Load(),
		SNSOther:         s.snsOther.Load(),
	}
}

func (s *requestStats) count(operation string) {
	switch operation {
	case "ReceiveMessage":
		s.receive.Add(1)
	case "DeleteMessage", "DeleteMessageBatch":
		s.delete.Add(1)
	case "ChangeMessageVisibility", "ChangeMessageVisibilityBatch":
		s.changeVisibility.Add(1)
	case "SendMessage", "SendMessageBatch":
		s.send.Add(1)
	default:
		s.other.Add(1)
	}
}

// middleware counts each attempt: it sits after the retry loop, just before the request is sent.
func (s *requestStats) middleware(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("kombuRequestStats",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			s.count(awsmiddleware.GetOperationName(ctx))
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

// requestTimeoutMiddleware bounds each SQS call, retries included, by timeout; a long poll
// (ReceiveMessage) gets its wait time on top. A receive that names no wait time is a short
// poll (explicitShortPollMiddleware), not one of the queue's ReceiveMessageWaitTimeSeconds.
// The caller's context may end it sooner.
func requestTimeoutMiddleware(timeout time.Duration) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("kombuRequestTimeout",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				d := timeout
				if r, ok := in.Parameters.(*sqs.ReceiveMessageInput); ok {
					d += time.Duration(r.WaitTimeSeconds) * time.Second
				}
				ctx, cancel := context.WithTimeout(ctx, d)
				defer cancel()
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	}
}

// explicitShortPollMiddleware writes WaitTimeSeconds 0 into a ReceiveMessage request that asks
// for a short poll. The SDK leaves a zero WaitTimeSeconds out of the request, and SQS then
// applies the queue's ReceiveMessageWaitTimeSeconds attribute, so on a queue created with long
// polling (up to 20 s) every receive would wait that long, past the deadline the Subscriber
// gives a short poll. Kombu sends the 0 for wait_time_seconds 0, which overrides the attribute.
func explicitShortPollMiddleware(stack *middleware.Stack) error {
	return stack.Serialize.Insert(middleware.SerializeMiddlewareFunc("kombuExplicitShortPoll",
		func(ctx context.Context, in middleware.SerializeInput, next middleware.SerializeHandler) (middleware.SerializeOutput, middleware.Metadata, error) {
			if r, ok := in.Parameters.(*sqs.ReceiveMessageInput); ok && r.WaitTimeSeconds == 0 {
				if req, ok := in.Request.(*smithyhttp.Request); ok {
					if err := addZeroWaitTime(req); err != nil {
						return middleware.SerializeOutput{}, middleware.Metadata{}, fmt.Errorf("kombu: asking for a short poll: %w", err)
					}
				}
			}
			return next.HandleSerialize(ctx, in)
		}), "OperationSerializer", middleware.After)
}

// addZeroWaitTime adds "WaitTimeSeconds": 0 to the JSON object the request carries (SQS's
// JSON protocol, the only one the SDK speaks to SQS).
func addZeroWaitTime(req *smithyhttp.Request) error {
	stream := req.GetStream()
	if stream == nil {
		return nil
	}
	var body bytes.Buffer
	if _, err := body.ReadFrom(stream); err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body.Bytes(), &fields); err != nil {
		return fmt.Errorf("the request body is not a JSON object: %w", err)
	}
	if _, ok := fields["WaitTimeSeconds"]; !ok {
		fields["WaitTimeSeconds"] = json.RawMessage("0")
	}
	data, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	sreq, err := req.SetStream(bytes.NewReader(data))
	if err != nil {
		return err
	}
	*req = *sreq
	return nil
}
