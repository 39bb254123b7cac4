package kombumetrics

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	kombu "github.com/watermill-kombu/watermill-kombu"
)

// Prometheus metric names exported by RegisterRequestMetrics and RegisterSubscriberMetrics.
// Watermill's own metrics (github.com/ThreeDotsLabs/watermill/components/metrics) decorate a
// Publisher or kombu.Subscriber like any other; these add what only this library knows: the SQS
// requests sent, which is what AWS bills, and the acks given up.
const (
	// MetricSQSRequests counts SQS requests, labelled by client and kind (receive, delete,
	// change_visibility, send, other), retries included.
	MetricSQSRequests = "kombu_sqs_requests_total"
	// MetricSNSRequests counts the SNS requests of fanout exchanges, labelled by client and
	// kind (publish, other), retries included.
	MetricSNSRequests = "kombu_sns_requests_total"
	// MetricFailedAcks counts deletes and visibility changes given up after retries.
	MetricFailedAcks = "kombu_failed_acks_total"
)

// requestKinds names the fields of kombu.RequestCounts in the "kind" label of their metric.
var requestKinds = []struct {
	metric, help, kind string
	count              func(kombu.RequestCounts) int64
}{
	{MetricSQSRequests, sqsHelp, "receive", func(c kombu.RequestCounts) int64 { return c.Receive }},
	{MetricSQSRequests, sqsHelp, "delete", func(c kombu.RequestCounts) int64 { return c.Delete }},
	{MetricSQSRequests, sqsHelp, "change_visibility", func(c kombu.RequestCounts) int64 { return c.ChangeVisibility }},
	{MetricSQSRequests, sqsHelp, "send", func(c kombu.RequestCounts) int64 { return c.Send }},
	{MetricSQSRequests, sqsHelp, "other", func(c kombu.RequestCounts) int64 { return c.Other }},
	{MetricSNSRequests, snsHelp, "publish", func(c kombu.RequestCounts) int64 { return c.SNSPublish }},
	{MetricSNSRequests, snsHelp, "other", func(c kombu.RequestCounts) int64 { return c.SNSOther }},
}

const (
	sqsHelp = "SQS requests sent, retries included, by kind of request."
	snsHelp = "SNS requests of fanout exchanges sent, retries included, by kind of request."
)

// RegisterRequestMetrics exports the request counts of statsFn (a Publisher's or
// kombu.Subscriber's Stats method) as the counters MetricSQSRequests and MetricSNSRequests, one
// series per kind of request, labelled client=name. The counts are read when Prometheus scrapes. Register each client
// under its own name, e.g.
//
//	kombumetrics.RegisterRequestMetrics(registry, "orders-publisher", pub.Stats)
func RegisterRequestMetrics(registry prometheus.Registerer, name string, statsFn func() kombu.RequestCounts) error {
	if registry == nil {
		registry = prometheus.DefaultRegisterer
	}
	if statsFn == nil {
		return errors.New("kombu: RegisterRequestMetrics: statsFn is nil")
	}
	var errs []error
	for _, k := range requestKinds {
		count := k.count
		c := prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        k.metric,
			Help:        k.help,
			ConstLabels: prometheus.Labels{"client": name, "kind": k.kind},
		}, func() float64 { return float64(count(statsFn())) })
		if err := registry.Register(c); err != nil {
			errs = append(errs, fmt.Errorf("kombu: registering %s{client=%q,kind=%q}: %w", k.metric, name, k.kind, err))
		}
	}
	return errors.Join(errs...)
}

// RegisterSubscriberMetrics exports a kombu.Subscriber's SQS request counts (see
// RegisterRequestMetrics) and its FailedAcks as the counter MetricFailedAcks, labelled
// client=name.
func RegisterSubscriberMetrics(registry prometheus.Registerer, name string, sub *kombu.Subscriber) error {
	if registry == nil {
		registry = prometheus.DefaultRegisterer
	}
	if sub == nil {
		return errors.New("kombu: RegisterSubscriberMetrics: nil kombu.Subscriber")
	}
	err := RegisterRequestMetrics(registry, name, sub.Stats)
	failed := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name:        MetricFailedAcks,
		Help:        "Deletes and visibility changes given up after retries; the messages come back after their visibility timeout.",
		ConstLabels: prometheus.Labels{"client": name},
	}, func() float64 { return float64(sub.FailedAcks()) })
	if regErr := registry.Register(failed); regErr != nil {
		err = errors.Join(err, fmt.Errorf("kombu: registering %s{client=%q}: %w", MetricFailedAcks, name, regErr))
	}
	return err
}
