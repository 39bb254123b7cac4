package kombu

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Defaults, named after Kombu's SQS transport options so a Celery user recognises them.
const (
	defaultRegion            = "us-east-1"
	defaultWaitTimeSeconds   = 10
	maxWaitTimeSeconds       = 20
	defaultPollingInterval   = time.Second
	defaultVisibilityTimeout = 1800 * time.Second
	maxVisibilityTimeout     = 12 * time.Hour
	defaultStsTokenTimeout   = 900 * time.Second
	minStsTokenTimeout       = 900 * time.Second
	maxStsTokenTimeout       = 12 * time.Hour

	// defaultPrefetchCount lets the next ReceiveMessage of 10 go out while the handlers still
	// have up to 10 messages to work through, so they do not wait for the round trip. It is the
	// default PrefetchCount for a Concurrency up to 10; above, PrefetchCount grows with it.
	defaultPrefetchCount = 2 * maxMessagesPerRequest
	// defaultConcurrency is how many messages of a subscription are handled at once by
	// default (see SubscriberConfig.Concurrency and BENCHMARKS.md for the measurements).
	defaultConcurrency = 16

	// maxMessagesPerRequest is SQS's limit of messages per ReceiveMessage and entries per batch call.
	maxMessagesPerRequest = 10
	// defaultMaxMessageSize is SQS's limit on one message body and on a whole batch request
	// (1 MiB since August 2025; it was 256 KiB before).
	defaultMaxMessageSize = 1024 * 1024
	// legacyMaxMessageSize is the 256 KiB limit of older SQS deployments and emulators.
	legacyMaxMessageSize = 256 * 1024

	// defaultRequestTimeout bounds every SQS call but the wait of a long poll.
	defaultRequestTimeout = 10 * time.Second
	// defaultCloseTimeout bounds Close of a Publisher or a Subscriber.
	defaultCloseTimeout = 30 * time.Second
)

