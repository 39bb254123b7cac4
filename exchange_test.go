package kombu

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

func TestTopicMatch(t *testing.T) {
	cases := []struct {
		pattern, key string
		want         bool
	}{
		// The answers of Kombu 5.7's virtual TopicExchange (key_to_pattern, then re.match).
		{"orders.created", "orders.created", true},
		{"orders.created", "orders.deleted", false},
		{"orders.*", "orders.created", true},
		{"orders.*", "orders", false},
		{"orders.*", "orders.eu.created", false},
		{"orders.*", "orders.x+y", true},
		{"*.created", "orders.created", true},
		{"*", "", false},
		{"a.*", "a.", false},
		{"orders.#", "orders", false},
		{"orders.#", "orders.", true},
		{"orders.#", "orders.created", true},
		{"orders.#", "orders.eu.created", true},
		{"orders.#", "ordersx", false},
		{"#", "", true},
		{"#", "a.b.c", true},
		{"#.created", "created", false},
		{"#.created", ".created", true},
		{"#.created", "xcreated", false},
		{"#.created", "orders.eu.created", true},
		{"#.created", "orders.eu.deleted", false},
		{"a.#.z", "a.z", false},
		{"a.#.z", "a..z", true},
		{"a.#.z", "a.b.c.z", true},
		{"a.#.z", "a.b.c", false},
		{"a.#.#.z", "a.z", false},
		{"a.*.#", "a", false},
		{"a.*.#", "a.b", false},
		{"a.*.#", "a.b.c.d", true},
		{"o+rders.*", "o+rders.x", true},
		{"orders.*", "orders.x\n", true}, // Python's '$'
		{"", "", true},
		{"", "a", false},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, topicMatch(c.pattern, c.key), "pattern %q, key %q", c.pattern, c.key)
	}
}

func TestExchangeRoute(t *testing.T) {
	direct := Exchange{Type: ExchangeDirect, Bindings: []Binding{
		{Queue: "a", RoutingKey: "x"}, {Queue: "b", RoutingKey: "y"}, {Queue: "c", RoutingKey: "x"}, {Queue: "a", RoutingKey: "x"},
	}}
	assert.Equal(t, []string{"a", "c"}, direct.route("x"), "every matching queue, each once")
	assert.Equal(t, []string{"b"}, direct.route("y"))
	assert.Empty(t, direct.route("z"))

	topic := Exchange{Type: ExchangeTopic, Bindings: []Binding{
		{Queue: "all", RoutingKey: "#"}, {Queue: "eu", RoutingKey: "*.eu.*"}, {Queue: "created", RoutingKey: "#.created"},
	}}
	assert.Equal(t, []string{"all", "eu", "created"}, topic.route("orders.eu.created"))
	assert.Equal(t, []string{"all"}, topic.route("orders.us.deleted"))

	fanout := Exchange{Type: ExchangeFanout, Bindings: []Binding{{Queue: "a", RoutingKey: "ignored"}, {Queue: "b"}}}
	assert.Equal(t, []string{"a", "b"}, fanout.route("anything"))
}

func TestValidateExchanges(t *testing.T) {
	require.NoError(t, validateExchanges(nil, false))
	require.NoError(t, validateExchanges(map[string]Exchange{
		"events": {Type: ExchangeTopic, Bindings: []Binding{{Queue: "q", RoutingKey: "orders.#"}}},
	}, false))
	err := validateExchanges(map[string]Exchange{
		"":       {Type: ExchangeFanout, Bindings: []Binding{{Queue: "q"}}},
		"bad":    {Type: "headers", Bindings: []Binding{{Queue: ""}}},
		"empty":  {Type: ExchangeDirect},
		"topic":  {Type: ExchangeTopic, Bindings: []Binding{{Queue: "q", RoutingKey: "orders.cr*"}}},
		"nested": {Type: ExchangeFanout, Bindings: []Binding{{Queue: "bad"}}},
	}, false)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	for _, field := range []string{
		"Exchanges[]", "Exchanges[bad].Type", "Exchanges[bad].Bindings[0].Queue", "Exchanges[empty].Bindings",
		"Exchanges[topic].Bindings[0].RoutingKey", "Exchanges[nested].Bindings[0].Queue",
	} {
		assert.Contains(t, err.Error(), field)
	}
}

