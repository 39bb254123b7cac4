package testenv

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// CreateQueue creates the SQS queue name (a FIFO queue when it ends in ".fifo") with the
// given attributes, deletes it when the test ends, and returns its URL. Call it before
// creating the subscribers of the queue, so that they are closed first.
func CreateQueue(t testing.TB, client *sqs.Client, name string, attrs map[string]string) string {
	t.Helper()
	all := map[string]string{}
	for k, v := range attrs {
		all[k] = v
	}
	if strings.HasSuffix(name, ".fifo") {
		all["FifoQueue"] = "true"
	}
	out, err := client.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: all})
	if err != nil {
		t.Fatalf("testenv: creating queue %s: %v", name, err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl})
	})
	return aws.ToString(out.QueueUrl)
}

// RunRouter runs a Watermill router until the test ends, and fails the test if it does not
// start within 10 s.
func RunRouter(t testing.TB, r *message.Router) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.Run(context.Background()); err != nil {
			t.Errorf("router: %v", err)
		}
	}()
	t.Cleanup(func() { _ = r.Close(); <-done })
	select {
	case <-r.Running():
	case <-time.After(10 * time.Second):
		t.Fatal("testenv: the router did not start")
	}
}