// Config is what a Publisher and a Subscriber share: where SQS is, which credentials sign the
// requests, and how Kombu queue names map to SQS queues. Its zero value plus defaults talks to
// AWS in the AWS SDK's region (else us-east-1) with the default credential chain.
//
// The fields follow Kombu's `broker_transport_options` for the SQS transport; see
// ParseTransportOptions to build a Config from the same options a Celery app uses.
type Config struct {
	// Region is the AWS region (Kombu: `region`). Default: the AWS SDK's region (AWS_REGION,
	// ~/.aws/config), else us-east-1.
	Region string

	// EndpointURL overrides the SQS endpoint, e.g. http://127.0.0.1:9324 for ElasticMQ
	// (Kombu: `endpoint_url`, or the host of the broker URL with `is_secure`).
	EndpointURL string

	// AccessKeyID, SecretAccessKey and SessionToken are static credentials (the broker URL's
	// `sqs://KEY:SECRET@`). When empty, the AWS SDK's default credential chain is used.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string

	// StsRoleArn makes every request use credentials from STS AssumeRole of this role
	// (Kombu: `sts_role_arn`), refreshed before they expire.
	StsRoleArn string
	// StsTokenTimeout is the session duration asked of STS (Kombu: `sts_token_timeout`);
	// default and minimum 900 s.
	StsTokenTimeout time.Duration
	// StsTokenBufferTime refreshes STS credentials that long before they expire
	// (Kombu: `sts_token_buffer_time`). Default (and when 0) one minute; it must be less than
	// StsTokenTimeout.
	StsTokenBufferTime time.Duration
	// StsEndpointURL overrides the STS endpoint (tests, VPC endpoints).
	StsEndpointURL string

	// QueueNamePrefix is prepended to every queue name before it is mangled into an SQS name
	// (Kombu: `queue_name_prefix`).
	QueueNamePrefix string

	// PredefinedQueues maps Kombu queue names to existing SQS queues (Kombu: `predefined_queues`).
	// When set, only these queues may be used: they are never listed, looked up or created.
	PredefinedQueues map[string]PredefinedQueue

	// VisibilityTimeout is given to queues this library creates (Kombu: `visibility_timeout`).
	// Default 1800 s, at most 12 h.
	VisibilityTimeout time.Duration
	// CreationAttributes are extra attributes for CreateQueue, e.g. KmsMasterKeyId,
	// MessageRetentionPeriod or RedrivePolicy (Kombu: `sqs-creation-attributes`).
	CreationAttributes map[string]string
	// QueueTags are set on queues this library creates (Kombu: `queue_tags`).
	QueueTags map[string]string
	// DisableQueueCreation makes a missing queue an error instead of creating it.
	DisableQueueCreation bool

	// Exchanges declares Kombu exchanges and their queue bindings. Publishing to a topic that
	// names an exchange routes each message to the bound queues as Kombu's virtual exchanges
	// do (direct, topic, fanout), with delivery_info.exchange and routing_key filled in. The
	// routing key of a message is its MetadataRoutingKey metadata.
	Exchanges map[string]Exchange

	// SupportsFanout sends fanout exchanges of Exchanges through Amazon SNS, as Kombu does with
	// `supports_fanout`: each is an SNS topic (Exchange.TopicARN, else one created and named as
	// Kombu names it) that its queues are subscribed to, so Kombu consumers that bound their own
	// queues receive what Go publishes, and the other way round. See docs/fanout.md. Without
	// it, fanout exchanges are routed client-side to their Bindings.
	SupportsFanout bool
	// SNSEndpointURL overrides the SNS endpoint. Default: EndpointURL when set (as Kombu, which
	// gives both clients the broker URL's host), else AWS's.
	SNSEndpointURL string
	// DisableTopicCreation makes a missing SNS topic an error (an *sns/types.NotFoundException
	// inside) instead of creating it; topics are then looked up by name with ListTopics, and
	// their stale subscriptions left alone. ParseTransportOptions sets it with
	// `predefined_exchanges`, with which Kombu never creates a topic.
	DisableTopicCreation bool

	// MaxMessageSize is the largest SQS message body accepted, and the largest batch request.
	// Default 1 MiB; set 262144 (256 KiB) for SQS-compatible servers that still enforce the old limit.
	MaxMessageSize int

	// AWSConfig, when set, is the base AWS configuration (credentials, retries, HTTP client)
	// instead of one loaded by config.LoadDefaultConfig. Fields set above still apply on top.
	AWSConfig *aws.Config
	// HTTPClient replaces the SDK's HTTP client.
	HTTPClient *http.Client
	// RequestTimeout bounds each SQS call, the SDK's retries included; a long poll gets its wait
	// time on top. A call that runs out fails with a connection error (context.DeadlineExceeded
	// inside), so an endpoint that accepts connections and never answers cannot hang a
	// Publish, a Subscribe or a Close. Default 10 s; set DisableRequestTimeout to leave calls
	// bounded only by the caller's context.
	RequestTimeout        time.Duration
	DisableRequestTimeout bool
	// RetryMaxAttempts and RetryMode configure the SDK's retryer (Kombu: `client-config`
	// `retries`). Zero values keep the SDK defaults (3 attempts, standard mode).
	RetryMaxAttempts int
	RetryMode        aws.RetryMode
	// SQSOptions customise the SQS client options for anything else.
	SQSOptions []func(*sqs.Options)
}

// PredefinedQueue is an SQS queue given by URL (Kombu: an entry of `predefined_queues`).
type PredefinedQueue struct {
	URL string
	// Region overrides Config.Region for this queue.
	Region string
	// AccessKeyID, SecretAccessKey and SessionToken sign requests for this queue only.
	// Empty means the Config's credentials.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// BackoffPolicy and BackoffTasks: as SubscriberConfig's, for this queue.
	BackoffPolicy map[int]int
	BackoffTasks  []string
}

// setDefaults fills zero fields with Kombu's defaults.
func (c *Config) setDefaults() {
	if c.VisibilityTimeout == 0 {
		c.VisibilityTimeout = defaultVisibilityTimeout
	}
	if c.StsTokenTimeout == 0 {
		c.StsTokenTimeout = defaultStsTokenTimeout
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = defaultMaxMessageSize
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = defaultRequestTimeout
	}
	if c.DisableRequestTimeout {
		c.RequestTimeout = 0
	}
}