// exConfig is a Config on the in-memory ElasticMQ with the given exchanges.
func exConfig(t *testing.T, exchanges map[string]Exchange) Config {
	return Config{
		Region:            "us-east-1",
		EndpointURL:       testenv.SQSEndpoint(t),
		AccessKeyID:       "test",
		SecretAccessKey:   "test",
		VisibilityTimeout: 30 * time.Second,
		Exchanges:         exchanges,
	}
}

func exPublisher(t *testing.T, cfg Config) *Publisher {
	t.Helper()
	pub, err := NewPublisher(PublisherConfig{Config: cfg}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	return pub
}

// exQueue creates a queue and deletes it when the test ends; it returns its URL.
func exQueue(t *testing.T, client *sqs.Client, name string) string {
	t.Helper()
	attrs := map[string]string{}
	if isFIFOQueue(name) {
		attrs["FifoQueue"] = "true"
	}
	out, err := client.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(entityName(name)), Attributes: attrs})
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl})
	})
	return aws.ToString(out.QueueUrl)
}

// exReceived is a message read straight from SQS.
type exReceived struct {
	UUID       string
	Payload    string
	Exchange   string
	RoutingKey string
}

// exDrain reads and deletes the messages of a queue until want arrived or 5 s passed.
func exDrain(t *testing.T, client *sqs.Client, url string, want int) []exReceived {
	t.Helper()
	return exDrainWithin(t, client, url, want, 5*time.Second)
}

func exDrainWithin(t *testing.T, client *sqs.Client, url string, want int, d time.Duration) []exReceived {
	t.Helper()
	var out []exReceived
	deadline := time.Now().Add(d)
	for len(out) < want && time.Now().Before(deadline) {
		res, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
		})
		require.NoError(t, err)
		for _, m := range res.Messages {
			env, err := DecodeEnvelope(aws.ToString(m.Body))
			require.NoError(t, err)
			out = append(out, exReceived{
				UUID: env.Properties.CorrelationID, Payload: string(env.Body),
				Exchange: env.Properties.Exchange, RoutingKey: env.Properties.RoutingKey,
			})
			_, err = client.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
			require.NoError(t, err)
		}
	}
	return out
}

func exMsg(payload, routingKey string) *message.Message {
	m := message.NewMessage(watermill.NewUUID(), []byte(payload))
	m.Metadata.Set(MetadataRoutingKey, routingKey)
	return m
}

func payloads(rs []exReceived) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Payload
	}
	return out
}

func TestExchangeDirect(t *testing.T) {
	client := testenv.SQSClient(t, testenv.SQSEndpoint(t))
	qa, qb := testenv.UniqueName("ex-direct-a"), testenv.UniqueName("ex-direct-b")
	ua, ub := exQueue(t, client, qa), exQueue(t, client, qb)
	name := testenv.UniqueName("direct")
	pub := exPublisher(t, exConfig(t, map[string]Exchange{name: {Type: ExchangeDirect, Bindings: []Binding{
		{Queue: qa, RoutingKey: "images"}, {Queue: qb, RoutingKey: "video"}, {Queue: qb, RoutingKey: "images"},
	}}}))

	require.NoError(t, pub.Publish(name, exMsg("1", "images"), exMsg("2", "video"), exMsg("3", "images")))

	a := exDrain(t, client, ua, 2)
	assert.ElementsMatch(t, []string{"1", "3"}, payloads(a))
	for _, r := range a {
		assert.Equal(t, name, r.Exchange, "delivery_info.exchange")
		assert.Equal(t, "images", r.RoutingKey, "delivery_info.routing_key")
	}
	b := exDrain(t, client, ub, 3)
	assert.ElementsMatch(t, []string{"1", "2", "3"}, payloads(b))
	for _, r := range b {
		want := map[string]string{"1": "images", "2": "video", "3": "images"}[r.Payload]
		assert.Equal(t, want, r.RoutingKey)
	}

	err := pub.Publish(name, exMsg("4", "images"), exMsg("5", "audio"))
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrUnroutable)
	assert.ErrorIs(t, err, ErrChannel)
	assert.Contains(t, err.Error(), name)
	assert.Contains(t, err.Error(), `"audio"`)
	assert.Empty(t, exDrainWithin(t, client, ua, 1, time.Second), "an unroutable message fails the whole call before sending")
}

