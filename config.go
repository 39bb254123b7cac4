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
	DefaultRegion            = "us-east-1"
	DefaultWaitTimeSeconds   = 10
	MaxWaitTimeSeconds       = 20
	DefaultPollingInterval   = time.Second
	DefaultVisibilityTimeout = 1800 * time.Second
	MaxVisibilityTimeout     = 12 * time.Hour
	DefaultStsTokenTimeout   = 900 * time.Second
	MinStsTokenTimeout       = 900 * time.Second
	MaxStsTokenTimeout       = 12 * time.Hour

	// DefaultPrefetchCount lets the next ReceiveMessage of 10 go out while the handler still has
	// up to 10 messages to work through, so it does not wait for the round trip.
	DefaultPrefetchCount = 2 * MaxMessagesPerRequest

	// MaxMessagesPerRequest is SQS's limit of messages per ReceiveMessage and entries per batch call.
	MaxMessagesPerRequest = 10
	// DefaultMaxMessageSize is SQS's limit on one message body and on a whole batch request
	// (1 MiB since August 2025; it was 256 KiB before).
	DefaultMaxMessageSize = 1024 * 1024
	// LegacyMaxMessageSize is the 256 KiB limit of older SQS deployments and emulators.
	LegacyMaxMessageSize = 256 * 1024

	// defaultRequestTimeout bounds every SQS call but the wait of a long poll.
	defaultRequestTimeout = 10 * time.Second
	// defaultCloseTimeout bounds Close of a Publisher or a Subscriber.
	defaultCloseTimeout = 30 * time.Second
)

// Config is what a Publisher and a Subscriber share: where SQS is, which credentials sign the
// requests, and how Kombu queue names map to SQS queues. Its zero value plus defaults talks to
// AWS in us-east-1 with the default credential chain.
//
// The fields follow Kombu's `broker_transport_options` for the SQS transport; see
// ParseTransportOptions to build a Config from the same options a Celery app uses.
type Config struct {
	// Region is the AWS region (Kombu: `region`). Default: the AWS SDK's region (AWS_REGION,
	// ~/.aws/config), else us-east-1.
	Region string

	// EndpointURL overrides the SQS endpoint, e.g. http://127.0.0.1:9324 for ElasticMQ
	// (Kombu: `endpoint_url`, or the host of the broker URL).
	EndpointURL string
	// Host, IsSecure and Port build the endpoint the way Kombu does when a broker URL names a host
	// (`sqs://@host:port`): {https if IsSecure else http}://Host[:Port]. Ignored when EndpointURL is set.
	Host     string
	IsSecure bool
	Port     int

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
	// (Kombu: `sts_token_buffer_time`).
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
	// DoNotCreateQueues makes a missing queue an error instead of creating it.
	DoNotCreateQueues bool

	// Exchanges declares Kombu exchanges and their queue bindings. Publishing to a topic that
	// names an exchange routes each message to the bound queues as Kombu's virtual exchanges
	// do (direct, topic, fanout), with delivery_info.exchange and routing_key filled in. The
	// routing key of a message is its MetadataRoutingKey metadata.
	Exchanges map[string]Exchange

	// MaxMessageSize is the largest SQS message body accepted, and the largest batch request.
	// Default 1 MiB; set LegacyMaxMessageSize for SQS-compatible servers that still enforce 256 KiB.
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
	// BackoffPolicy and BackoffTasks: see BackoffPolicy.
	BackoffPolicy map[int]int
	BackoffTasks  []string
}

// setDefaults fills zero fields with Kombu's defaults.
func (c *Config) setDefaults() {
	if c.VisibilityTimeout == 0 {
		c.VisibilityTimeout = DefaultVisibilityTimeout
	}
	if c.StsTokenTimeout == 0 {
		c.StsTokenTimeout = DefaultStsTokenTimeout
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = defaultRequestTimeout
	}
	if c.DisableRequestTimeout {
		c.RequestTimeout = 0
	}
}

