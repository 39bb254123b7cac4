package kombu

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// TransportOptions is a configuration built from a Celery app's SQS settings: its
// `broker_url` (see ParseBrokerURL) and its `broker_transport_options` (see
// ParseTransportOptions). It embeds the SubscriberConfig for a Subscriber; a Publisher takes
// its Config (or PublisherConfig()):
//
//	opts, err := kombu.ParseCeleryBroker(os.Getenv("BROKER_URL"), transportOptions)
//	...
//	sub, err := kombu.NewSubscriber(opts.SubscriberConfig, logger)
//	pub, err := kombu.NewPublisher(opts.PublisherConfig(), logger)
//
// Fields left zero get the usual defaults when the Publisher or Subscriber is created; set
// any other field before that. Printing it shows no credential.
type TransportOptions struct {
	SubscriberConfig

	// SQSBase64Encoding is Kombu's `sqs_base64_encoding` (default true): whether a Kombu
	// producer base64-encodes the JSON envelope it sends. PublisherConfig sets the
	// EnvelopeMarshaler's RawEnvelope from it. Kombu consumers, and EnvelopeMarshaler, accept both
	// forms when receiving.
	SQSBase64Encoding bool
	// BodyEncoding is Kombu's `body_encoding` (default "base64"; "" when the option is null):
	// how a Kombu producer encodes the message body inside the envelope. It is informative
	// only: EnvelopeMarshaler always writes base64 bodies, and consumers, Kombu's as well, follow
	// the encoding each envelope names.
	BodyEncoding string

	// NoEffect lists, sorted, the options that were accepted but change nothing here (see
	// ParseTransportOptions), e.g. to log them once.
	NoEffect []string
}

// PublisherConfig is the configuration for a Publisher: the shared Config, and a
// EnvelopeMarshaler that writes the SQS body as Kombu would with these options (without the outer
// base64 layer when sqs_base64_encoding is false).
func (o TransportOptions) PublisherConfig() PublisherConfig {
	return PublisherConfig{Config: o.Config, Marshaler: EnvelopeMarshaler{RawEnvelope: !o.SQSBase64Encoding}}
}

// noEffectOptions are Kombu options accepted without effect.
var noEffectOptions = map[string]bool{
	// Which message attributes ReceiveMessage asks for: the Subscriber always asks for all of
	// them (ApproximateReceiveCount included), a superset of any setting.
	"fetch_message_attributes": true,
	// Read but never used by Kombu's SQS transport; the port comes from the broker URL.
	"regioninfo": true,
	"port":       true,
	// Kombu's virtual transport routes messages with no route there; a Publisher always names
	// its queue.
	"deadletter_queue": true,
	// Kombu's connection retry policy; SQS calls here are retried by the AWS SDK's retryer
	// (client-config "retries").
	"max_retries":             true,
	"interval_start":          true,
	"interval_step":           true,
	"interval_max":            true,
	"connect_retries_timeout": true,
}

// botocoreConfigOptions are the arguments of botocore.config.Config (botocore 1.44), to tell
// an option this package does not map from a misspelt one.
var botocoreConfigOptions = map[string]bool{
	"account_id_endpoint_mode": true, "auth_scheme_preference": true, "client_cert": true,
	"client_context_params": true, "connect_timeout": true, "defaults_mode": true,
	"disable_request_compression": true, "endpoint_discovery_enabled": true,
	"ignore_configured_endpoint_urls": true, "inject_host_prefix": true, "max_pool_connections": true,
	"parameter_validation": true, "proxies": true, "proxies_config": true, "read_timeout": true,
	"region_name": true, "request_checksum_calculation": true, "request_min_compression_size_bytes": true,
	"response_checksum_validation": true, "retries": true, "s3": true, "s3_disable_express_session_auth": true,
	"signature_version": true, "sigv4a_signing_region_set": true, "tcp_keepalive": true,
	"use_dualstack_endpoint": true, "use_fips_endpoint": true, "user_agent": true,
	"user_agent_appid": true, "user_agent_extra": true,
}

