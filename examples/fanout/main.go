// Command fanout broadcasts messages to several queues through a Kombu fanout exchange.
//
//	go run ./examples/fanout
//
// Config.Exchanges declares the exchange "example-notifications" of type fanout, bound to
// three queues. Publishing to the exchange's name sends a copy of every message to each bound
// queue, with delivery_info.exchange set as Kombu's virtual exchanges write it, so Celery
// workers on those queues see the same as with a Kombu producer. The program subscribes to
// the three queues, publishes two messages, prints who got what and exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	kombu "github.com/watermill-kombu/watermill-kombu"
)

func main() {
	endpoint := flag.String("endpoint", "http://127.0.0.1:9324", "SQS endpoint (ElasticMQ)")
	timeout := flag.Duration("timeout", 30*time.Second, "give up after this long")
	flag.Parse()
	if err := run(*endpoint, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "fanout:", err)
		os.Exit(1)
	}
}

const exchange = "example-notifications"

var queues = []string{"example-email", "example-sms", "example-audit"}

func run(endpoint string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	ex := kombu.Exchange{Type: kombu.ExchangeFanout}
	for _, q := range queues {
		ex.Bindings = append(ex.Bindings, kombu.Binding{Queue: q})
	}
	cfg := kombu.Config{
		Region: "us-east-1", EndpointURL: endpoint, AccessKeyID: "test", SecretAccessKey: "test",
		Exchanges: map[string]kombu.Exchange{exchange: ex},
	}
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, nil)
	if err != nil {
		return err
	}
	defer pub.Close()
	sub, err := kombu.NewSubscriber(kombu.SubscriberConfig{Config: cfg, WaitTimeSeconds: 1, PollingInterval: 50 * time.Millisecond}, nil)
	if err != nil {
		return err
	}
	defer sub.Close()

	type delivery struct {
		queue string
		msg   *message.Message
	}
	all := make(chan delivery)
	for _, q := range queues {
		ch, err := sub.Subscribe(ctx, q)
		if err != nil {
			return err
		}
		go func() {
			for m := range ch {
				select {
				case all <- delivery{q, m}:
				case <-ctx.Done():
					m.Nack()
					return
				}
			}
		}()
	}

	run := watermill.NewShortUUID() // tells this run's messages from any left over
	var sent []*message.Message
	for i, text := range []string{"maintenance at 22:00", "maintenance done"} {
		m := message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprintf(`{"notice": %q}`, text)))
		m.Metadata.Set(kombu.MetadataRoutingKey, fmt.Sprintf("notice.%d", i+1)) // fanout ignores it
		m.Metadata.Set("run", run)
		sent = append(sent, m)
	}
	if err := pub.Publish(exchange, sent...); err != nil {
		return err
	}
	fmt.Printf("published %d messages to the fanout exchange %q\n", len(sent), exchange)

	got := map[string]int{}
	for n := 0; n < len(sent)*len(queues); {
		select {
		case d := <-all:
			d.msg.Ack()
			if d.msg.Metadata.Get("run") != run {
				continue
			}
			n++
			got[d.queue]++
			fmt.Printf("  %-14s got %s (exchange %q, routing key %q)\n", d.queue, d.msg.Payload,
				d.msg.Metadata.Get(kombu.MetadataExchange), d.msg.Metadata.Get(kombu.MetadataRoutingKey))
		case <-ctx.Done():
			return errors.New("timed out")
		}
	}
	names := make([]string, 0, len(got))
	for q := range got {
		names = append(names, q)
	}
	sort.Strings(names)
	fmt.Printf("every queue got every message: %v\n", names)
	return nil
}