// Validate reports every invalid field, naming it and its allowed range.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if c.VisibilityTimeout < 0 || c.VisibilityTimeout > MaxVisibilityTimeout {
		bad("VisibilityTimeout", "must be between 0 and 43200 s, got %s", c.VisibilityTimeout)
	}
	if c.StsTokenTimeout != 0 && (c.StsTokenTimeout < MinStsTokenTimeout || c.StsTokenTimeout > MaxStsTokenTimeout) {
		bad("StsTokenTimeout", "must be between 900 s and 43200 s, got %s", c.StsTokenTimeout)
	}
	if c.StsTokenBufferTime < 0 || (c.StsTokenBufferTime > 0 && c.StsTokenTimeout > 0 && c.StsTokenBufferTime >= c.StsTokenTimeout) {
		bad("StsTokenBufferTime", "must be at least 0 and less than StsTokenTimeout, got %s", c.StsTokenBufferTime)
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		bad("AccessKeyID/SecretAccessKey", "must be given together")
	}
	if c.SessionToken != "" && c.AccessKeyID == "" {
		bad("SessionToken", "needs AccessKeyID and SecretAccessKey")
	}
	if c.Port < 0 || c.Port > 65535 {
		bad("Port", "must be between 0 and 65535, got %d", c.Port)
	}
	if c.EndpointURL != "" && !strings.HasPrefix(c.EndpointURL, "http://") && !strings.HasPrefix(c.EndpointURL, "https://") {
		bad("EndpointURL", "must start with http:// or https://, got %q", c.EndpointURL)
	}
	if c.MaxMessageSize < 0 || c.MaxMessageSize > DefaultMaxMessageSize {
		bad("MaxMessageSize", "must be between 1 and %d bytes, got %d", DefaultMaxMessageSize, c.MaxMessageSize)
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
			bad(field+".URL", "must be an http(s) queue URL, got %q", q.URL)
		} else if strings.HasSuffix(name, ".fifo") != strings.HasSuffix(q.URL, ".fifo") {
			bad(field+".URL", "a queue name ending in .fifo needs a FIFO queue URL (ending in .fifo), and only then")
		}
		if (q.AccessKeyID == "") != (q.SecretAccessKey == "") {
			bad(field+".AccessKeyID/SecretAccessKey", "must be given together")
		}
		if err := validateBackoffPolicy(q.BackoffPolicy); err != nil {
			bad(field+".BackoffPolicy", "%s", err)
		}
	}
	if err := validateExchanges(c.Exchanges); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// String describes the config without any credential.
