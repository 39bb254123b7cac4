package kombu_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// celeryOptions is broker_transport_options as a Celery app would write them, every option set.
func celeryOptions() map[string]any {
	return map[string]any{
		"region":                "eu-west-1",
		"queue_name_prefix":     "prod-",
		"visibility_timeout":    3600,
		"wait_time_seconds":     20,
		"polling_interval":      0.5,
		"sts_role_arn":          "arn:aws:iam::123456789012:role/celery",
		"sts_token_timeout":     3600,
		"sts_token_buffer_time": 120,
		"is_secure":             true,
		"endpoint_url":          "https://sqs.eu-west-1.amazonaws.com",
		"session_token":         "top-level-token",
		"sqs-creation-attributes": map[string]any{
			"KmsMasterKeyId":         "alias/aws/sqs",
			"MessageRetentionPeriod": 1209600,
		},
		"queue_tags":     map[string]string{"Team": "backend"},
		"backoff_policy": map[int]int{1: 10, 2: 20},
		"backoff_tasks":  []string{"proj.tasks.add"},
		"client-config": map[string]any{
			"connect_timeout": 5,
			"read_timeout":    30,
			"retries":         map[string]any{"max_attempts": 4, "mode": "adaptive"},
		},
		"predefined_queues": map[string]any{
			"celery": map[string]any{
				"url":               "https://sqs.eu-west-1.amazonaws.com/123456789012/celery",
				"access_key_id":     "AKIDCELERY",
				"secret_access_key": "celery-secret",
				"backoff_policy":    map[int]int{1: 10, 2: 20, 3: 40, 4: 80, 5: 320, 6: 640},
				"backoff_tasks":     []string{"svc.tasks.tasks.task1"},
			},
			"jobs.fifo": map[string]any{
				"url":    "https://sqs.us-west-2.amazonaws.com/123456789012/jobs.fifo",
				"region": "us-west-2",
			},
		},
		"sqs_base64_encoding":      false,
		"fetch_message_attributes": []string{"All"},
		"supports_fanout":          false,
		"port":                     443,
	}
}

func TestParseTransportOptions(t *testing.T) {
	o, err := kombu.ParseTransportOptions(celeryOptions())
	require.NoError(t, err)

	require.Equal(t, "eu-west-1", o.Region)
	require.Equal(t, "prod-", o.QueueNamePrefix)
	require.Equal(t, time.Hour, o.VisibilityTimeout)
	require.Equal(t, 20, o.WaitTimeSeconds)
	require.False(t, o.DisableLongPolling)
	require.Equal(t, 500*time.Millisecond, o.PollingInterval)
	require.Equal(t, "arn:aws:iam::123456789012:role/celery", o.StsRoleArn)
	require.Equal(t, time.Hour, o.StsTokenTimeout)
	require.Equal(t, 2*time.Minute, o.StsTokenBufferTime)
	require.Equal(t, "https://sqs.eu-west-1.amazonaws.com", o.EndpointURL)
	require.Equal(t, "top-level-token", o.SessionToken)
	require.Equal(t, map[string]string{"KmsMasterKeyId": "alias/aws/sqs", "MessageRetentionPeriod": "1209600"}, o.CreationAttributes)
	require.Equal(t, map[string]string{"Team": "backend"}, o.QueueTags)
	require.Equal(t, map[int]int{1: 10, 2: 20}, o.BackoffPolicy)
	require.Equal(t, []string{"proj.tasks.add"}, o.BackoffTasks)
	require.Equal(t, 30*time.Second, o.RequestTimeout)
	require.Equal(t, 5, o.RetryMaxAttempts, "botocore's max_attempts counts retries only")
	require.Equal(t, aws.RetryModeAdaptive, o.RetryMode)
	require.NotNil(t, o.HTTPClient)
	tr, ok := o.HTTPClient.Transport.(*http.Transport)
	require.True(t, ok, "%T", o.HTTPClient.Transport)
	require.Equal(t, 5*time.Second, tr.TLSHandshakeTimeout)

	require.Equal(t, map[string]kombu.PredefinedQueue{
		"celery": {
			URL:         "https://sqs.eu-west-1.amazonaws.com/123456789012/celery",
			AccessKeyID: "AKIDCELERY", SecretAccessKey: "celery-secret",
			BackoffPolicy: map[int]int{1: 10, 2: 20, 3: 40, 4: 80, 5: 320, 6: 640},
			BackoffTasks:  []string{"svc.tasks.tasks.task1"},
		},
		"jobs.fifo": {URL: "https://sqs.us-west-2.amazonaws.com/123456789012/jobs.fifo", Region: "us-west-2"},
	}, o.PredefinedQueues)

	require.False(t, o.SQSBase64Encoding)
	require.Equal(t, "base64", o.BodyEncoding)
	require.Equal(t, []string{"fetch_message_attributes", "is_secure", "port"}, o.NoEffect, "is_secure has no effect with endpoint_url")
	require.False(t, o.SupportsFanout, "supports_fanout: false (fanout exchanges stay client-side)")

	pc := o.PublisherConfig()
	require.Equal(t, o.Config.String(), pc.Config.String())
	require.Equal(t, kombu.EnvelopeMarshaler{RawEnvelope: true}, pc.Marshaler)

	// The result is valid once the Subscriber's defaults apply (the session token needs the
	// broker URL's keys).
	cfg := o.SubscriberConfig
	cfg.AccessKeyID, cfg.SecretAccessKey = "AKIDURL", "url-secret"
	cfg.PrefetchCount = 10
	cfg.Unmarshaler = kombu.EnvelopeMarshaler{}
	require.NoError(t, cfg.Validate())
}

