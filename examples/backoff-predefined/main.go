// Command backoff-predefined shows Kombu's predefined queues with their own credentials and
// backoff policy.
//
//	go run ./examples/backoff-predefined
//
// Predefined queues are SQS queues given by URL (Kombu's `predefined_queues`): they are
// never listed or created, and each may be signed with its own credentials. The program
// creates one on the local ElasticMQ (standing for a queue your infrastructure made), maps
// the Kombu queue "reports" to it, and runs a handler that fails the first two deliveries of
// every task. The backoff policy {1: 1, 2: 2} applies to reports.tasks.build only: its
// retries wait 1 s then 2 s, while reports.tasks.ping, not listed in BackoffTasks, is retried
// at once. It prints each delivery and exits when both tasks succeeded.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
)

func main() {
	endpoint := flag.String("endpoint", "http://127.0.0.1:9324", "SQS endpoint (ElasticMQ)")
	timeout := flag.Duration("timeout", 30*time.Second, "give up after this long")
	flag.Parse()
	if err := run(*endpoint, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "backoff-predefined:", err)
		os.Exit(1)
	}
}

func run(endpoint string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	url, cleanup, err := createQueue(ctx, endpoint, fmt.Sprintf("example-reports-%d", os.Getpid()))
	if err != nil {
		return err
	}
	defer cleanup()

	cfg := kombu.Config{
		Region:      "us-east-1",
		EndpointURL: endpoint,
		// The default credentials, for queues without their own.
		AccessKeyID: "default-key", SecretAccessKey: "default-secret",
		PredefinedQueues: map[string]kombu.PredefinedQueue{
			"reports": {
				URL: url,
				// This queue's requests are signed with these (ElasticMQ accepts any).
				AccessKeyID: "reports-key", SecretAccessKey: "reports-secret",
				BackoffPolicy: map[int]int{1: 1, 2: 2},
				BackoffTasks:  []string{"reports.tasks.build"},
			},
		},
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

	start := time.Now()
	var (
		mu        sync.Mutex
		last      = map[string]time.Time{}
		succeeded = make(chan string, 2)
	)
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, watermill.NopLogger{})
	if err != nil {
		return err
	}
	router.AddConsumerHandler("reports", "reports", sub, func(msg *message.Message) error {
		task, err := celery.TaskFromMessage(msg)
		if err != nil {
			return nil // not a task: drop it
		}
		delivery, _ := strconv.Atoi(msg.Metadata.Get(kombu.MetadataReceiveCount))
		mu.Lock()
		gap := ""
		if prev, ok := last[task.Name]; ok {
			gap = fmt.Sprintf(", %.1f s after the previous failure", time.Since(prev).Seconds())
		}
		last[task.Name] = time.Now()
		mu.Unlock()
		at := time.Since(start).Seconds()
		if delivery < 3 {
			fmt.Printf("%5.1fs  %-20s delivery %d%s: failing\n", at, task.Name, delivery, gap)
			return fmt.Errorf("%s failed on delivery %d", task.Name, delivery) // Nack
		}
		fmt.Printf("%5.1fs  %-20s delivery %d%s: done\n", at, task.Name, delivery, gap)
		succeeded <- task.Name
		return nil
	})
	routerDone := make(chan error, 1)
	go func() { routerDone <- router.Run(ctx) }()
	defer func() { _ = router.Close(); <-routerDone }()
	<-router.Running()

	fmt.Println("publishing reports.tasks.build and reports.tasks.ping to the predefined queue \"reports\"")
	for _, name := range []string{"reports.tasks.build", "reports.tasks.ping"} {
		msg, err := celery.NewTask(name, []any{"2026-Q3"}, nil)
		if err != nil {
			return err
		}
		if err := pub.Publish("reports", msg); err != nil {
			return err
		}
	}
	for i := 0; i < 2; i++ {
		select {
		case <-succeeded:
		case <-ctx.Done():
			return fmt.Errorf("timed out")
		}
	}
	fmt.Println("both tasks done; the build task waited 1 s and 2 s between deliveries, the ping task not at all")
	fmt.Printf("SQS requests: publisher %d, subscriber %d\n", pub.Stats().Total(), sub.Stats().Total())
	return nil
}

// createQueue creates an SQS queue, as an infrastructure tool would for a predefined queue,
// and returns its URL and a function deleting it.
func createQueue(ctx context.Context, endpoint, name string) (string, func(), error) {
	client := sqs.New(sqs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("admin-key", "admin-secret", ""),
	})
	out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName:  aws.String(name),
		Attributes: map[string]string{"VisibilityTimeout": "30"},
	})
	if err != nil {
		return "", nil, fmt.Errorf("creating queue %s on %s: %w (is ElasticMQ running? `make up`)", name, endpoint, err)
	}
	return aws.ToString(out.QueueUrl), func() {
		_, _ = client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl})
	}, nil
}