func (c Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kombu.Config{Region:%q", c.Region)
	if ep := c.endpoint(); ep != "" {
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

// endpoint is the SQS endpoint URL to use, or "" for AWS's own.
func (c Config) endpoint() string {
	if c.EndpointURL != "" {
		return c.EndpointURL
	}
	if c.Host == "" {
		return ""
	}
	scheme := "http"
	if c.IsSecure {
		scheme = "https"
	}
	if c.Port != 0 {
		return fmt.Sprintf("%s://%s:%d", scheme, c.Host, c.Port)
	}
	return scheme + "://" + c.Host
}

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	Config

	// Marshaler turns Watermill messages into SQS messages. Default: KombuMarshaler.
	Marshaler Marshaler

	// CloseTimeout bounds how long Close waits for Publish calls under way; those still running
	// then are cancelled and fail. Default 30 s.
	CloseTimeout time.Duration
}

func (c *PublisherConfig) setDefaults() {
	c.Config.setDefaults()
	if c.CloseTimeout == 0 {
		c.CloseTimeout = defaultCloseTimeout
	}
	if c.Marshaler == nil {
		c.Marshaler = DefaultMarshaler()
	}
}

// Validate reports every invalid field.
func (c PublisherConfig) Validate() error {
	var errs []error
	if err := c.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Marshaler == nil {
		errs = append(errs, &ConfigError{Field: "Marshaler", Reason: "is required"})
	}
	if c.CloseTimeout < 0 {
		errs = append(errs, &ConfigError{Field: "CloseTimeout", Reason: fmt.Sprintf("must not be negative, got %s", c.CloseTimeout)})
	}
	return errors.Join(errs...)
}

// SubscriberConfig configures a Subscriber.
type SubscriberConfig struct {
	Config

	// WaitTimeSeconds is the long-poll time of each ReceiveMessage (Kombu: `wait_time_seconds`),
	// 0 to 20. Default 10. Set NoWait for 0 (short polling).
	WaitTimeSeconds int
	// NoWait makes ReceiveMessage return at once (WaitTimeSeconds 0).
	NoWait bool
	// PollingInterval is how long a topic waits after an empty receive before polling again
	// (Kombu: `polling_interval`). Default 1 s. Set NoPollingInterval to poll again at once.
	PollingInterval   time.Duration
	NoPollingInterval bool
	// PrefetchCount is how many messages per topic are held ahead of the handler. A
	// ReceiveMessage of up to 10 goes out whenever a whole batch fits, so the default 20 lets
	// the next receive overlap the handling of the current batch; 10 receives only once the
	// buffer is empty. Default 20.
	PrefetchCount int

	// BackoffPolicy and BackoffTasks apply to every queue that is not predefined with its own
	// (Kombu only has them on predefined queues). See BackoffPolicy.
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
	// DeleteMessageBatch / ChangeMessageVisibilityBatch call. Default 20 ms. Set NoAckBatching to
	// send each at once (still as a batch of one).
	AckBatchWindow time.Duration
	NoAckBatching  bool

	// HeartbeatDisabled turns off the visibility heartbeat. By default, a message received and
	// not yet acked or nacked (in the prefetch buffer or in a handler) has its visibility
	// extended by the queue's visibility timeout whenever a third of it is left, so a long task
	// is not delivered to a second consumer meanwhile.
	HeartbeatDisabled bool

	// ETADeferralDisabled turns off ETA deferral. By default, a Celery task whose `eta` lies in
	// the future is not handed to the handler: it is made invisible until its eta (at most 12 h
	// at a time) and handed over when it comes back due. No consumer holds it meanwhile, so it is
	// never redelivered early, however far the eta.
	ETADeferralDisabled bool

	// CloseTimeout bounds Close. Messages in the prefetch buffer go back to their queue at
	// once. A message a handler holds stays invisible (the heartbeat goes on) and its Ack or
	// Nack is sent while CloseTimeout lasts; only a message still unsettled when it runs out is
	// made visible again, and an Ack after that is reported and counted in FailedAcks. Close
	// returns within CloseTimeout plus a small margin (closeMargin, 2 s) whatever the network
	// does. The same holds for a subscription whose context is cancelled. Default 30 s.
	CloseTimeout time.Duration

	// ReconnectRetrySleep is the first pause after a failed receive; it doubles up to 30 s.
	// Default 1 s.
	ReconnectRetrySleep time.Duration

	// Unmarshaler turns SQS messages into Watermill messages. Default: KombuMarshaler.
	Unmarshaler Marshaler

	// KeepSQSBody sets MetadataSQSBody on every received message to the SQS body as received
	// (the Kombu envelope before any decoding, base64-encoded as Kombu sends it), for
	// debugging. It is always there, as the
	// payload, on a message that could not be decoded (MetadataDecodeError).
	KeepSQSBody bool
}

func (c *SubscriberConfig) setDefaults() {
	c.Config.setDefaults()
	if c.WaitTimeSeconds == 0 && !c.NoWait {
		c.WaitTimeSeconds = DefaultWaitTimeSeconds
	}
	if c.NoWait {
		c.WaitTimeSeconds = 0
	}
	if c.PollingInterval == 0 && !c.NoPollingInterval {
		c.PollingInterval = DefaultPollingInterval
	}
	if c.NoPollingInterval {
		c.PollingInterval = 0
	}
	if c.PrefetchCount == 0 {
		c.PrefetchCount = DefaultPrefetchCount
	}
	if c.AckBatchWindow == 0 {
		c.AckBatchWindow = 20 * time.Millisecond
	}
	if c.NoAckBatching {
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
		c.Unmarshaler = DefaultMarshaler()
	}
}

// Validate reports every invalid field, naming it and its allowed range.
func (c SubscriberConfig) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if err := c.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.WaitTimeSeconds < 0 || c.WaitTimeSeconds > MaxWaitTimeSeconds {
		bad("WaitTimeSeconds", "must be between 0 and 20, got %d", c.WaitTimeSeconds)
	}
	if c.PollingInterval < 0 {
		bad("PollingInterval", "must not be negative, got %s", c.PollingInterval)
	}
	if c.PrefetchCount < 1 || c.PrefetchCount > 1000 {
		bad("PrefetchCount", "must be between 1 and 1000, got %d", c.PrefetchCount)
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
	if c.NackBackoffInitial < 0 || c.NackBackoffInitial > MaxVisibilityTimeout {
		bad("NackBackoffInitial", "must be between 0 and 12 h, got %s", c.NackBackoffInitial)
	}
	if c.NackBackoffMax < 0 || c.NackBackoffMax > MaxVisibilityTimeout {
		bad("NackBackoffMax", "must be between 0 and 12 h, got %s", c.NackBackoffMax)
	}
	if c.Unmarshaler == nil {
		bad("Unmarshaler", "is required")
	}
	return errors.Join(errs...)
}
