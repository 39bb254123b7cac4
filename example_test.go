package kombu_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/prometheus/client_golang/prometheus"

	kombu "github.com/watermill-kombu/watermill-kombu"
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

	msg, err := kombu.NewTask("proj.tasks.add", []any{2, 3}, nil, kombu.WithCountdown(10*time.Second))
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
		task, err := kombu.TaskFromMessage(msg)
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

// The message NewTask builds is the one Celery's apply_async sends: protocol 2, the
// arguments in the payload and the task's name and id in the headers.
func ExampleNewTask() {
	msg, err := kombu.NewTask("proj.tasks.add", []any{2, 3}, map[string]any{"debug": true},
		kombu.WithTaskID("0a7a0c5e-3f6b-4a0e-9a55-3d2b0c6e1f00"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(msg.UUID)
	fmt.Println(msg.Metadata.Get(kombu.MetadataTask))
	fmt.Println(string(msg.Payload))
	// Output:
	// 0a7a0c5e-3f6b-4a0e-9a55-3d2b0c6e1f00
	// proj.tasks.add
	// [[2, 3], {"debug": true}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]
}

// TaskFromMessage reads the task in a message the Subscriber received. Here the SQS message
// is made by KombuMarshaler, as Celery would have sent it.
func ExampleTaskFromMessage() {
	sent, _ := kombu.NewTask("proj.tasks.resize", []any{"cat.png", 640}, map[string]any{"keep_ratio": true},
		kombu.WithTaskID("6f1c1a9e-0000-4000-8000-000000000001"), kombu.WithRetries(1))
	out, _ := kombu.KombuMarshaler{}.Marshal(kombu.Destination{Queue: "celery", RoutingKey: "celery"}, sent)
	received, err := kombu.KombuMarshaler{}.Unmarshal("celery", &types.Message{
		Body: aws.String(out.Body), MessageId: aws.String("m-1"), ReceiptHandle: aws.String("r-1"),
	})
	if err != nil {
		log.Fatal(err)
	}

	task, err := kombu.TaskFromMessage(received)
	if err != nil {
		log.Fatal(err)
	}
	var (
		file  string
		width int
		opts  struct {
			KeepRatio bool `json:"keep_ratio"`
		}
	)
	if err := task.DecodeArgs(&file, &width); err != nil {
		log.Fatal(err)
	}
	if err := task.DecodeKwargs(&opts); err != nil {
		log.Fatal(err)
	}
	fmt.Println(task.Name, task.ID, task.Retries)
	fmt.Println(file, width, opts.KeepRatio)
	fmt.Println(received.Metadata.Get(kombu.MetadataRoutingKey))
	// Output:
	// proj.tasks.resize 6f1c1a9e-0000-4000-8000-000000000001 1
	// cat.png 640 true
	// celery
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

// Export the SQS requests a Subscriber sends, and its failed acks, to Prometheus.
func ExampleRegisterSubscriberMetrics() {
	sub, err := kombu.NewSubscriber(kombu.SubscriberConfig{Config: kombu.Config{Region: "us-east-1"}}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	registry := prometheus.NewRegistry()
	if err := kombu.RegisterSubscriberMetrics(registry, "orders-consumer", sub); err != nil {
		log.Fatal(err)
	}
}
