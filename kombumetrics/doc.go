// Package kombumetrics exports what only package kombu knows to Prometheus: the SQS requests
// a Publisher or Subscriber sends (what AWS bills) and the SNS requests of its fanout
// exchanges, by kind, and the acks a Subscriber gave up.
// Watermill's own Prometheus decorators (github.com/ThreeDotsLabs/watermill/components/metrics)
// measure the rest. It is the only package of this module that imports Prometheus.
package kombumetrics
