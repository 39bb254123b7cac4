package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
)

// taskName is the no-op Celery task every benchmark message runs.
const taskName = "bench.noop"

// benchConfig is the library Config for the benchmark broker (ElasticMQ accepts any key).
func benchConfig(endpoint string) kombu.Config {
	return kombu.Config{
		Region:          "us-east-1",
		EndpointURL:     endpoint,
		AccessKeyID:     "bench",
		SecretAccessKey: "bench",
	}
}

// newSQSClient is a plain aws-sdk-go-v2 client for the endpoint.
func newSQSClient(ctx context.Context, endpoint string) (*sqs.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("bench", "bench", "")),
	)
	if err != nil {
		return nil, err
	}
	return sqs.NewFromConfig(cfg, func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		if os.Getenv("BENCH_DEBUG") != "" {
			o.ClientLogMode = aws.LogRetries
		}
	}), nil
}

// padding is size bytes of ASCII text.
func padding(size int) string { return strings.Repeat("x", size) }

// benchPayload is a JSON payload of about size bytes, what the publishers send.
func benchPayload(size int) []byte {
	b, _ := json.Marshal([]any{[]any{time.Now().UnixMicro(), padding(size)}, map[string]any{}, map[string]any{}})
	return b
}

// encodedBody is a Kombu SQS body carrying benchPayload, encoded once (what the SDK publish loops
// send).
func encodedBody(size int) (string, error) {
	env := kombu.Envelope{
		Body:            benchPayload(size),
		ContentType:     "application/json",
		ContentEncoding: "utf-8",
		Properties: kombu.Properties{
			RoutingKey: "bench", BodyEncoding: "base64",
			DeliveryTag: "00000000-0000-0000-0000-000000000000",
		},
	}
	return env.Encode(), nil
}

// taskBody is the SQS body of a Celery task bench.noop(ts, padding) for queue q, as Celery would
// send it, with the publish time also in the bench_ts header.
func taskBody(q string, size int, ts int64) (string, error) {
	msg, err := celery.NewTask(taskName, []any{ts, padding(size)}, nil,
		celery.WithHeaders(map[string]any{"bench_ts": strconv.FormatInt(ts, 10)}), celery.WithIgnoreResult())
	if err != nil {
		return "", err
	}
	out, err := kombu.EnvelopeMarshaler{}.Marshal(kombu.Destination{Queue: q, RoutingKey: q}, msg)
	if err != nil {
		return "", err
	}
	return out.Body, nil
}

// broker wraps the orchestrator's own SQS client.
type broker struct {
	client *sqs.Client
	urls   map[string]string
	mu     sync.Mutex
}

func newBroker(ctx context.Context, endpoint string) (*broker, error) {
	c, err := newSQSClient(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	return &broker{client: c, urls: map[string]string{}}, nil
}

// create makes fresh queues named prefix-0 .. prefix-(k-1).
func (b *broker) create(ctx context.Context, prefix string, k int) ([]string, error) {
	var names []string
	for i := 0; i < k; i++ {
		name := fmt.Sprintf("%s-%d", prefix, i)
		out, err := b.client.CreateQueue(ctx, &sqs.CreateQueueInput{
			QueueName:  aws.String(name),
			Attributes: map[string]string{"VisibilityTimeout": "1800"},
		})
		if err != nil {
			return nil, err
		}
		b.mu.Lock()
		b.urls[name] = aws.ToString(out.QueueUrl)
		b.mu.Unlock()
		names = append(names, name)
	}
	return names, nil
}

// remove deletes the queues.
func (b *broker) remove(ctx context.Context, names []string) {
	for _, n := range names {
		b.mu.Lock()
		u := b.urls[n]
		delete(b.urls, n)
		b.mu.Unlock()
		if u != "" {
			_, _ = b.client.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(u)})
		}
	}
}

// send puts n task messages of the given size, spread over the queues, with the publish time in
// the body, a header and the bench_ts message attribute. rate > 0 paces them (messages/s).
func (b *broker) send(ctx context.Context, queues []string, n, size int, rate float64) error {
	bodies := map[string]string{}
	for _, q := range queues {
		body, err := taskBody(q, size, 0)
		if err != nil {
			return err
		}
		bodies[q] = body
	}
	per := 10
	if rate > 0 {
		per = 1
	}
	workers := 4
	if rate > 0 {
		workers = 1
	}
	start := time.Now()
	var sent int64
	var mu sync.Mutex
	return runWorkers(queues, workers, n, per, func(q string, k int) error {
		if rate > 0 {
			mu.Lock()
			due := start.Add(time.Duration(float64(sent) / rate * float64(time.Second)))
			sent++
			mu.Unlock()
			time.Sleep(time.Until(due))
		}
		entries := make([]types.SendMessageBatchRequestEntry, k)
		for i := range entries {
			ts := int64(0)
			body := bodies[q]
			if rate > 0 {
				ts = time.Now().UnixMicro()
				var err error
				if body, err = taskBody(q, size, ts); err != nil {
					return err
				}
			}
			entries[i] = types.SendMessageBatchRequestEntry{
				Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(body),
				MessageAttributes: map[string]types.MessageAttributeValue{
					"bench_ts": {DataType: aws.String("Number"), StringValue: aws.String(strconv.FormatInt(ts, 10))},
				},
			}
		}
		b.mu.Lock()
		u := b.urls[q]
		b.mu.Unlock()
		out, err := b.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(u), Entries: entries})
		if err == nil && len(out.Failed) > 0 {
			err = fmt.Errorf("prefill: %d entries failed: %s", len(out.Failed), aws.ToString(out.Failed[0].Message))
		}
		return err
	})
}

// runFill creates queues and fills them with task messages, then prints their names: with the
// child's -cpuprofile flag, it profiles one client by hand.
func runFill(args []string) error {
	fs := flag.NewFlagSet("fill", flag.ContinueOnError)
	endpoint := fs.String("endpoint", "http://127.0.0.1:9324", "SQS endpoint")
	prefix := fs.String("prefix", fmt.Sprintf("bench-fill-%d", os.Getpid()), "queue name prefix")
	k := fs.Int("queues", 4, "queues")
	n := fs.Int("n", 10000, "messages")
	size := fs.Int("size", 200, "padding bytes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx := context.Background()
	b, err := newBroker(ctx, *endpoint)
	if err != nil {
		return err
	}
	qs, err := b.create(ctx, *prefix, *k)
	if err != nil {
		return err
	}
	if err := b.send(ctx, qs, *n, *size, 0); err != nil {
		return err
	}
	fmt.Println(strings.Join(qs, ","))
	return nil
}