func TestParseTransportOptionsDefaults(t *testing.T) {
	o, err := kombu.ParseTransportOptions(nil)
	require.NoError(t, err)
	require.Equal(t, kombu.SubscriberConfig{}, o.SubscriberConfig)
	require.True(t, o.SQSBase64Encoding, "Kombu's default")
	require.Equal(t, "base64", o.BodyEncoding, "Kombu's default")
	require.Empty(t, o.NoEffect)
	require.Equal(t, kombu.EnvelopeMarshaler{}, o.PublisherConfig().Marshaler)

	// Null counts as not given, except where Kombu reads it as false / no encoding.
	o, err = kombu.ParseTransportOptions(map[string]any{
		"region": nil, "visibility_timeout": nil, "predefined_queues": nil, "sts_role_arn": "",
		"sqs_base64_encoding": nil, "body_encoding": nil, "visibility_timeout_unused": nil,
	})
	require.Error(t, err, "an unknown key is an error even when null")
	require.Contains(t, err.Error(), "visibility_timeout_unused")
	o, err = kombu.ParseTransportOptions(map[string]any{
		"region": nil, "visibility_timeout": "", "predefined_queues": nil, "sts_role_arn": "",
		"sqs_base64_encoding": nil, "body_encoding": nil,
	})
	require.NoError(t, err)
	require.Equal(t, kombu.SubscriberConfig{}, o.SubscriberConfig)
	require.False(t, o.SQSBase64Encoding)
	require.Equal(t, "", o.BodyEncoding)

	o, err = kombu.ParseTransportOptions(map[string]any{"wait_time_seconds": 0, "polling_interval": "0"})
	require.NoError(t, err)
	require.True(t, o.DisableLongPolling)
	require.True(t, o.DisablePollingInterval)
	require.Zero(t, o.WaitTimeSeconds)
	require.Zero(t, o.PollingInterval)
}

