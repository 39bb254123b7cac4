package kombu_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// recordedRequest is one request that went through a recordingProxy.
type recordedRequest struct {
	// Op is the API operation: the X-Amz-Target suffix (SQS's JSON protocol) or the Action
	// form parameter (STS's query protocol).
	Op string
	// AccessKey is the access key ID the request was signed with (SigV4 Credential=AKID/...).
	AccessKey string
	// QueueURL is the QueueUrl of an SQS request, if any.
	QueueURL string
	// Form holds the parameters of a query-protocol request.
	Form url.Values
	// Status is the HTTP status returned, Duration how long the upstream took.
	Status   int
	Duration time.Duration
	// Response is the response body of a query-protocol (STS) request.
	Response string
}

// recordingProxy is a reverse proxy in front of a local service that records every request.
type recordingProxy struct {
	URL string

	mu   sync.Mutex
	reqs []recordedRequest
	// delay, when set, holds a request of that operation for that long before forwarding it.
	delay func(op string) time.Duration
}

var sigV4Credential = regexp.MustCompile(`Credential=([^/,\s]+)/`)

func newRecordingProxy(t *testing.T, upstream string) *recordingProxy {
	t.Helper()
	target, err := url.Parse(upstream)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(target)
	p := &recordingProxy{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := recordedRequest{}
		if m := sigV4Credential.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
			rec.AccessKey = m[1]
		}
		if target := r.Header.Get("X-Amz-Target"); target != "" {
			rec.Op = target[strings.LastIndexByte(target, '.')+1:]
			var in struct{ QueueUrl string }
			_ = json.Unmarshal(body, &in)
			rec.QueueURL = in.QueueUrl
		} else if form, err := url.ParseQuery(string(body)); err == nil {
			rec.Op = form.Get("Action")
			rec.Form = form
		}
		if p.delay != nil {
			if d := p.delay(rec.Op); d > 0 {
				select {
				case <-time.After(d):
				case <-r.Context().Done():
				}
			}
		}
		cw := &capturingWriter{ResponseWriter: w, status: http.StatusOK, keepBody: rec.Form != nil}
		start := time.Now()
		rp.ServeHTTP(cw, r)
		rec.Duration = time.Since(start)
		rec.Status = cw.status
		rec.Response = cw.body.String()
		p.mu.Lock()
		p.reqs = append(p.reqs, rec)
		p.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *recordingProxy) requests() []recordedRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]recordedRequest(nil), p.reqs...)
}

type capturingWriter struct {
	http.ResponseWriter
	status   int
	keepBody bool
	body     bytes.Buffer
}

func (w *capturingWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

func (w *capturingWriter) Write(b []byte) (int, error) {
	if w.keepBody {
		w.body.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

// lockedLogBuffer is a log sink safe for concurrent writes.
type lockedLogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedLogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// createRawQueue creates a queue with the plain SDK client and deletes it when the test ends.
func createRawQueue(t *testing.T, client *sqs.Client, name string) string {
	t.Helper()
	out, err := client.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(name)})
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl})
	})
	return aws.ToString(out.QueueUrl)
}

// receiveAcked reads n messages from ch, acking each, and returns their payloads.
func receiveAcked(t *testing.T, ch <-chan *message.Message, n int, timeout time.Duration) []string {
	t.Helper()
	var got []string
	deadline := time.After(timeout)
	for len(got) < n {
		select {
		case msg, ok := <-ch:
			if !ok {
				t.Fatalf("subscription closed after %d of %d messages", len(got), n)
			}
			got = append(got, string(msg.Payload))
			msg.Ack()
		case <-deadline:
			t.Fatalf("received %d of %d messages in %s: %q", len(got), n, timeout, got)
		}
	}
	return got
}

// elasticMQConfig talks to a local SQS endpoint with the static credentials ElasticMQ ignores.
func elasticMQConfig(endpoint string) kombu.Config {
	return kombu.Config{Region: "us-east-1", EndpointURL: endpoint, AccessKeyID: "test", SecretAccessKey: "test"}
}

// quickSubscriberConfig polls often and gives up quickly, so that tests run fast.
func quickSubscriberConfig(cfg kombu.Config) kombu.SubscriberConfig {
	return kombu.SubscriberConfig{
		Config:              cfg,
		WaitTimeSeconds:     1,
		PollingInterval:     50 * time.Millisecond,
		ReconnectRetrySleep: 200 * time.Millisecond,
		CloseTimeout:        10 * time.Second,
	}
}