// ParseTransportOptions builds a configuration from Celery's `broker_transport_options` for
// the SQS transport, keys spelt as Kombu spells them. It is applyTransportOptions on an empty
// Config; see there for the options.
func ParseTransportOptions(opts map[string]any) (TransportOptions, error) {
	return applyTransportOptions(Config{}, opts)
}

// ParseTransportOptionsJSON is ParseTransportOptions for the options written as a JSON object,
// e.g. read from an environment variable. Object keys of `backoff_policy` are strings there
// ("1", "2", ...) and are read as numbers.
func ParseTransportOptionsJSON(data []byte) (TransportOptions, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var opts map[string]any
	if err := dec.Decode(&opts); err != nil {
		return TransportOptions{}, &ConfigError{Field: "broker_transport_options", Reason: "is not a JSON object: " + jsonErrorReason(err)}
	}
	if dec.More() {
		return TransportOptions{}, &ConfigError{Field: "broker_transport_options", Reason: "has data after the JSON object"}
	}
	if opts == nil {
		return TransportOptions{}, &ConfigError{Field: "broker_transport_options", Reason: "is not a JSON object"}
	}
	return ParseTransportOptions(opts)
}

// jsonErrorReason describes a JSON syntax error without quoting the input, which may hold
// credentials.
func jsonErrorReason(err error) string {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return fmt.Sprintf("syntax error at byte %d", syntax.Offset)
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return "the top level is a " + typeErr.Value
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of input"
	}
	return "malformed JSON"
}

// ParseCeleryBroker builds a configuration from a Celery app's `broker_url` and
// `broker_transport_options`: ParseBrokerURL, then applyTransportOptions on the result.
// Options given as JSON can be decoded with encoding/json into a map[string]any first.
func ParseCeleryBroker(brokerURL string, transportOptions map[string]any) (TransportOptions, error) {
	cfg, err := ParseBrokerURL(brokerURL)
	if err != nil {
		return TransportOptions{}, err
	}
	return applyTransportOptions(cfg, transportOptions)
}

