package testenv_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// roundTrip creates a queue, sends a message with an attribute, receives
// it, deletes it and checks the queue is then empty.
func roundTrip(t *testing.T, endpoint string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := testenv.SQSClient(t, endpoint)

	name := testenv.UniqueName(t.Name())
	created, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName:  aws.String(name),
		Attributes: map[string]string{"VisibilityTimeout": "5"},
	})
	if err != nil {
		t.Fatalf("CreateQueue %s: %v", name, err)
	}
	url := aws.ToString(created.QueueUrl)
	t.Cleanup(func() {
		_, _ = client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: aws.String(url)})
	})
	if !strings.HasSuffix(url, "/"+name) {
		t.Errorf("queue URL %q does not end with the queue name", url)
	}

	body := `{"hello": "wörld ✓"}`
	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:    aws.String(url),
		MessageBody: aws.String(body),
		MessageAttributes: map[string]types.MessageAttributeValue{
			"kind": {DataType: aws.String("String"), StringValue: aws.String("test")},
		},
	}); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}

	out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:              aws.String(url),
		MaxNumberOfMessages:   10,
		WaitTimeSeconds:       5,
		MessageAttributeNames: []string{"All"},
	})
	if err != nil {
		t.Fatalf("ReceiveMessage: %v", err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("received %d messages, want 1", len(out.Messages))
	}
	m := out.Messages[0]
	if got := aws.ToString(m.Body); got != body {
		t.Errorf("body = %q, want %q", got, body)
	}
	if got := aws.ToString(m.MessageAttributes["kind"].StringValue); got != "test" {
		t.Errorf("attribute kind = %q, want test", got)
	}
	if _, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{
		QueueUrl:      aws.String(url),
		ReceiptHandle: m.ReceiptHandle,
	}); err != nil {
		t.Fatalf("DeleteMessage: %v", err)
	}

	attrs, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll},
	})
	if err != nil {
		t.Fatalf("GetQueueAttributes: %v", err)
	}
	for _, a := range []string{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"} {
		if got := attrs.Attributes[a]; got != "0" {
			t.Errorf("%s = %q after delete, want 0", a, got)
		}
	}
}

func TestSQSRoundTrip(t *testing.T) {
	roundTrip(t, testenv.SQSEndpoint(t))
}

func TestPersistentSQSRoundTrip(t *testing.T) {
	roundTrip(t, testenv.PersistentSQSEndpoint(t))
}

func TestQueueDoesNotExistIsTyped(t *testing.T) {
	client := testenv.SQSClient(t, testenv.SQSEndpoint(t))
	_, err := client.GetQueueUrl(context.Background(), &sqs.GetQueueUrlInput{
		QueueName: aws.String(testenv.UniqueName("missing")),
	})
	var qdne *types.QueueDoesNotExist
	if err == nil || !errors.As(err, &qdne) {
		t.Fatalf("GetQueueUrl of a missing queue: err = %v, want *types.QueueDoesNotExist", err)
	}
}

func TestUniqueName(t *testing.T) {
	valid := regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	seen := map[string]bool{}
	for _, prefix := range []string{
		"", "q", "TestFoo/sub test.fifo", "ünïcode", strings.Repeat("x", 200), strings.Repeat("-", 100),
	} {
		for i := 0; i < 100; i++ {
			name := testenv.UniqueName(prefix)
			if len(name) > testenv.MaxUniqueNameLen {
				t.Fatalf("UniqueName(%q) = %q: %d characters", prefix, name, len(name))
			}
			if !valid.MatchString(name) {
				t.Fatalf("UniqueName(%q) = %q: not queue-name safe", prefix, name)
			}
			if seen[name] {
				t.Fatalf("UniqueName(%q) repeated %q", prefix, name)
			}
			seen[name] = true
		}
	}
	if name := testenv.UniqueName("orders"); !strings.HasPrefix(name, "orders-") {
		t.Errorf("UniqueName(orders) = %q, want prefix orders-", name)
	}
}

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"a b  c", []string{"a", "b", "c"}},
		{`/x/elasticmq.sh restart persistent`, []string{"/x/elasticmq.sh", "restart", "persistent"}},
		{`"/my dir/run.sh" 'a b' c\ d ""`, []string{"/my dir/run.sh", "a b", "c d", ""}},
	} {
		got, err := testenv.SplitCommand(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitCommand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := testenv.SplitCommand(`"open`); err == nil {
		t.Error("SplitCommand of an unterminated quote: no error")
	}
}

func TestRepoRootAndRestartCommand(t *testing.T) {
	root := testenv.RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("RepoRoot %s: %v", root, err)
	}
	t.Setenv(testenv.EnvRestartCommand, "")
	cmd := testenv.RestartCommand()
	want := []string{filepath.Join(root, "internal", "elasticmq", "elasticmq.sh"), "restart", "persistent"}
	if !reflect.DeepEqual(cmd, want) {
		t.Fatalf("RestartCommand() = %q, want %q", cmd, want)
	}
	if info, err := os.Stat(cmd[0]); err != nil || info.Mode()&0o111 == 0 {
		t.Fatalf("restart script %s is not executable: %v", cmd[0], err)
	}
}

func TestAWSConfig(t *testing.T) {
	cfg := testenv.AWSConfig(t, "http://127.0.0.1:1")
	if cfg.Region != testenv.Region || aws.ToString(cfg.BaseEndpoint) != "http://127.0.0.1:1" {
		t.Fatalf("AWSConfig: region %q, endpoint %q", cfg.Region, aws.ToString(cfg.BaseEndpoint))
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil || creds.AccessKeyID != testenv.AccessKeyID || creds.SecretAccessKey != testenv.SecretAccessKey {
		t.Fatalf("AWSConfig credentials: %+v, %v", creds, err)
	}
}