// TestPredefinedQueueCredentials publishes to and consumes from two predefined queues with
// keys of their own, through a proxy that records which key signed each request.
func TestPredefinedQueueCredentials(t *testing.T) {
	endpoint := testenv.SQSEndpoint(t)
	raw := testenv.SQSClient(t, endpoint)
	name1, name2 := testenv.UniqueName("creds-one"), testenv.UniqueName("creds-two")
	url1, url2 := createRawQueue(t, raw, name1), createRawQueue(t, raw, name2)
	proxy := newRecordingProxy(t, endpoint)

	const (
		defaultKey, defaultSecret = "AKIDDEFAULTKEY", "default-secret/+value"
		key1, secret1             = "AKIDQUEUEONE", "queue-one-secret/+value"
		key2, secret2             = "AKIDQUEUETWO", "queue-two-secret/+value"
		token2                    = "queue-two-session-token"
	)
	cfg := kombu.Config{
		Region:          "us-east-1",
		EndpointURL:     proxy.URL,
		AccessKeyID:     defaultKey,
		SecretAccessKey: defaultSecret,
		PredefinedQueues: map[string]kombu.PredefinedQueue{
			"tasks.one": {URL: url1, AccessKeyID: key1, SecretAccessKey: secret1},
			"tasks.two": {URL: url2, AccessKeyID: key2, SecretAccessKey: secret2, SessionToken: token2},
		},
	}
	logs := &lockedLogBuffer{}
	logger := watermill.NewStdLoggerWithOut(logs, true, true)
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, logger)
	require.NoError(t, err)
	defer pub.Close()
	sub, err := kombu.NewSubscriber(quickSubscriberConfig(cfg), logger)
	require.NoError(t, err)
	defer sub.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch1, err := sub.Subscribe(ctx, "tasks.one")
	require.NoError(t, err)
	ch2, err := sub.Subscribe(ctx, "tasks.two")
	require.NoError(t, err)

	for i := 0; i < 3; i++ {
		require.NoError(t, pub.Publish("tasks.one", message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprint("one-", i)))))
		require.NoError(t, pub.Publish("tasks.two", message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprint("two-", i)))))
	}
	require.ElementsMatch(t, []string{"one-0", "one-1", "one-2"}, receiveAcked(t, ch1, 3, 20*time.Second))
	require.ElementsMatch(t, []string{"two-0", "two-1", "two-2"}, receiveAcked(t, ch2, 3, 20*time.Second))

	// A queue that is not predefined is refused before any request.
	before := len(proxy.requests())
	err = pub.Publish("tasks.three", message.NewMessage(watermill.NewUUID(), []byte("x")))
	require.ErrorIs(t, err, kombu.ErrUnknownQueue)
	_, err = sub.Subscribe(ctx, "tasks.three")
	require.ErrorIs(t, err, kombu.ErrUnknownQueue)
	require.ErrorIs(t, sub.SubscribeInitialize("tasks.three"), kombu.ErrUnknownQueue)
	require.Equal(t, before, len(proxy.requests()), "refusing an unknown queue made requests")

	cancel()
	require.NoError(t, sub.Close())
	require.NoError(t, pub.Close())

	ops := map[string]map[string]int{} // queue -> op -> count
	for _, r := range proxy.requests() {
		require.NotContains(t, []string{"ListQueues", "GetQueueUrl", "CreateQueue"}, r.Op, "predefined queues must not be looked up or created")
		require.Equal(t, http.StatusOK, r.Status, "%s on %s failed", r.Op, r.QueueURL)
		switch {
		case strings.HasSuffix(r.QueueURL, "/"+name1):
			require.Equal(t, key1, r.AccessKey, "%s on queue one", r.Op)
		case strings.HasSuffix(r.QueueURL, "/"+name2):
			require.Equal(t, key2, r.AccessKey, "%s on queue two", r.Op)
		default:
			t.Fatalf("request %s for an unexpected queue %q", r.Op, r.QueueURL)
		}
		q := r.QueueURL[strings.LastIndexByte(r.QueueURL, '/')+1:]
		if ops[q] == nil {
			ops[q] = map[string]int{}
		}
		ops[q][r.Op]++
	}
	for _, q := range []string{name1, name2} {
		got := ops[q]
		require.Positive(t, got["SendMessage"]+got["SendMessageBatch"], "queue %s: %v", q, got)
		require.Positive(t, got["ReceiveMessage"], "queue %s: %v", q, got)
		require.Positive(t, got["DeleteMessage"]+got["DeleteMessageBatch"], "queue %s: %v", q, got)
	}
	t.Logf("requests by queue: %v", ops)

	out := logs.String()
	for _, secret := range []string{defaultSecret, secret1, secret2, token2} {
		require.NotContains(t, out, secret, "a credential appears in the log")
	}
}

// TestUnknownQueueWithoutRequests checks ErrUnknownQueue with a config that is never contacted.
func TestUnknownQueueWithoutRequests(t *testing.T) {
	cfg := kombu.Config{
		EndpointURL: "http://127.0.0.1:1", AccessKeyID: "AKIDX", SecretAccessKey: "x",
		PredefinedQueues: map[string]kombu.PredefinedQueue{"known": {URL: "http://127.0.0.1:1/000000000000/known"}},
	}
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, nil)
	require.NoError(t, err)
	defer pub.Close()
	err = pub.Publish("unknown", message.NewMessage(watermill.NewUUID(), []byte("x")))
	require.ErrorIs(t, err, kombu.ErrUnknownQueue)
	require.Contains(t, err.Error(), "unknown")
	require.Zero(t, pub.Stats().Total())
}