// TestParseTransportOptionsNumbers checks the forms a number may take, and Kombu's
// int(float(x)) truncation for whole seconds.
func TestParseTransportOptionsNumbers(t *testing.T) {
	for _, v := range []any{60, int8(60), int64(60), uint16(60), 60.0, float32(60.9), 60.99, "60", " 60.5 ", "6e1", json.Number("60"), json.Number("60.7"), time.Minute} {
		o, err := kombu.ParseTransportOptions(map[string]any{"visibility_timeout": v})
		require.NoError(t, err, "%T %v", v, v)
		require.Equal(t, time.Minute, o.VisibilityTimeout, "%T %v", v, v)
	}
	for v, want := range map[any]time.Duration{0.25: 250 * time.Millisecond, "1.5": 1500 * time.Millisecond, 2: 2 * time.Second, json.Number("0.1"): 100 * time.Millisecond} {
		o, err := kombu.ParseTransportOptions(map[string]any{"polling_interval": v})
		require.NoError(t, err)
		require.Equal(t, want, o.PollingInterval, "%v", v)
	}
	for v, want := range map[any]string{true: "https", false: "http", "True": "https", "false": "http", "yes": "https", "0": "http", 1: "https", 0.0: "http"} {
		o, err := kombu.ParseCeleryBroker("sqs://@localhost:9324", map[string]any{"is_secure": v})
		require.NoError(t, err, "%v", v)
		require.Equal(t, want+"://localhost:9324", o.EndpointURL, "%v", v)
	}
}

func TestParseTransportOptionsJSON(t *testing.T) {
	o, err := kombu.ParseTransportOptionsJSON([]byte(`{
		"region": "eu-central-1",
		"visibility_timeout": "120.9",
		"wait_time_seconds": 5,
		"polling_interval": 0.1,
		"sts_token_timeout": 900.0,
		"predefined_queues": {
			"celery": {
				"url": "https://sqs.eu-central-1.amazonaws.com/123456789012/celery",
				"access_key_id": "AKIDJSON", "secret_access_key": "json-secret", "session_token": "json-token",
				"backoff_policy": {"1": 10, "2": 20.0, "3": "40"},
				"backoff_tasks": ["a.b", "c.d"]
			}
		},
		"backoff_policy": {"1": 5},
		"client-config": {"retries": {"total_max_attempts": 7, "max_attempts": 2, "mode": "legacy"}, "tcp_keepalive": true}
	}`))
	require.NoError(t, err)
	require.Equal(t, "eu-central-1", o.Region)
	require.Equal(t, 120*time.Second, o.VisibilityTimeout)
	require.Equal(t, 5, o.WaitTimeSeconds)
	require.Equal(t, 100*time.Millisecond, o.PollingInterval)
	require.Equal(t, 900*time.Second, o.StsTokenTimeout)
	q := o.PredefinedQueues["celery"]
	require.Equal(t, map[int]int{1: 10, 2: 20, 3: 40}, q.BackoffPolicy)
	require.Equal(t, []string{"a.b", "c.d"}, q.BackoffTasks)
	require.Equal(t, "json-token", q.SessionToken)
	require.Equal(t, map[int]int{1: 5}, o.BackoffPolicy)
	require.Equal(t, 7, o.RetryMaxAttempts, "total_max_attempts wins, as in botocore")
	require.Equal(t, aws.RetryModeStandard, o.RetryMode, "no legacy mode in the Go SDK")
	require.Equal(t, []string{`client-config["tcp_keepalive"]`}, o.NoEffect)

	for _, bad := range []string{``, `[]`, `null`, `{"region": "x"} {}`, `{"region": `, `"x"`} {
		_, err := kombu.ParseTransportOptionsJSON([]byte(bad))
		require.Error(t, err, "%q", bad)
		require.ErrorIs(t, err, kombu.ErrInvalidConfig)
		require.Contains(t, err.Error(), "broker_transport_options")
	}
}

