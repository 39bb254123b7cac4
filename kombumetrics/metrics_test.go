package kombumetrics_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
	"github.com/watermill-kombu/watermill-kombu/kombumetrics"
)

func TestRegisterRequestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	counts := kombu.RequestCounts{Receive: 3, Delete: 2, ChangeVisibility: 1, Send: 7, Other: 4, SNSPublish: 5, SNSOther: 6}
	require.NoError(t, kombumetrics.RegisterRequestMetrics(reg, "orders", func() kombu.RequestCounts { return counts }))

	for kind, want := range map[string]float64{"receive": 3, "delete": 2, "change_visibility": 1, "send": 7, "other": 4} {
		assert.Equal(t, want, gatherValue(t, reg, kombumetrics.MetricSQSRequests, map[string]string{"client": "orders", "kind": kind}), kind)
	}
	for kind, want := range map[string]float64{"publish": 5, "other": 6} {
		assert.Equal(t, want, gatherValue(t, reg, kombumetrics.MetricSNSRequests, map[string]string{"client": "orders", "kind": kind}), "sns "+kind)
	}

	counts.Send = 9 // read at scrape time
	assert.Equal(t, 9.0, gatherValue(t, reg, kombumetrics.MetricSQSRequests, map[string]string{"client": "orders", "kind": "send"}))

	err := kombumetrics.RegisterRequestMetrics(reg, "orders", func() kombu.RequestCounts { return counts })
	require.Error(t, err, "the same client name twice")
	require.NoError(t, kombumetrics.RegisterRequestMetrics(reg, "billing", func() kombu.RequestCounts { return counts }))
	require.Error(t, kombumetrics.RegisterRequestMetrics(reg, "x", nil))
}

// gatherValue returns the value of the series of name with exactly these labels.
func gatherValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	v, err := lookupValue(g, name, labels)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// lookupValue is gatherValue for use outside the test's goroutine (require.Eventually).
func lookupValue(g prometheus.Gatherer, name string, labels map[string]string) (float64, error) {
	families, err := g.Gather()
	if err != nil {
		return 0, err
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), nil
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), nil
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount()), nil
			}
		}
	}
	return 0, fmt.Errorf("no series %s%v", name, labels)
}

// TestPrometheusMetrics decorates a Publisher and Subscriber with Watermill's Prometheus
// metrics, runs a router over them on ElasticMQ, and checks both Watermill's metrics and the
// SQS request counters.
func TestPrometheusMetrics(t *testing.T) {
	endpoint := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, endpoint)
	in, out := testenv.UniqueName("metrics-in"), testenv.UniqueName("metrics-out")
	for _, q := range []string{in, out} {
		testenv.CreateQueue(t, client, kombu.CanonicalQueueName("", q), map[string]string{"VisibilityTimeout": "30"})
	}
	cfg := kombu.Config{
		Region:            "us-east-1",
		EndpointURL:       endpoint,
		AccessKeyID:       "test",
		SecretAccessKey:   "test",
		VisibilityTimeout: 30 * time.Second,
	}

	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, nil)
	require.NoError(t, err)
	defer pub.Close()
	sub, err := kombu.NewSubscriber(kombu.SubscriberConfig{
		Config:              cfg,
		WaitTimeSeconds:     1,
		PollingInterval:     50 * time.Millisecond,
		ReconnectRetrySleep: 100 * time.Millisecond,
		CloseTimeout:        5 * time.Second,
	}, nil)
	require.NoError(t, err)
	defer sub.Close()

	reg := prometheus.NewRegistry()
	require.NoError(t, kombumetrics.RegisterRequestMetrics(reg, "publisher", pub.Stats))
	require.NoError(t, kombumetrics.RegisterSubscriberMetrics(reg, "subscriber", sub))

	builder := metrics.NewPrometheusMetricsBuilder(reg, "test", "kombu")
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, watermill.NopLogger{})
	require.NoError(t, err)
	builder.AddPrometheusRouterMetrics(router)
	handled := make(chan string, 10)
	router.AddHandler("forward", in, sub, out, pub, func(msg *message.Message) ([]*message.Message, error) {
		handled <- msg.UUID
		return []*message.Message{message.NewMessage(watermill.NewUUID(), msg.Payload)}, nil
	})
	testenv.RunRouter(t, router)

	const n = 3
	for i := 0; i < n; i++ {
		require.NoError(t, pub.Publish(in, message.NewMessage(watermill.NewUUID(), []byte(`{"n": 1}`))))
	}
	for i := 0; i < n; i++ {
		select {
		case <-handled:
		case <-time.After(10 * time.Second):
			t.Fatalf("handled %d of %d messages", i, n)
		}
	}
	// A handler signals before it returns, and Watermill records its metrics after: wait for
	// the last handler's metrics and for the acks to be sent.
	labels := map[string]string{"handler_name": "forward", "success": "true"}
	require.Eventually(t, func() bool {
		handled, err1 := lookupValue(reg, "test_kombu_handler_execution_time_seconds", labels)
		acked, err2 := lookupValue(reg, "test_kombu_subscriber_messages_received_total", map[string]string{
			"handler_name": "forward", "acked": "acked", "subscriber_name": "kombu.Subscriber",
		})
		deletes, err3 := lookupValue(reg, kombumetrics.MetricSQSRequests, map[string]string{"client": "subscriber", "kind": "delete"})
		return err1 == nil && err2 == nil && err3 == nil && handled == n && acked == n && deletes > 0
	}, 10*time.Second, 20*time.Millisecond)

	assert.GreaterOrEqual(t, gatherValue(t, reg, "test_kombu_publish_time_seconds", map[string]string{
		"handler_name": "forward", "success": "true", "publisher_name": "kombu.Publisher",
	}), float64(n))
	assert.Equal(t, float64(n), gatherValue(t, reg, "test_kombu_subscriber_messages_received_total", map[string]string{
		"handler_name": "forward", "acked": "acked", "subscriber_name": "kombu.Subscriber",
	}))
	// 2n messages published, one per Publish: the handler's concurrent ones may share a batch.
	sends := gatherValue(t, reg, kombumetrics.MetricSQSRequests, map[string]string{"client": "publisher", "kind": "send"})
	assert.GreaterOrEqual(t, sends, float64(n+1))
	assert.LessOrEqual(t, sends, float64(2*n))
	assert.GreaterOrEqual(t, gatherValue(t, reg, kombumetrics.MetricSQSRequests, map[string]string{"client": "subscriber", "kind": "receive"}), 1.0)
	assert.Equal(t, 0.0, gatherValue(t, reg, kombumetrics.MetricFailedAcks, map[string]string{"client": "subscriber"}))
}