func deleteRawQueue(t *testing.T, endpoint, name string) {
	t.Helper()
	raw := testenv.SQSClient(t, endpoint)
	out, err := raw.GetQueueUrl(context.Background(), &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
	if err == nil {
		_, _ = raw.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl})
	}
}

// TestCredentialsNeverShown checks that no credential appears in errors or in any formatting
// of a configuration.
func TestCredentialsNeverShown(t *testing.T) {
	secrets := []string{"AKIDURLKEY", "url/secret+key", "AKIDQUEUEKEY", "queue-secret-value", "session-token-value", "top-token-value"}
	opts := map[string]any{
		"session_token": "top-token-value",
		"predefined_queues": map[string]any{
			"q": map[string]any{
				"url": "https://sqs.us-east-1.amazonaws.com/123456789012/q", "access_key_id": "AKIDQUEUEKEY",
				"secret_access_key": "queue-secret-value", "session_token": "session-token-value",
			},
		},
	}
	res, err := kombu.ParseCeleryBroker("sqs://AKIDURLKEY:url%2Fsecret+key@", opts)
	require.NoError(t, err)
	require.Equal(t, "url/secret+key", res.SecretAccessKey)
	require.Equal(t, "session-token-value", res.PredefinedQueues["q"].SessionToken)
	pc := res.PublisherConfig()
	printed := []string{
		res.String(), res.Config.String(), res.SubscriberConfig.String(), pc.String(),
		fmt.Sprintf("%v|%+v|%#v|%s", res, res, res, res),
		fmt.Sprintf("%v|%+v|%#v", res.SubscriberConfig, res.SubscriberConfig, res.SubscriberConfig),
		fmt.Sprintf("%v|%+v|%#v", pc, pc, pc),
		fmt.Sprintf("%v|%+v|%#v", res.Config, res.Config, res.Config),
		fmt.Sprintf("%v|%+v|%#v", res.PredefinedQueues, res.PredefinedQueues, res.PredefinedQueues),
		fmt.Sprintf("%v|%+v|%#v", &res, &res.Config, &pc),
	}

	// Errors: misplaced or malformed credentials, and invalid configs holding them.
	bad := []map[string]any{
		{"secret_access_key": "queue-secret-value"},
		{"access_key_id": "AKIDQUEUEKEY", "session_token": 12},
		{"predefined_queues": map[string]any{"q": map[string]any{"url": "https://x/1/q", "access_key_id": "AKIDQUEUEKEY"}}},
		{"predefined_queues": map[string]any{"q": map[string]any{"url": "https://x/1/q", "secret_access_key": "queue-secret-value", "password": "queue-secret-value"}}},
		{"predefined_queues": map[string]any{"q": map[string]any{"url": "https://x/1/q.fifo", "access_key_id": "AKIDQUEUEKEY", "secret_access_key": []string{"queue-secret-value"}}}},
		{"region": 5, "visibility_timeout": "url/secret+key", "sts_role_arn": "url/secret+key"},
	}
	for _, o := range bad {
		_, err := kombu.ParseCeleryBroker("sqs://AKIDURLKEY:url%2Fsecret+key@", o)
		require.Error(t, err, "%v", o)
		require.ErrorIs(t, err, kombu.ErrInvalidConfig)
		printed = append(printed, err.Error(), fmt.Sprintf("%v|%+v|%#v", err, err, err))
	}
	for _, u := range []string{"sqs://AKIDURLKEY@", "sqs://:url%2Fsecret+key@", "sqs://AKIDURLKEY:url/secret+key@", "sqs://AKIDURLKEY:url%2Fsecret+key@host?x=1",
		"sqs://AKIDURLKEY:url%2Fsecret+key@h:port;sqs://", "amqp://AKIDURLKEY:url%2Fsecret+key@", "sqs://AKIDURLKEY:url%2Fsecret+key@[::1"} {
		_, err := kombu.ParseBrokerURL(u)
		require.Error(t, err, u)
		printed = append(printed, err.Error(), fmt.Sprintf("%+v", err))
	}
	_, err = kombu.ParseTransportOptionsJSON([]byte(`{"predefined_queues": {"q": {"secret_access_key": "queue-secret-value"`))
	require.Error(t, err)
	printed = append(printed, err.Error())

	// Config.Validate and the constructors.
	cfg := res.Config
	cfg.StsTokenTimeout = time.Second
	cfg.AccessKeyID = ""
	err = cfg.Validate()
	require.Error(t, err)
	printed = append(printed, err.Error())
	_, err = kombu.NewSubscriber(kombu.SubscriberConfig{Config: cfg}, nil)
	require.Error(t, err)
	printed = append(printed, err.Error())

	for _, s := range printed {
		for _, secret := range secrets {
			if strings.Contains(s, secret) || strings.Contains(s, url.QueryEscape(secret)) {
				t.Errorf("%q appears in %q", secret, s)
			}
		}
	}
}