// applyTransportOptions applies Celery's `broker_transport_options` for the SQS transport on
// top of base (e.g. the Config from ParseBrokerURL). Keys are spelt as Kombu spells them; a key
// Kombu does not know, or a value of the wrong type or out of range, is an error naming it
// (errors.Is(err, ErrInvalidConfig)); all of them are reported at once, and no error shows a
// credential.
//
// Numbers may be Go integers or floats, json.Number, or numeric strings; options Kombu reads as
// whole seconds are truncated the way Kombu's int(float(x)) does. A time.Duration is taken as
// is. A null (nil) value counts as not given, except for sqs_base64_encoding and
// body_encoding, where, as in Kombu, it means false and no encoding.
//
// Options and their fields (docs/transport-options.md has the full table):
//
//	region                   Config.Region
//	endpoint_url             Config.EndpointURL (Kombu 5.7 ignores this option and takes the
//	                         endpoint only from the broker URL's host; here it wins over that host)
//	is_secure                https for the broker URL's host (Config.EndpointURL); without
//	                         one, or with endpoint_url, it has no effect
//	session_token            Config.SessionToken, with the broker URL's key and secret (Kombu
//	                         documents this option but never reads it)
//	queue_name_prefix        Config.QueueNamePrefix
//	predefined_queues        Config.PredefinedQueues: url, access_key_id, secret_access_key,
//	                         session_token (Kombu never reads it), region, backoff_policy,
//	                         backoff_tasks
//	visibility_timeout       Config.VisibilityTimeout, 1 to 43200 s (Kombu allows 0; here 0 is an
//	                         error, a zero field meaning the default of 1800 s)
//	sqs-creation-attributes  Config.CreationAttributes (numbers and booleans become strings)
//	queue_tags               Config.QueueTags
//	sts_role_arn             Config.StsRoleArn
//	sts_token_timeout        Config.StsTokenTimeout, 900 to 43200 s
//	sts_token_buffer_time    Config.StsTokenBufferTime, 0 to below sts_token_timeout
//	client-config            connect_timeout and max_pool_connections: Config.HTTPClient;
//	                         read_timeout: Config.RequestTimeout; retries {max_attempts,
//	                         total_max_attempts, mode}: Config.RetryMaxAttempts and RetryMode
//	wait_time_seconds        SubscriberConfig.WaitTimeSeconds (0 sets DisableLongPolling), 0 to 20
//	polling_interval         SubscriberConfig.PollingInterval (0 sets DisablePollingInterval)
//	backoff_policy/_tasks    SubscriberConfig.BackoffPolicy and BackoffTasks, for every queue
//	                         without its own (Kombu reads them only on predefined queues)
//	sqs_base64_encoding      TransportOptions.SQSBase64Encoding (PublisherConfig's EnvelopeMarshaler)
//	body_encoding            TransportOptions.BodyEncoding (informative only)
//	supports_fanout          Config.SupportsFanout (fanout exchanges through SNS)
//	predefined_exchanges     fanout exchanges in Config.Exchanges with TopicARN (arn),
//	                         AccessKeyID, SecretAccessKey, SessionToken; sets
//	                         DisableTopicCreation (no effect without supports_fanout, as in Kombu)
//
// Accepted without effect, and listed in TransportOptions.NoEffect: fetch_message_attributes
// (the Subscriber fetches every attribute), regioninfo and port (Kombu reads but never uses
// them), deadletter_queue, and Kombu's connection retry policy max_retries, interval_start,
// interval_step, interval_max and connect_retries_timeout (the AWS SDK retries SQS calls).
//
// Where this package departs from Kombu 5.7:
//   - STS: Kombu assumes sts_role_arn only for predefined queues, with the ambient AWS
//     credentials, and shares one expiry among all queues. Here every SQS client assumes the
//     role, with its own credentials (the queue's keys, else the broker URL's, else the AWS
//     SDK's default chain) as the source, and refreshes on its own through an
//     aws.CredentialsCache, sts_token_buffer_time (default one minute) before expiry.
//   - Queue URLs are looked up with GetQueueUrl (permission sqs:GetQueueUrl) where Kombu lists
//     queues with ListQueues; predefined queues are never looked up in either.
//   - A predefined queue's region, and its session_token, are honoured.
//   - backoff_policy keys may be strings ("1"), as JSON writes them; Kombu compares them with
//     integer receive counts and so never applies such a policy.
func applyTransportOptions(base Config, opts map[string]any) (TransportOptions, error) {
	p := &optionParser{}
	var secure *bool        // is_secure
	endpointOption := false // endpoint_url was given
	res := TransportOptions{SubscriberConfig: SubscriberConfig{Config: base}, SQSBase64Encoding: true, BodyEncoding: "base64"}
	cfg := &res.Config

	for _, key := range sortedKeys(opts) {
		v := opts[key]
		if noEffectOptions[key] {
			res.NoEffect = append(res.NoEffect, key)
			continue
		}
		switch key {
		case "sqs_base64_encoding":
			if v == nil {
				res.SQSBase64Encoding = false
			} else if b, ok := p.boolean(key, v); ok {
				res.SQSBase64Encoding = b
			}
			continue
		case "body_encoding":
			switch s, ok := v.(string); {
			case v == nil || (ok && s == ""):
				res.BodyEncoding = ""
			case ok && s == "base64":
				res.BodyEncoding = s
			default:
				p.fail(key, `must be "base64" or null (no encoding), the codecs Kombu knows`)
			}
			continue
		}
		if !effectiveOptions[key] {
			p.fail(key, "is not a Kombu SQS transport option")
			continue
		}
		if v == nil {
			continue // like an option not given
		}
		switch key {
		case "region":
			if s, ok := p.str(key, v); ok && s != "" {
				cfg.Region = s
			}
		case "endpoint_url":
			if s, ok := p.str(key, v); ok && s != "" {
				cfg.EndpointURL, endpointOption = s, true
			}
		case "is_secure":
			if b, ok := p.boolean(key, v); ok {
				secure = &b
			}
		case "session_token":
			if s, ok := p.credential(key, v); ok {
				cfg.SessionToken = s
			}
		case "queue_name_prefix":
			if s, ok := p.str(key, v); ok {
				cfg.QueueNamePrefix = s
			}
		case "predefined_queues":
			cfg.PredefinedQueues = p.predefinedQueues(key, v)
		case "visibility_timeout":
			if s, ok := v.(string); ok && s == "" {
				continue // Kombu: the default
			}
			if d, ok := p.duration(key, v, true); ok {
				if d == 0 {
					p.fail(key, "must be at least 1 s (Kombu accepts 0; here 0 would mean the default of 1800 s)")
				} else {
					cfg.VisibilityTimeout = d
				}
			}
		case "sqs-creation-attributes":
			if m, ok := p.stringMap(key, v); ok {
				cfg.CreationAttributes = m
			}
		case "queue_tags":
			if m, ok := p.stringMap(key, v); ok {
				cfg.QueueTags = m
			}
		case "sts_role_arn":
			if s, ok := p.str(key, v); ok && s != "" {
				cfg.StsRoleArn = s
			}
		case "sts_token_timeout":
			if d, ok := p.duration(key, v, true); ok {
				cfg.StsTokenTimeout = d
			}
		case "sts_token_buffer_time":
			if d, ok := p.duration(key, v, false); ok {
				cfg.StsTokenBufferTime = d
			}
		case "client-config":
			p.clientConfig(key, v, cfg)
		case "wait_time_seconds":
			if d, ok := p.duration(key, v, true); ok {
				res.WaitTimeSeconds = int(d / time.Second)
				res.DisableLongPolling = res.WaitTimeSeconds == 0
			}
		case "polling_interval":
			if d, ok := p.duration(key, v, false); ok {
				res.PollingInterval = d
				res.DisablePollingInterval = d == 0
			}
		case "backoff_policy":
			res.BackoffPolicy = p.backoffPolicy(key, v)
		case "backoff_tasks":
			if l, ok := p.stringList(key, v); ok {
				res.BackoffTasks = l
			}
		case "supports_fanout":
			if b, ok := p.boolean(key, v); ok {
				cfg.SupportsFanout = b
			}
		case "predefined_exchanges":
			p.predefinedExchanges(key, v)
		}
	}
	p.applyPredefinedExchanges(cfg)
	// is_secure picks the scheme of the broker URL's host, as in Kombu; it changes nothing
	// else.
	if secure != nil {
		if rest, ok := strings.CutPrefix(base.EndpointURL, "http://"); ok && !endpointOption {
			if *secure {
				cfg.EndpointURL = "https://" + rest
			}
		} else {
			p.noEffect = append(p.noEffect, "is_secure")
		}
	}
	// The ranges and the rules between fields are Config.Validate's, checked once here on the
	// result (with the defaults the constructors would apply) and reported under the names of
	// the options.
	check := res.SubscriberConfig
	check.setDefaults()
	p.validated(check.Validate())
	if len(p.errs) > 0 {
		return TransportOptions{}, errors.Join(p.errs...)
	}
	res.NoEffect = append(res.NoEffect, p.noEffect...)
	sort.Strings(res.NoEffect)
	return res, nil
}

