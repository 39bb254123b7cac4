package kombumetrics_test

import (
	"log"

	"github.com/prometheus/client_golang/prometheus"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/kombumetrics"
)

// Export the SQS requests a Subscriber sends, and its failed acks, to Prometheus.
func ExampleRegisterSubscriberMetrics() {
	sub, err := kombu.NewSubscriber(kombu.SubscriberConfig{Config: kombu.Config{Region: "us-east-1"}}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	registry := prometheus.NewRegistry()
	if err := kombumetrics.RegisterSubscriberMetrics(registry, "orders-consumer", sub); err != nil {
		log.Fatal(err)
	}
}
