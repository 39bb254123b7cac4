package celery_test

import (
	"fmt"
	"log"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
)

// The message NewTask builds is the one Celery's apply_async sends: protocol 2, the
// arguments in the payload and the task's name and id in the headers.
func ExampleNewTask() {
	msg, err := celery.NewTask("proj.tasks.add", []any{2, 3}, map[string]any{"debug": true},
		celery.WithTaskID("0a7a0c5e-3f6b-4a0e-9a55-3d2b0c6e1f00"))
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
// is made by EnvelopeMarshaler, as Celery would have sent it.
func ExampleTaskFromMessage() {
	sent, _ := celery.NewTask("proj.tasks.resize", []any{"cat.png", 640}, map[string]any{"keep_ratio": true},
		celery.WithTaskID("6f1c1a9e-0000-4000-8000-000000000001"), celery.WithRetryCount(1))
	out, _ := kombu.EnvelopeMarshaler{}.Marshal(kombu.Destination{Queue: "celery", RoutingKey: "celery"}, sent)
	received, err := kombu.EnvelopeMarshaler{}.Unmarshal("celery", &types.Message{
		Body: aws.String(out.Body), MessageId: aws.String("m-1"), ReceiptHandle: aws.String("r-1"),
	})
	if err != nil {
		log.Fatal(err)
	}

	task, err := celery.TaskFromMessage(received)
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