// effectiveOptions are the options applyTransportOptions maps onto a field, besides
// sqs_base64_encoding and body_encoding.
var effectiveOptions = map[string]bool{
	"region": true, "endpoint_url": true, "is_secure": true, "session_token": true,
	"queue_name_prefix": true, "predefined_queues": true, "visibility_timeout": true,
	"sqs-creation-attributes": true, "queue_tags": true, "sts_role_arn": true,
	"sts_token_timeout": true, "sts_token_buffer_time": true, "client-config": true,
	"wait_time_seconds": true, "polling_interval": true, "backoff_policy": true, "backoff_tasks": true,
	"supports_fanout": true, "predefined_exchanges": true,
}

// predefinedQueueKeys are the keys of a `predefined_queues` entry.
var predefinedQueueKeys = []string{
	"url", "access_key_id", "secret_access_key", "session_token", "region", "backoff_policy", "backoff_tasks",
}

func (p *optionParser) predefinedQueues(key string, v any) map[string]PredefinedQueue {
	entries, ok := p.namedEntries(key, "queue", v, predefinedQueueKeys)
	if !ok {
		return nil
	}
	queues := make(map[string]PredefinedQueue, len(entries))
	for _, e := range entries {
		var q PredefinedQueue
		for _, o := range e.options {
			switch o.name {
			case "url":
				if s, ok := p.str(o.key, o.value); ok {
					q.URL = s
				}
			case "access_key_id":
				q.AccessKeyID, _ = p.credential(o.key, o.value)
			case "secret_access_key":
				q.SecretAccessKey, _ = p.credential(o.key, o.value)
			case "session_token":
				q.SessionToken, _ = p.credential(o.key, o.value)
			case "region":
				q.Region, _ = p.str(o.key, o.value)
			case "backoff_policy":
				q.BackoffPolicy = p.backoffPolicy(o.key, o.value)
			case "backoff_tasks":
				q.BackoffTasks, _ = p.stringList(o.key, o.value)
			}
		}
		queues[e.name] = q
	}
	return queues
}

