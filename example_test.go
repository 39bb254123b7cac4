package kombu_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
)

// Enqueue a task for a Celery worker consuming the default "celery" queue.
func ExamplePublisher() {
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: kombu.Config{
		Region:      "us-east-1",
		EndpointURL: "http://127.0.0.1:9324", // ElasticMQ; leave empty for AWS
	}}, watermill.NewStdLogger(false, false))
	if err != nil {
		log.Fatal(err)
	}
	defer pub.Close()

	msg, err := celery.NewTask("proj.tasks.add", []any{2, 3}, nil, celery.WithCountdown(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	if err := pub.Publish("celery", msg); err != nil {
		log.Fatal(err)
	}
	fmt.Println("sent task", msg.UUID)
}

// Run the tasks a Celery app sends to the "celery" queue in a Watermill router. An error
// from the handler Nacks the message, which comes back after the backoff policy's delay.
func ExampleSubscriber() {
	sub, err := kombu.NewSubscriber(kombu.SubscriberConfig{
		Config:        kombu.Config{Region: "us-east-1", EndpointURL: "http://127.0.0.1:9324"},
		BackoffPolicy: map[int]int{1: 10, 2: 20, 3: 40},
	}, watermill.NewStdLogger(false, false))
	if err != nil {
		log.Fatal(err)
	}
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NewStdLogger(false, false))
	if err != nil {
		log.Fatal(err)
	}
	router.AddConsumerHandler("add", "celery", sub, func(msg *message.Message) error {
		task, err := celery.TaskFromMessage(msg)
		if err != nil {
			return err
		}
		var a, b int
		if err := task.DecodeArgs(&a, &b); err != nil {
			return err
		}
		fmt.Printf("%s(%d, %d) = %d\n", task.Name, a, b, a+b)
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := router.Run(ctx); err != nil {
		log.Fatal(err)
	}
}

// The same broker_transport_options a Celery app uses configure the Subscriber and Publisher.
func ExampleParseTransportOptions() {
	opts, err := kombu.ParseTransportOptions(map[string]any{
		"region":             "eu-west-1",
		"visibility_timeout": 3600,
		"polling_interval":   0.3,
		"wait_time_seconds":  5,
		"predefined_queues": map[string]any{
			"celery": map[string]any{
				"url":            "https://sqs.eu-west-1.amazonaws.com/123456789012/celery",
				"backoff_policy": map[int]int{1: 10, 2: 20},
				"backoff_tasks":  []string{"proj.tasks.add"},
			},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(opts.Region, opts.VisibilityTimeout, opts.PollingInterval, opts.WaitTimeSeconds)
	q := opts.PredefinedQueues["celery"]
	fmt.Println(q.URL, q.BackoffPolicy, q.BackoffTasks)
	// Output:
	// eu-west-1 1h0m0s 300ms 5
	// https://sqs.eu-west-1.amazonaws.com/123456789012/celery map[1:10 2:20] [proj.tasks.add]
}

// Route messages through a Kombu topic exchange: each goes to the queues whose binding
// pattern matches its routing key.
func ExampleExchange() {
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: kombu.Config{
		Region:      "us-east-1",
		EndpointURL: "http://127.0.0.1:9324",
		Exchanges: map[string]kombu.Exchange{
			"events": {Type: kombu.ExchangeTopic, Bindings: []kombu.Binding{
				{Queue: "audit", RoutingKey: "#"},
				{Queue: "orders", RoutingKey: "orders.*"},
			}},
		},
	}}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer pub.Close()

	msg := message.NewMessage(watermill.NewUUID(), []byte(`{"id": 7}`))
	msg.Metadata.Set(kombu.MetadataRoutingKey, "orders.created") // to audit and orders
	if err := pub.Publish("events", msg); err != nil {
		log.Fatal(err)
	}
}