// Validate reports every invalid field, naming it and its allowed range. A zero field is
// valid: it means the default.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if c.VisibilityTimeout < 0 || c.VisibilityTimeout > maxVisibilityTimeout {
		bad("VisibilityTimeout", "must be between 0 and 43200 s, got %s", secondsText(c.VisibilityTimeout))
	}
	if c.StsRoleArn != "" && !strings.HasPrefix(c.StsRoleArn, "arn:") {
		bad("StsRoleArn", "must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
	}
	if c.StsTokenTimeout != 0 && (c.StsTokenTimeout < minStsTokenTimeout || c.StsTokenTimeout > maxStsTokenTimeout) {
		bad("StsTokenTimeout", "must be between 900 s and 43200 s, got %s", secondsText(c.StsTokenTimeout))
	}
	// The buffer is checked against the session duration that will be asked for: the
	// default when StsTokenTimeout is left zero.
	stsTimeout := c.StsTokenTimeout
	if stsTimeout == 0 {
		stsTimeout = defaultStsTokenTimeout
	}
	if c.StsTokenBufferTime < 0 || c.StsTokenBufferTime >= stsTimeout {
		bad("StsTokenBufferTime", "must be at least 0 s and less than StsTokenTimeout (%s), got %s",
			secondsText(stsTimeout), secondsText(c.StsTokenBufferTime))
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		bad("AccessKeyID/SecretAccessKey", "must be given together")
	}
	if c.SessionToken != "" && c.AccessKeyID == "" {
		bad("SessionToken", "needs AccessKeyID and SecretAccessKey")
	}
	if c.EndpointURL != "" && !strings.HasPrefix(c.EndpointURL, "http://") && !strings.HasPrefix(c.EndpointURL, "https://") {
		bad("EndpointURL", "must start with http:// or https://, got %q", withoutUserinfo(c.EndpointURL))
	}
	if c.MaxMessageSize < 0 || c.MaxMessageSize > defaultMaxMessageSize {
		bad("MaxMessageSize", "must be between 1 and %d bytes, got %d", defaultMaxMessageSize, c.MaxMessageSize)
	}
	if c.RequestTimeout < 0 {
		bad("RequestTimeout", "must not be negative, got %s", c.RequestTimeout)
	}
	if c.RetryMaxAttempts < 0 {
		bad("RetryMaxAttempts", "must not be negative, got %d", c.RetryMaxAttempts)
	}
	if c.RetryMode != "" && c.RetryMode != aws.RetryModeStandard && c.RetryMode != aws.RetryModeAdaptive {
		bad("RetryMode", "must be %q or %q, got %q", aws.RetryModeStandard, aws.RetryModeAdaptive, c.RetryMode)
	}
	for _, name := range sortedKeys(c.PredefinedQueues) {
		q := c.PredefinedQueues[name]
		field := "PredefinedQueues[" + name + "]"
		if q.URL == "" {
			bad(field+".URL", "is required")
		} else if !strings.HasPrefix(q.URL, "http://") && !strings.HasPrefix(q.URL, "https://") {
			bad(field+".URL", "must be an http:// or https:// queue URL, got %q", q.URL)
		} else if strings.HasSuffix(name, ".fifo") && !strings.HasSuffix(q.URL, ".fifo") {
			bad(field+".URL", "must be a FIFO queue URL (ending in .fifo), as the queue name ends in .fifo")
		} else if !strings.HasSuffix(name, ".fifo") && strings.HasSuffix(q.URL, ".fifo") {
			bad(field+".URL", "is a FIFO queue URL, so the queue name must end in .fifo")
		}
		if (q.AccessKeyID == "") != (q.SecretAccessKey == "") {
			bad(field+".AccessKeyID/SecretAccessKey", "must be given together")
		}
		if q.SessionToken != "" && q.AccessKeyID == "" {
			bad(field+".SessionToken", "needs AccessKeyID and SecretAccessKey")
		}
		if err := validateBackoffPolicy(q.BackoffPolicy); err != nil {
			bad(field+".BackoffPolicy", "%s", err)
		}
	}
	errs = append(errs, c.validateFanout()...)
	if err := validateExchanges(c.Exchanges, c.SupportsFanout); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// String describes the config without any credential.
func (c Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kombu.Config{Region:%q", c.Region)
	if ep := c.EndpointURL; ep != "" {
		fmt.Fprintf(&b, " Endpoint:%q", ep)
	}
	if c.AccessKeyID != "" {
		b.WriteString(" Credentials:static(redacted)")
	}
	if c.StsRoleArn != "" {
		fmt.Fprintf(&b, " StsRoleArn:%q StsTokenTimeout:%s", c.StsRoleArn, c.StsTokenTimeout)
	}
	if c.QueueNamePrefix != "" {
		fmt.Fprintf(&b, " QueueNamePrefix:%q", c.QueueNamePrefix)
	}
	if len(c.PredefinedQueues) > 0 {
		fmt.Fprintf(&b, " PredefinedQueues:%v", sortedKeys(c.PredefinedQueues))
	}
	if c.SupportsFanout {
		fmt.Fprintf(&b, " SupportsFanout:true")
	}
	fmt.Fprintf(&b, " VisibilityTimeout:%s}", c.VisibilityTimeout)
	return b.String()
}

// GoString keeps credentials out of %#v as well.
func (c Config) GoString() string { return c.String() }

// String describes the queue without its credentials.
func (q PredefinedQueue) String() string {
	creds := "default"
	if q.AccessKeyID != "" {
		creds = "static(redacted)"
	}
	return fmt.Sprintf("kombu.PredefinedQueue{URL:%q Credentials:%s}", q.URL, creds)
}

// GoString keeps credentials out of %#v as well.
func (q PredefinedQueue) GoString() string { return q.String() }

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	Config

	// Marshaler turns Watermill messages into SQS messages. Default: EnvelopeMarshaler.
	Marshaler Marshaler

	// CloseTimeout bounds how long Close waits for Publish calls under way; those still running
	// then are cancelled and fail. Default 30 s.
	CloseTimeout time.Duration

	// Publish calls of one message to the same queue that run at the same time are sent
	// together, up to 10 per SendMessageBatch, each call returning its own message's outcome.
	// A message that finds no send under way leaves at once; CoalesceLinger makes it wait up
	// to that long for company (a full batch leaves at once), trading latency for fewer
	// requests when single publishes trickle in. Messages that wait for a send under way
	// leave with the callers it answered when those publish again within 30 µs; a further
	// send starts beside those under way once 8 messages wait. Default 0,
	// at most 1 s. DisableCoalescing sends each single message with its own SendMessage.
	CoalesceLinger    time.Duration
	DisableCoalescing bool
}

func (c *PublisherConfig) setDefaults() {
	c.Config.setDefaults()
	if c.CloseTimeout == 0 {
		c.CloseTimeout = defaultCloseTimeout
	}
	if c.Marshaler == nil {
		c.Marshaler = EnvelopeMarshaler{}
	}
}

// Validate reports every invalid field. A zero field is valid: it means the default.
func (c PublisherConfig) Validate() error {
	var errs []error
	if err := c.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.CloseTimeout < 0 {
		errs = append(errs, &ConfigError{Field: "CloseTimeout", Reason: fmt.Sprintf("must not be negative, got %s", c.CloseTimeout)})
	}
	if c.CoalesceLinger < 0 || c.CoalesceLinger > time.Second {
		errs = append(errs, &ConfigError{Field: "CoalesceLinger", Reason: fmt.Sprintf("must be between 0 and 1 s, got %s", c.CoalesceLinger)})
	}
	return errors.Join(errs...)
}

// SubscriberConfig configures a Subscriber.
type SubscriberConfig struct {
	Config

	// WaitTimeSeconds is the long-poll time of each ReceiveMessage (Kombu: `wait_time_seconds`),
	// 0 to 20. Default 10. Set DisableLongPolling for 0 (short polling).
	WaitTimeSeconds int
	// DisableLongPolling makes ReceiveMessage return at once (WaitTimeSeconds 0).
	DisableLongPolling bool
	// PollingInterval is how long a topic waits after an empty receive before polling again
	// (Kombu: `polling_interval`). Default 1 s. Set DisablePollingInterval to poll again at once.
	PollingInterval        time.Duration
	DisablePollingInterval bool
	// Concurrency is how many messages of one subscription (one Subscribe call) are handed out
	// at once and not yet acked or nacked: how many handlers run in parallel on one topic, as
	// Celery's worker_concurrency is how many tasks a worker runs at once. A Watermill Router
	// runs one handler goroutine per message it is given, so with the default 16 up to 16
	// messages of a topic are handled in parallel. On a FIFO queue messages of one
	// MessageGroupId are still handed out one after the other, in order (the next once the
	// previous was acked, and not at all after a Nack until SQS delivers the group again);
	// different groups run in parallel. 1 hands out one message at a time: the next only once
	// the previous one was acked or nacked. Default 16; at most 1000.
	Concurrency int
	// PrefetchCount is how many messages per topic are received ahead of the handlers, on top
	// of those they hold (Kombu's prefetch; Celery's worker_prefetch_multiplier ×
	// worker_concurrency counts both). A ReceiveMessage of up to 10 goes out whenever a whole
	// batch fits, and more than one at a time when it has room for more than one batch and
	// the last receive came back full. Default: Concurrency rounded up to a multiple of 10,
	// plus 10, at least 20, so the next receive is under way while the handlers work through
	// the current batch.
	PrefetchCount int

	// BackoffPolicy and BackoffTasks decide how long a Nacked message stays invisible before
	// SQS delivers it again, from its receive count, as Kombu's `backoff_policy` and
	// `backoff_tasks` do. They apply to every queue that is not predefined with its own
	// (Kombu only has them on predefined queues).
	//
	// The policy maps SQS's ApproximateReceiveCount (1 on the first delivery) to seconds,
	// e.g. {1: 10, 2: 20, 3: 40, 4: 80, 5: 320, 6: 640}: a message Nacked on its 2nd
	// delivery comes back after 20 s. It applies to messages whose Celery task name
	// (MetadataTask) is listed in BackoffTasks; with no BackoffTasks it applies to every
	// message. Past the end of the table the largest receive count not above the message's
	// applies, so the 7th and later deliveries above wait 640 s. Messages the policy does not
	// cover (another task, or a receive count below its smallest key) get the default
	// backoff below. Kombu instead makes a message outside its table visible again at once,
	// forever (a message that always fails loops hot), or, below the table's smallest key,
	// leaves it to the queue's visibility timeout.
	BackoffPolicy map[int]int
	BackoffTasks  []string

	// NackBackoffImmediate, NackBackoffInitial and NackBackoffMax set the delay of a Nacked
	// message that no BackoffPolicy entry covers, from its receive count n: visible again at
	// once while n <= NackBackoffImmediate, then NackBackoffInitial doubled with each further
	// receive, up to NackBackoffMax (whole seconds, at least 1). Defaults 3, 1 s and 5 min:
	// deliveries 1-3 come back at once, then after 1, 2, 4, 8 ... 300 s, so a message that
	// always fails costs a few requests a minute instead of a hot loop. A negative
	// NackBackoffImmediate backs off from the first Nack. DisableNackBackoff makes such a
	// message visible again at once, always. A queue's RedrivePolicy (CreationAttributes)
	// still moves it to a dead-letter queue after maxReceiveCount receives.
	NackBackoffImmediate int
	NackBackoffInitial   time.Duration
	NackBackoffMax       time.Duration
	DisableNackBackoff   bool

	// AckBatchWindow is how long an Ack or Nack may wait to be sent together with others in one
	// DeleteMessageBatch / ChangeMessageVisibilityBatch call. Default 20 ms. Set DisableAckBatching to
	// send each at once (still as a batch of one).
	AckBatchWindow     time.Duration
	DisableAckBatching bool

	// DisableHeartbeat turns off the visibility heartbeat. By default, a message received and
	// not yet acked or nacked (in the prefetch buffer or in a handler), or acked but not yet
	// deleted by SQS, has its visibility extended by the queue's visibility timeout whenever a
	// third of it is left, so a long task is not delivered to a second consumer meanwhile.
	DisableHeartbeat bool

	// DisableETADeferral turns off ETA deferral. By default, a Celery task whose `eta` lies in
	// the future is not handed to the handler: it is made invisible until its eta (at most 12 h
	// less a minute at a time) and handed over when it comes back due. No consumer holds it
	// meanwhile, so it is never redelivered early, however far the eta. A task less than 1.5 s
	// from its eta is instead held by the subscription until then.
	DisableETADeferral bool

	// CloseTimeout bounds Close. Messages in the prefetch buffer go back to their queue at
	// once. A message a handler holds stays invisible (the heartbeat goes on), its context is
	// not cancelled, and its Ack or Nack is sent while CloseTimeout lasts; only a message
	// still unsettled when it runs out is made visible again, its context cancelled, and an
	// Ack after that is reported and counted in FailedAcks. Close
	// returns within CloseTimeout plus a small margin (closeMargin, 2 s) whatever the network
	// does. The same holds for a subscription whose context is cancelled. Default 30 s.
	CloseTimeout time.Duration

	// ReconnectRetrySleep is the first pause after a failed receive; it doubles up to 30 s.
	// Default 1 s.
	ReconnectRetrySleep time.Duration

	// Unmarshaler turns SQS messages into Watermill messages. Default: EnvelopeMarshaler.
	Unmarshaler Marshaler

	// KeepSQSBody sets the "sqs_body" metadata of every received message to its SQS body as
	// received (the Kombu envelope before any decoding, base64-encoded as Kombu sends it), for
	// debugging. A message that could not be decoded (MetadataDecodeError) always has it, as
	// its payload. The key is never sent on when the message is published again.
	KeepSQSBody bool
}

func (c *SubscriberConfig) setDefaults() {
	c.Config.setDefaults()
	if c.WaitTimeSeconds == 0 && !c.DisableLongPolling {
		c.WaitTimeSeconds = defaultWaitTimeSeconds
	}
	if c.DisableLongPolling {
		c.WaitTimeSeconds = 0
	}
	if c.PollingInterval == 0 && !c.DisablePollingInterval {
		c.PollingInterval = defaultPollingInterval
	}
	if c.DisablePollingInterval {
		c.PollingInterval = 0
	}
	if c.Concurrency == 0 {
		c.Concurrency = defaultConcurrency
	}
	if c.PrefetchCount == 0 {
		c.PrefetchCount = prefetchFor(c.Concurrency)
	}
	if c.AckBatchWindow == 0 {
		c.AckBatchWindow = 20 * time.Millisecond
	}
	if c.DisableAckBatching {
		c.AckBatchWindow = 0
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = defaultCloseTimeout
	}
	if c.NackBackoffImmediate == 0 {
		c.NackBackoffImmediate = defaultNackBackoffImmediate
	}
	if c.NackBackoffInitial == 0 {
		c.NackBackoffInitial = defaultNackBackoffInitial
	}
	if c.NackBackoffMax == 0 {
		c.NackBackoffMax = defaultNackBackoffMax
	}
	if c.ReconnectRetrySleep == 0 {
		c.ReconnectRetrySleep = time.Second
	}
	if c.Unmarshaler == nil {
		c.Unmarshaler = EnvelopeMarshaler{}
	}
}

// Validate reports every invalid field, naming it and its allowed range. A zero field is
// valid: it means the default.
func (c SubscriberConfig) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if err := c.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.WaitTimeSeconds < 0 || c.WaitTimeSeconds > maxWaitTimeSeconds {
		bad("WaitTimeSeconds", "must be between 0 and 20 s, got %d s", c.WaitTimeSeconds)
	}
	if c.PollingInterval < 0 {
		bad("PollingInterval", "must not be negative, got %s", secondsText(c.PollingInterval))
	}
	if c.Concurrency < 0 || c.Concurrency > 1000 {
		bad("Concurrency", "must be between 1 and 1000 (0: the default), got %d", c.Concurrency)
	}
	if c.PrefetchCount < 0 || c.PrefetchCount > 1000 {
		bad("PrefetchCount", "must be between 1 and 1000 (0: the default), got %d", c.PrefetchCount)
	}
	if err := validateBackoffPolicy(c.BackoffPolicy); err != nil {
		bad("BackoffPolicy", "%s", err)
	}
	if c.AckBatchWindow < 0 || c.AckBatchWindow > time.Second {
		bad("AckBatchWindow", "must be between 0 and 1 s, got %s", c.AckBatchWindow)
	}
	if c.CloseTimeout < 0 {
		bad("CloseTimeout", "must not be negative, got %s", c.CloseTimeout)
	}
	if c.NackBackoffInitial < 0 || c.NackBackoffInitial > maxVisibilityTimeout {
		bad("NackBackoffInitial", "must be between 0 and 12 h, got %s", c.NackBackoffInitial)
	}
	if c.NackBackoffMax < 0 || c.NackBackoffMax > maxVisibilityTimeout {
		bad("NackBackoffMax", "must be between 0 and 12 h, got %s", c.NackBackoffMax)
	}
	return errors.Join(errs...)
}

// prefetchFor keeps the prefetch buffer a batch ahead of the handlers: concurrency
// rounded up to whole batches, plus one batch, at least defaultPrefetchCount.
func prefetchFor(concurrency int) int {
	batches := (concurrency+maxMessagesPerRequest-1)/maxMessagesPerRequest + 1
	return min(max(batches*maxMessagesPerRequest, defaultPrefetchCount), 1000)
}

// withoutUserinfo is an endpoint URL for an error message: credentials written into it are
// left out.
func withoutUserinfo(endpoint string) string {
	scheme, rest, ok := strings.Cut(endpoint, "://")
	if !ok {
		return endpoint
	}
	host, path, hasPath := strings.Cut(rest, "/")
	if i := strings.LastIndex(host, "@"); i >= 0 {
		host = "…@" + host[i+1:]
	}
	if hasPath {
		return scheme + "://" + host + "/" + path
	}
	return scheme + "://" + host
}
