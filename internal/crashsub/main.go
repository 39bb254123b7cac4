// Command crashsub subscribes to one queue and holds every message it gets without acking it,
// until it is killed. The consumer crash test runs it, kills it with SIGKILL and checks that
// another consumer receives the held messages once their visibility timeout runs out.
//
// Usage: crashsub -endpoint http://127.0.0.1:9324 -topic NAME [-prefetch 20]
//
// It prints "holding N" whenever the handler takes a message (N counts them).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	kombu "github.com/watermill-kombu/watermill-kombu"
)

func main() {
	endpoint := flag.String("endpoint", "http://127.0.0.1:9324", "SQS endpoint")
	topic := flag.String("topic", "", "Kombu queue name")
	prefetch := flag.Int("prefetch", 20, "messages received ahead of the handler")
	flag.Parse()
	if *topic == "" {
		fmt.Fprintln(os.Stderr, "crashsub: -topic is required")
		os.Exit(2)
	}
	sub, err := kombu.NewSubscriber(kombu.SubscriberConfig{
		Config: kombu.Config{
			Region: "us-east-1", EndpointURL: *endpoint, AccessKeyID: "test", SecretAccessKey: "test",
		},
		WaitTimeSeconds: 1,
		PollingInterval: 50 * time.Millisecond,
		PrefetchCount:   *prefetch,
	}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crashsub:", err)
		os.Exit(1)
	}
	msgs, err := sub.Subscribe(context.Background(), *topic)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crashsub:", err)
		os.Exit(1)
	}
	n := 0
	for range msgs {
		// Never acked: the subscriber hands over no more until this one is settled, and
		// keeps the buffered ones invisible with its heartbeat.
		n++
		fmt.Printf("holding %d\n", n)
	}
}
