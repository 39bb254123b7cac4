// Package celery is Celery's application layer on top of package kombu (the Watermill
// Publisher and Subscriber speaking Kombu's SQS format): the task protocol, a Go worker, and
// results.
//
//   - Task protocol v1 and v2: NewTask builds the message Celery's apply_async sends, with
//     per-message options named like apply_async's arguments (WithCountdown, WithETA,
//     WithExpires, WithLink...); TaskFromMessage reads the task in a received message, and
//     Task.DecodeArgs / DecodeKwargs decode its arguments. DateTime travels as a Python
//     datetime; ParseTime reads the times Celery writes.
//   - Worker runs Celery tasks received through a Watermill router as a Celery worker does:
//     eta and expires, retries (Retry, RetryDefault), callbacks, errbacks, chains and time
//     limits (SoftTimeLimit). Register and RegisterFunc take the task decorator's settings as
//     options without a With prefix (MaxRetries, RetryDelay, IgnoreResult).
//   - ResultBackend stores task states where Celery clients read them; TaskResult marshals
//     to Celery's result document, with the task's request (RequestInfo) when the Worker
//     runs with Celery's result_extended (WorkerConfig.ResultExtended). Package
//     celery/redisbackend is Celery's Redis backend.
//
// Example, a Go handler for a Celery task:
//
//	router.AddConsumerHandler("add", "celery", sub, func(msg *message.Message) error {
//		task, err := celery.TaskFromMessage(msg)
//		if err != nil {
//			return err
//		}
//		var a, b int
//		return task.DecodeArgs(&a, &b)
//	})
package celery