// namedEntry is one entry of a mapping of names to options, as predefined_queues and
// predefined_exchanges are written; key is its option path for messages.
type namedEntry struct {
	name, key string
	options   []namedOption
}

// namedOption is one option of a namedEntry that is set (not null).
type namedOption struct {
	name, key string
	value     any
}

// namedEntries reads a mapping of names to option mappings. Names must be non-empty strings
// and options among allowed; what is wrong is reported and left out. kind names an entry in
// the messages ("queue": "queue names must be...", "an option of a predefined queue").
func (p *optionParser) namedEntries(key, kind string, v any, allowed []string) ([]namedEntry, bool) {
	entries, ok := p.mapping(key, v)
	if !ok {
		return nil, false
	}
	out := make([]namedEntry, 0, len(entries))
	for _, e := range entries {
		name, ok := e.key.(string)
		if !ok || name == "" {
			p.fail(key, "%s names must be non-empty strings", kind)
			continue
		}
		ekey := key + "[" + strconv.Quote(name) + "]"
		fields, ok := p.mapping(ekey, e.value)
		if !ok {
			continue
		}
		entry := namedEntry{name: name, key: ekey}
		for _, f := range fields {
			fname, _ := f.key.(string)
			fkey := ekey + "[" + strconv.Quote(fname) + "]"
			if !slices.Contains(allowed, fname) {
				p.fail(fkey, "is not an option of a predefined %s (%s)", kind, strings.Join(allowed, ", "))
				continue
			}
			if f.value != nil {
				entry.options = append(entry.options, namedOption{name: fname, key: fkey, value: f.value})
			}
		}
		out = append(out, entry)
	}
	return out, true
}

func (p *optionParser) backoffPolicy(key string, v any) map[int]int {
	entries, ok := p.mapping(key, v)
	if !ok {
		return nil
	}
	policy := make(map[int]int, len(entries))
	for _, e := range entries {
		count, ok := integerKey(e.key)
		if !ok {
			p.fail(key, "keys must be receive counts (whole numbers, or strings of them, from 1)")
			continue
		}
		ekey := fmt.Sprintf("%s[%d]", key, count)
		secs, ok := p.duration(ekey, e.value, true)
		if !ok {
			continue
		}
		policy[count] = int(secs / time.Second)
	}
	return policy
}

