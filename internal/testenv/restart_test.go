//go:build harness

package testenv_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// TestPersistentBrokerSurvivesRestart restarts the persistent broker, so it
// would disturb other packages' tests running at the same time: it is built
// only with the harness tag (`make test-harness`).
func TestPersistentBrokerSurvivesRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	endpoint := testenv.PersistentSQSEndpoint(t)
	client := testenv.SQSClient(t, endpoint)

	name := testenv.UniqueName(t.Name())
	created, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatalf("CreateQueue: %v", err)
	}
	url := created.QueueUrl
	t.Cleanup(func() {
		_, _ = client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: url})
	})
	const n = 5
	for i := 0; i < n; i++ {
		if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{
			QueueUrl:    url,
			MessageBody: aws.String("persisted ✓ " + string(rune('a'+i))),
		}); err != nil {
			t.Fatalf("SendMessage: %v", err)
		}
	}

	start := time.Now()
	testenv.RestartPersistent(t)
	t.Logf("restart took %s", time.Since(start).Round(time.Millisecond))

	got := map[string]bool{}
	for len(got) < n && ctx.Err() == nil {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
		})
		if err != nil {
			t.Fatalf("ReceiveMessage after restart: %v", err)
		}
		for _, m := range out.Messages {
			got[aws.ToString(m.Body)] = true
		}
	}
	for i := 0; i < n; i++ {
		if b := "persisted ✓ " + string(rune('a'+i)); !got[b] {
			t.Errorf("message %q lost across restart", b)
		}
	}
}
