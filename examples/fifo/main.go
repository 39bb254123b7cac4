// Command fifo publishes to and consumes from an SQS FIFO queue the way Kombu does.
//
//	go run ./examples/fifo
//
// A Kombu queue whose name ends in ".fifo" is a FIFO queue. Messages of one message group
// (metadata MessageGroupId; Kombu's default group is "default") are delivered in the order
// they were sent, one at a time; different groups proceed independently. Setting
// MessageDeduplicationId (here to the message UUID) makes SQS drop a message published
// again within five minutes. The program publishes the events of two customers interleaved,
// one of them twice, prints the order they arrive in and exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
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
		fmt.Fprintln(os.Stderr, "fifo:", err)
		os.Exit(1)
	}
}

const queue = "example-orders.fifo"

func run(endpoint string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	cfg := kombu.Config{Region: "us-east-1", EndpointURL: endpoint, AccessKeyID: "test", SecretAccessKey: "test"}
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

	run := watermill.NewShortUUID() // tells this run's messages from any left over
	events := map[string][]string{
		"customer-1": {"cart created", "item added", "checked out", "paid"},
		"customer-2": {"cart created", "item added", "item removed", "abandoned"},
	}
	var msgs []*message.Message
	for i := 0; i < 4; i++ {
		for _, group := range []string{"customer-1", "customer-2"} {
			m := message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprintf("%q", events[group][i])))
			m.Metadata.Set(kombu.MetadataMessageGroupID, group)
			m.Metadata.Set(kombu.MetadataDeduplicationID, m.UUID)
			m.Metadata.Set("run", run)
			msgs = append(msgs, m)
		}
	}
	if err := pub.Publish(queue, msgs...); err != nil {
		return err
	}
	// The same message again: SQS drops it, having seen its deduplication id.
	again := msgs[2].Copy()
	if err := pub.Publish(queue, again); err != nil {
		return err
	}
	fmt.Printf("published %d events of 2 customers to %s, and one of them a second time\n", len(msgs), queue)

	received, err := sub.Subscribe(ctx, queue)
	if err != nil {
		return err
	}
	got := map[string][]string{}
	count := 0
	// Wait for the events, then a little longer: a duplicate would show up.
	var quiet <-chan time.Time
	for {
		select {
		case m := <-received:
			m.Ack()
			if m.Metadata.Get("run") != run {
				continue
			}
			group := m.Metadata.Get(kombu.MetadataReceivedGroupID)
			event := strings.Trim(string(m.Payload), `"`)
			fmt.Printf("  %-10s %s\n", group, event)
			got[group] = append(got[group], event)
			if count++; count == len(msgs) {
				quiet = time.After(time.Second)
			}
		case <-quiet:
			for group, want := range events {
				if strings.Join(got[group], ",") != strings.Join(want, ",") {
					return fmt.Errorf("%s: got %q, want %q", group, got[group], want)
				}
			}
			fmt.Printf("received %d events, each customer's in order, the duplicate dropped\n", count)
			return nil
		case <-ctx.Done():
			return errors.New("timed out")
		}
	}
}
