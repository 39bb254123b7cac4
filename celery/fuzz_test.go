package celery

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/golden"
)

// FuzzTaskFromMessage feeds SQS bodies through EnvelopeMarshaler.Unmarshal to TaskFromMessage:
// it may not panic, every failure must wrap ErrNotATask or ErrInvalidTask, and a task read
// can be written again.
func FuzzTaskFromMessage(f *testing.F) {
	for _, v := range golden.Load(f) {
		f.Add(v.Body)
	}
	f.Add(`{"body": "W10=", "content-type": "application/json", "headers": {"task": "t"}, "properties": {"body_encoding": "base64"}}`)
	f.Add(`{"body": "e30=", "content-type": "application/json", "headers": {}, "properties": {"body_encoding": "base64"}}`)

	f.Fuzz(func(t *testing.T, body string) {
		msg, err := kombu.EnvelopeMarshaler{}.Unmarshal("q", &types.Message{
			Body: aws.String(body), MessageId: aws.String("m-1"), ReceiptHandle: aws.String("r-1"),
		})
		if err != nil {
			return
		}
		task, err := TaskFromMessage(msg)
		if err != nil {
			if !errors.Is(err, ErrNotATask) && !errors.Is(err, ErrInvalidTask) {
				t.Fatalf("TaskFromMessage: untyped error %v", err)
			}
			return
		}
		if _, err := task.Message(); err != nil && !errors.Is(err, ErrInvalidTask) {
			t.Fatalf("Task.Message of a received task: untyped error %v", err)
		}
	})
}