func TestExchangeTopic(t *testing.T) {
	client := testenv.SQSClient(t, testenv.SQSEndpoint(t))
	qall, qeu, qcreated := testenv.UniqueName("ex-topic-all"), testenv.UniqueName("ex-topic-eu"), testenv.UniqueName("ex-topic-created")
	uall, ueu, ucreated := exQueue(t, client, qall), exQueue(t, client, qeu), exQueue(t, client, qcreated)
	name := testenv.UniqueName("topic")
	pub := exPublisher(t, exConfig(t, map[string]Exchange{name: {Type: ExchangeTopic, Bindings: []Binding{
		{Queue: qall, RoutingKey: "orders.#"}, {Queue: qeu, RoutingKey: "orders.eu.*"}, {Queue: qcreated, RoutingKey: "#.created"},
	}}}))

	require.NoError(t, pub.Publish(name,
		exMsg("eu-created", "orders.eu.created"), exMsg("us-deleted", "orders.us.deleted"),
		exMsg("user-created", "users.created")))

	assert.ElementsMatch(t, []string{"eu-created", "us-deleted"}, payloads(exDrain(t, client, uall, 2)))
	assert.ElementsMatch(t, []string{"eu-created"}, payloads(exDrain(t, client, ueu, 1)))
	created := exDrain(t, client, ucreated, 2)
	assert.ElementsMatch(t, []string{"eu-created", "user-created"}, payloads(created))
	for _, r := range created {
		assert.Equal(t, name, r.Exchange)
		assert.Contains(t, []string{"orders.eu.created", "users.created"}, r.RoutingKey)
	}
	// "orders" matches no binding, as in Kombu ("orders.#" needs the dot).
	for _, key := range []string{"invoices.paid", "orders"} {
		err := pub.Publish(name, exMsg("x", key))
		var ue *UnroutableError
		require.True(t, errors.As(err, &ue), "got %v", err)
		assert.Equal(t, key, ue.RoutingKey)
		assert.Equal(t, name, ue.Exchange)
	}
}

// TestExchangeFanout fans out to a standard and a FIFO queue; the FIFO queue keeps the order
// of the messages, also across routing keys.
func TestExchangeFanout(t *testing.T) {
	client := testenv.SQSClient(t, testenv.SQSEndpoint(t))
	qstd, qfifo := testenv.UniqueName("ex-fanout"), testenv.UniqueName("ex-fanout")+".fifo"
	ustd, ufifo := exQueue(t, client, qstd), exQueue(t, client, qfifo)
	name := testenv.UniqueName("fanout")
	pub := exPublisher(t, exConfig(t, map[string]Exchange{name: {Type: ExchangeFanout, Bindings: []Binding{
		{Queue: qstd}, {Queue: qfifo, RoutingKey: "ignored"},
	}}}))

	var msgs []*message.Message
	var want []string
	for i, rk := range []string{"a", "a", "b", "d", "a", "c", "c", "a", "b", "a", "a", "a"} {
		msgs = append(msgs, exMsg(string(rune('A'+i)), rk))
		want = append(want, string(rune('A'+i)))
	}
	require.NoError(t, pub.Publish(name, msgs...))

	assert.ElementsMatch(t, want, payloads(exDrain(t, client, ustd, len(want))))
	fifo := exDrain(t, client, ufifo, len(want))
	assert.Equal(t, want, payloads(fifo), "FIFO order across routing keys")
	for i, r := range fifo {
		assert.Equal(t, name, r.Exchange)
		assert.Equal(t, msgs[i].Metadata.Get(MetadataRoutingKey), r.RoutingKey)
		assert.Equal(t, msgs[i].UUID, r.UUID)
	}
}