func TestParseTransportOptionsErrors(t *testing.T) {
	cases := []struct {
		name string
		opts map[string]any
		want []string // substrings of the error
	}{
		{"unknown key", map[string]any{"visiblity_timeout": 10}, []string{"visiblity_timeout", "not a Kombu SQS transport option"}},
		{"visibility range", map[string]any{"visibility_timeout": 50000}, []string{"visibility_timeout", "between 0 and 43200 s", "50000 s"}},
		{"visibility zero", map[string]any{"visibility_timeout": 0}, []string{"visibility_timeout", "at least 1 s", "1800"}},
		{"visibility type", map[string]any{"visibility_timeout": []int{1}}, []string{"visibility_timeout", "a list"}},
		{"visibility text", map[string]any{"visibility_timeout": "soon"}, []string{"visibility_timeout", "a string"}},
		{"visibility nan", map[string]any{"visibility_timeout": "nan"}, []string{"visibility_timeout"}},
		{"wait range", map[string]any{"wait_time_seconds": 21}, []string{"wait_time_seconds", "between 0 and 20 s", "got 21 s"}},
		{"wait negative", map[string]any{"wait_time_seconds": -1}, []string{"wait_time_seconds", "between 0 and 20 s"}},
		{"polling negative", map[string]any{"polling_interval": -0.5}, []string{"polling_interval", "must not be negative"}},
		{"sts timeout low", map[string]any{"sts_token_timeout": 600}, []string{"sts_token_timeout", "between 900 s and 43200 s"}},
		{"sts timeout high", map[string]any{"sts_token_timeout": 43201}, []string{"sts_token_timeout", "43200"}},
		{"sts buffer", map[string]any{"sts_token_buffer_time": 900}, []string{"sts_token_buffer_time", "less than sts_token_timeout (900 s)"}},
		{"sts buffer with timeout", map[string]any{"sts_token_timeout": 1000, "sts_token_buffer_time": 1000}, []string{"sts_token_buffer_time", "(1000 s)"}},
		{"sts arn", map[string]any{"sts_role_arn": "celery-role"}, []string{"sts_role_arn", "IAM role ARN"}},
		{"region type", map[string]any{"region": 1}, []string{"region", "must be a string, got a number"}},
		{"endpoint", map[string]any{"endpoint_url": "localhost:9324"}, []string{"endpoint_url", "http:// or https://"}},
		{"is_secure", map[string]any{"is_secure": "maybe"}, []string{"is_secure", "true or false"}},
		{"body_encoding", map[string]any{"body_encoding": "hex"}, []string{"body_encoding", "base64"}},
		{"creation attributes", map[string]any{"sqs-creation-attributes": map[string]any{"RedrivePolicy": map[string]any{"x": 1}}}, []string{`sqs-creation-attributes["RedrivePolicy"]`, "must be a string"}},
		{"tags type", map[string]any{"queue_tags": []string{"a"}}, []string{"queue_tags", "a mapping"}},
		{"backoff keys", map[string]any{"backoff_policy": map[string]any{"first": 10}}, []string{"backoff_policy", "receive counts"}},
		{"backoff zero", map[string]any{"backoff_policy": map[int]int{0: 10}}, []string{"backoff_policy", "at least 1"}},
		{"backoff seconds", map[string]any{"backoff_policy": map[string]any{"1": 50000}}, []string{"backoff_policy", "43200", "receive count 1"}},
		{"backoff tasks", map[string]any{"backoff_tasks": "proj.tasks.add"}, []string{"backoff_tasks", "list of strings"}},
		{"backoff task item", map[string]any{"backoff_tasks": []any{"a", 2}}, []string{"backoff_tasks[1]", "must be a string"}},
		{"predefined type", map[string]any{"predefined_queues": []string{"celery"}}, []string{"predefined_queues", "a mapping"}},
		{"predefined url", map[string]any{"predefined_queues": map[string]any{"celery": map[string]any{}}}, []string{`predefined_queues["celery"]["url"]`, "required"}},
		{"predefined scheme", map[string]any{"predefined_queues": map[string]any{"celery": map[string]any{"url": "sqs.amazonaws.com/1/celery"}}}, []string{`predefined_queues["celery"]["url"]`, "http:// or https://"}},
		{"predefined fifo name", map[string]any{"predefined_queues": map[string]any{"jobs.fifo": map[string]any{"url": "https://x/1/jobs"}}}, []string{`predefined_queues["jobs.fifo"]["url"]`, "FIFO"}},
		{"predefined fifo url", map[string]any{"predefined_queues": map[string]any{"jobs": map[string]any{"url": "https://x/1/jobs.fifo"}}}, []string{`predefined_queues["jobs"]["url"]`, "queue name must end in .fifo"}},
		{"predefined unknown", map[string]any{"predefined_queues": map[string]any{"celery": map[string]any{"url": "https://x/1/celery", "access_key": "AKID"}}}, []string{`predefined_queues["celery"]["access_key"]`, "not an option of a predefined queue"}},
		{"predefined half keys", map[string]any{"predefined_queues": map[string]any{"celery": map[string]any{"url": "https://x/1/celery", "access_key_id": "AKID"}}}, []string{`predefined_queues["celery"]["access_key_id"] and ["secret_access_key"] must be given together`}},
		{"predefined token alone", map[string]any{"predefined_queues": map[string]any{"celery": map[string]any{"url": "https://x/1/celery", "session_token": "tok"}}}, []string{`predefined_queues["celery"]["session_token"] needs access_key_id and secret_access_key`}},
		{"predefined backoff", map[string]any{"predefined_queues": map[string]any{"celery": map[string]any{"url": "https://x/1/celery", "backoff_policy": map[int]int{1: -1}}}}, []string{`predefined_queues["celery"]["backoff_policy"]`, "between 0 and 43200", "receive count 1"}},
		{"client-config type", map[string]any{"client-config": "fast"}, []string{"client-config", "a mapping"}},
		{"client-config unmapped", map[string]any{"client-config": map[string]any{"proxies": map[string]any{}}}, []string{`client-config["proxies"]`, "does not map", "SQSOptions"}},
		{"client-config unknown", map[string]any{"client-config": map[string]any{"conect_timeout": 1}}, []string{`client-config["conect_timeout"]`, "not a botocore Config option"}},
		{"client-config timeout", map[string]any{"client-config": map[string]any{"read_timeout": 0}}, []string{`client-config["read_timeout"]`, "from 0.001 s"}},
		{"client-config pool", map[string]any{"client-config": map[string]any{"max_pool_connections": 0}}, []string{`client-config["max_pool_connections"]`, "from 1 to 10000"}},
		{"retries mode", map[string]any{"client-config": map[string]any{"retries": map[string]any{"mode": "aggressive"}}}, []string{`client-config["retries"]["mode"]`, "legacy", "aggressive"}},
		{"retries attempts", map[string]any{"client-config": map[string]any{"retries": map[string]any{"max_attempts": -1}}}, []string{`client-config["retries"]["max_attempts"]`, "from 0 to 100"}},
		{"retries unknown", map[string]any{"client-config": map[string]any{"retries": map[string]any{"attempts": 3}}}, []string{`client-config["retries"]["attempts"]`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := kombu.ParseTransportOptions(c.opts)
			require.Error(t, err)
			require.ErrorIs(t, err, kombu.ErrInvalidConfig)
			var optErr *kombu.ConfigError
			require.ErrorAs(t, err, &optErr)
			for _, w := range c.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}

	// Every problem is reported at once.
	_, err := kombu.ParseTransportOptions(map[string]any{"foo": 1, "bar": 2, "wait_time_seconds": 30, "region": false})
	require.Error(t, err)
	for _, w := range []string{"foo", "bar", "wait_time_seconds", "region"} {
		require.Contains(t, err.Error(), w)
	}
}

func TestParseBrokerURL(t *testing.T) {
	cases := []struct {
		url  string
		want kombu.Config
	}{
		{"sqs://", kombu.Config{}},
		{"sqs://KEY:SECRET@", kombu.Config{AccessKeyID: "KEY", SecretAccessKey: "SECRET"}},
		{"sqs://@localhost:9324", kombu.Config{EndpointURL: "http://localhost:9324"}},
		{"sqs://@localhost:9324/", kombu.Config{EndpointURL: "http://localhost:9324"}},
		{"  SQS://LocalHost  ", kombu.Config{EndpointURL: "http://localhost"}},
		{"sqs://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI%2FK7MDENG%2FbPxRfiCYEXAMPLEKEY@", kombu.Config{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}},
		{"sqs://k:a+b%2Bc%zz@", kombu.Config{AccessKeyID: "k", SecretAccessKey: "a+b+c%zz"}},
		{"sqs://k:s:t@h", kombu.Config{AccessKeyID: "k", SecretAccessKey: "s:t", EndpointURL: "http://h"}},
		{"sqs://k:s@x@h:1", kombu.Config{AccessKeyID: "k", SecretAccessKey: "s@x", EndpointURL: "http://h:1"}},
		{"sqs://k:s@host.example:443/vhost", kombu.Config{AccessKeyID: "k", SecretAccessKey: "s", EndpointURL: "http://host.example:443"}},
		{"sqs://@[::1]:9324", kombu.Config{EndpointURL: "http://[::1]:9324"}},
		{"sqs://h:", kombu.Config{EndpointURL: "http://h"}},
		{"sqs://?", kombu.Config{}},
	}
	for _, c := range cases {
		got, err := kombu.ParseBrokerURL(c.url)
		require.NoError(t, err, c.url)
		require.Equal(t, c.want.AccessKeyID, got.AccessKeyID, c.url)
		require.Equal(t, c.want.SecretAccessKey, got.SecretAccessKey, c.url)
		require.Equal(t, c.want.EndpointURL, got.EndpointURL, c.url)
	}

	for _, u := range []string{"", "amqp://", "sqs:", "sqs://KEY@", "sqs://:SECRET@", "sqs://k:abc/def@", "sqs://h:99999", "sqs://h:9a",
		"sqs://h?region=eu-west-1", "sqs://h#x", "sqs://a;sqs://b", "sqs://@[::1", "sqs://@[::1]x"} {
		_, err := kombu.ParseBrokerURL(u)
		require.Error(t, err, u)
		require.ErrorIs(t, err, kombu.ErrInvalidConfig)
		require.Contains(t, err.Error(), "broker_url")
	}

	// The endpoint Kombu would build: http unless is_secure.
	o, err := kombu.ParseCeleryBroker("sqs://@localhost:9324", nil)
	require.NoError(t, err)
	require.Contains(t, o.String(), `Endpoint:"http://localhost:9324"`)
	o, err = kombu.ParseCeleryBroker("sqs://@sqs.internal", map[string]any{"is_secure": true})
	require.NoError(t, err)
	require.Contains(t, o.String(), `Endpoint:"https://sqs.internal"`)
	o, err = kombu.ParseCeleryBroker("sqs://@[::1]:9324", nil)
	require.NoError(t, err)
	require.Contains(t, o.String(), `Endpoint:"http://[::1]:9324"`)
	o, err = kombu.ParseCeleryBroker("sqs://@localhost:9324", map[string]any{"endpoint_url": "http://127.0.0.1:9999"})
	require.NoError(t, err)
	require.Contains(t, o.String(), `Endpoint:"http://127.0.0.1:9999"`, "endpoint_url wins over the URL's host")
	_, err = kombu.ParseCeleryBroker("redis://", nil)
	require.ErrorContains(t, err, "broker_url")
}

// TestParseBrokerURLMatchesKombu parses broker URLs with Kombu's Connection and with
// ParseBrokerURL, and compares.
func TestParseBrokerURLMatchesKombu(t *testing.T) {
	urls := []string{
		"sqs://", "sqs://KEY:SECRET@", "sqs://@localhost:9324", "sqs://@localhost:9324/", "SQS://LocalHost",
		"sqs://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI%2FK7MDENG%2FbPxRfiCYEXAMPLEKEY@",
		"sqs://k:a+b%2Bc%20d%zz@", "sqs://k:s:t@h", "sqs://k:s@x@h:1", "sqs://k:s@Host.Example:443/vhost",
		"sqs://@[::1]:9324", "sqs://h:", "sqs://%6Bey:%73ecret@h%2Ex", "sqs://k:abc/def@", "sqs://h:99999",
		"sqs://KEY@", "sqs://:SECRET@",
	}
	const script = `
import json, sys
from kombu import Connection
out = []
for u in json.load(sys.stdin):
    try:
        c = Connection(u)
        out.append({"ok": True, "host": c.hostname, "port": c.port, "user": c.userid, "password": c.password})
    except Exception as e:
        out.append({"ok": False, "error": type(e).__name__})
json.dump(out, sys.stdout)
`
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.Python(t), "-c", script)
	in, err := json.Marshal(urls)
	require.NoError(t, err)
	cmd.Stdin = strings.NewReader(string(in))
	out, err := cmd.Output()
	require.NoError(t, err)
	var results []struct {
		OK       bool    `json:"ok"`
		Error    string  `json:"error"`
		Host     *string `json:"host"`
		Port     *int    `json:"port"`
		User     *string `json:"user"`
		Password *string `json:"password"`
	}
	require.NoError(t, json.Unmarshal(out, &results))
	require.Len(t, results, len(urls))
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	for i, u := range urls {
		k := results[i]
		got, err := kombu.ParseBrokerURL(u)
		if !k.OK {
			require.Error(t, err, "%s: Kombu fails (%s)", u, k.Error)
			continue
		}
		if (k.User == nil) != (k.Password == nil) {
			// Kombu accepts the URL, and boto3 then fails for want of half the credentials.
			require.Error(t, err, u)
			continue
		}
		require.NoError(t, err, u)
		require.Equal(t, str(k.User), got.AccessKeyID, u)
		require.Equal(t, str(k.Password), got.SecretAccessKey, u)
		want := ""
		if host := str(k.Host); host != "" {
			if strings.Contains(host, ":") {
				host = "[" + host + "]"
			}
			want = "http://" + host
			if k.Port != nil && *k.Port != 0 {
				want += ":" + strconv.Itoa(*k.Port)
			}
		}
		require.Equal(t, want, got.EndpointURL, u)
	}
}

// TestParseCeleryBrokerRoundTrip configures a Publisher and a Subscriber from a broker URL and
// transport options alone, against ElasticMQ.
func TestParseCeleryBrokerRoundTrip(t *testing.T) {
	endpoint := testenv.SQSEndpoint(t)
	u, err := url.Parse(endpoint)
	require.NoError(t, err)
	prefix := testenv.UniqueName("celery-opts") + "."
	o, err := kombu.ParseCeleryBroker("sqs://test:test@"+u.Host, map[string]any{
		"region":                  "us-east-1",
		"queue_name_prefix":       prefix,
		"visibility_timeout":      "45",
		"wait_time_seconds":       1,
		"polling_interval":        0.05,
		"sqs-creation-attributes": map[string]any{"ReceiveMessageWaitTimeSeconds": 2},
		"client-config":           map[string]any{"connect_timeout": 2, "read_timeout": 5, "retries": map[string]any{"max_attempts": 2}},
		"sqs_base64_encoding":     false,
	})
	require.NoError(t, err)
	sqsName := kombu.CanonicalQueueName(prefix, "tasks.default")
	t.Cleanup(func() { deleteRawQueue(t, endpoint, sqsName) })

	pub, err := kombu.NewPublisher(o.PublisherConfig(), nil)
	require.NoError(t, err)
	defer pub.Close()
	sub, err := kombu.NewSubscriber(o.SubscriberConfig, watermill.NopLogger{})
	require.NoError(t, err)
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	require.NoError(t, pub.Publish("tasks.default", message.NewMessage(watermill.NewUUID(), []byte(`{"hello": "world"}`))))
	ch, err := sub.Subscribe(ctx, "tasks.default")
	require.NoError(t, err)
	require.Equal(t, []string{`{"hello": "world"}`}, receiveAcked(t, ch, 1, 10*time.Second))

	// The queue was created with the options' attributes, under Kombu's name for it.
	raw := testenv.SQSClient(t, endpoint)
	q, err := raw.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(sqsName)})
	require.NoError(t, err)
	attrs, err := raw.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
	require.NoError(t, err)
	require.Equal(t, "45", attrs.Attributes["VisibilityTimeout"])
	require.Equal(t, "2", attrs.Attributes["ReceiveMessageWaitTimeSeconds"], "%v", attrs.Attributes)
}