// clientConfig maps botocore Config arguments onto cfg.
func (p *optionParser) clientConfig(key string, v any, cfg *Config) {
	entries, ok := p.mapping(key, v)
	if !ok {
		return
	}
	var connectTimeout time.Duration
	var maxPool int
	for _, e := range entries {
		name, _ := e.key.(string)
		ekey := key + "[" + strconv.Quote(name) + "]"
		if e.value == nil {
			continue
		}
		switch name {
		case "connect_timeout":
			connectTimeout, _ = p.seconds(ekey, e.value, false, time.Millisecond, time.Hour, "")
		case "read_timeout":
			if d, ok := p.seconds(ekey, e.value, false, time.Millisecond, time.Hour, ""); ok {
				cfg.RequestTimeout = d
			}
		case "max_pool_connections":
			maxPool, _ = p.integer(ekey, e.value, 1, 10000)
		case "retries":
			p.retries(ekey, e.value, cfg)
		case "parameter_validation", "tcp_keepalive":
			// The SDK always validates parameters, and Go's dialer keeps TCP connections alive.
			if _, ok := p.boolean(ekey, e.value); ok {
				p.noEffect = append(p.noEffect, ekey)
			}
		default:
			if botocoreConfigOptions[name] {
				p.fail(ekey, "is a botocore option this package does not map; set Config.HTTPClient, Config.AWSConfig or Config.SQSOptions instead")
			} else {
				p.fail(ekey, "is not a botocore Config option")
			}
		}
	}
	if connectTimeout > 0 || maxPool > 0 {
		if cfg.HTTPClient != nil {
			p.fail(key, "connect_timeout and max_pool_connections cannot apply to an HTTPClient already set")
			return
		}
		b := awshttp.NewBuildableClient()
		if connectTimeout > 0 {
			b = b.WithDialerOptions(func(d *net.Dialer) { d.Timeout = connectTimeout }).
				WithTransportOptions(func(t *http.Transport) { t.TLSHandshakeTimeout = connectTimeout })
		}
		if maxPool > 0 {
			b = b.WithTransportOptions(func(t *http.Transport) {
				t.MaxIdleConnsPerHost = maxPool
				if t.MaxIdleConns != 0 && t.MaxIdleConns < maxPool {
					t.MaxIdleConns = maxPool
				}
			})
		}
		// The SDK's default transport with these changes; like the SDK's own client, it
		// returns redirects rather than following them.
		cfg.HTTPClient = &http.Client{
			Transport:     b.GetTransport(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
}

func (p *optionParser) retries(key string, v any, cfg *Config) {
	entries, ok := p.mapping(key, v)
	if !ok {
		return
	}
	attempts, total := 0, 0
	for _, e := range entries {
		name, _ := e.key.(string)
		ekey := key + "[" + strconv.Quote(name) + "]"
		if e.value == nil {
			continue
		}
		switch name {
		case "max_attempts":
			// botocore counts retries, not the first attempt.
			if n, ok := p.integer(ekey, e.value, 0, 100); ok {
				attempts = n + 1
			}
		case "total_max_attempts":
			if n, ok := p.integer(ekey, e.value, 1, 101); ok {
				total = n
			}
		case "mode":
			s, ok := p.str(ekey, e.value)
			if !ok {
				continue
			}
			switch s {
			case "legacy", "standard":
				// The Go SDK has no legacy mode: its standard mode retries the same errors
				// with jittered exponential backoff.
				cfg.RetryMode = aws.RetryModeStandard
			case "adaptive":
				cfg.RetryMode = aws.RetryModeAdaptive
			default:
				p.fail(ekey, `must be "legacy", "standard" or "adaptive", got %q`, s)
			}
		default:
			p.fail(ekey, "is not a botocore retries option (max_attempts, total_max_attempts, mode)")
		}
	}
	// As in botocore, total_max_attempts wins over max_attempts.
	if total > 0 {
		cfg.RetryMaxAttempts = total
	} else if attempts > 0 {
		cfg.RetryMaxAttempts = attempts
	}
}
