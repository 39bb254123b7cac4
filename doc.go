// Package kombu is a Watermill Publisher and Subscriber for Amazon SQS that reads and writes
// the message format of Kombu's SQS transport, so that Go services and Celery (Python)
// workers and producers share the same queues.
//
// A Go service can consume the tasks a Celery app sends, enqueue tasks a Celery worker
// runs, or exchange any other messages with Kombu producers and consumers. The Celery task
// protocol is in package github.com/watermill-kombu/watermill-kombu/celery (celery.NewTask,
// celery.TaskFromMessage); this package knows only Kombu's envelope and SQS transport. Configuration follows Kombu's
// `broker_transport_options` (see ParseTransportOptions, ParseBrokerURL and
// ParseCeleryBroker), so both sides can be set up from the same settings.
//
// # Quick start
//
//	sub, err := kombu.NewSubscriber(kombu.SubscriberConfig{Config: kombu.Config{Region: "eu-west-1"}}, logger)
//	...
//	router.AddConsumerHandler("add", "celery", sub, func(msg *message.Message) error {
//		task, err := celery.TaskFromMessage(msg)
//		if err != nil {
//			return err
//		}
//		var a, b int
//		return task.DecodeArgs(&a, &b)
//	})
//
// And the other way round:
//
//	msg, err := celery.NewTask("proj.tasks.add", []any{2, 3}, nil)
//	...
//	err = pub.Publish("celery", msg)
//
// For a Go service that implements Celery tasks, with results, retries and callbacks as a
// Celery worker handles them, see celery.Worker and Celery's Redis result backend in
// package github.com/watermill-kombu/watermill-kombu/celery/redisbackend.
//
// # The SQS body
//
// Kombu sends every message as an SQS body with two base64 layers. The outer layer is the
// whole body: base64 of a JSON envelope (without it when Kombu's sqs_base64_encoding is false;
// the Subscriber accepts both, see EnvelopeMarshaler.RawEnvelope). The envelope is
//
//	{"body": "<base64 of the serialized payload>",
//	 "content-encoding": "utf-8", "content-type": "application/json",
//	 "headers": {...},
//	 "properties": {"correlation_id": ..., "reply_to": ..., "delivery_mode": 2,
//	                "delivery_info": {"exchange": "", "routing_key": "celery"},
//	                "priority": 0, "body_encoding": "base64", "delivery_tag": "<uuid>"}}
//
// where the inner layer, "body", is base64 of the payload the serializer produced (JSON by
// default), possibly compressed (headers.compression). For a Celery task (protocol 2) the
// payload is [args, kwargs, embed] and the task's name, id, eta, retries... are headers.
// Envelope, DecodeEnvelope and EnvelopeMarshaler implement this format; PlainMarshaler is a
// plain alternative for traffic between Go services only.
//
// # Kombu and Watermill terms
//
//   - Queue: the Watermill topic is the Kombu queue name ("celery" by default for Celery).
//     It becomes the SQS queue name as Kombu mangles it (CanonicalQueueName, with
//     Config.QueueNamePrefix),
//     or is looked up among Config.PredefinedQueues. Names ending in ".fifo" are FIFO queues.
//   - Exchange and routing key: publishing to a topic that names one of Config.Exchanges
//     routes each message by its MetadataRoutingKey to the bound queues, as Kombu's virtual
//     direct, topic and fanout exchanges do; with Config.SupportsFanout, fanout exchanges go
//     through Amazon SNS as Kombu's supports_fanout does (docs/fanout.md). Publishing to a
//     queue writes the exchange "" and the queue name as routing key, as Celery does.
//     Received messages carry both in MetadataExchange and MetadataRoutingKey.
//   - Delivery tag: the SQS ReceiptHandle (metadata "kombu_delivery_tag").
//   - Ack: deletes the message (batched into DeleteMessageBatch calls).
//   - Reject and requeue: Nack. The message becomes visible again after the delay the
//     backoff policy gives for its receive count (SubscriberConfig.BackoffPolicy,
//     PredefinedQueue.BackoffPolicy); without one, at once for its first 3 deliveries, then
//     after 1 s doubling with each delivery up to 5 min (SubscriberConfig.NackBackoffImmediate,
//     NackBackoffInitial, NackBackoffMax, DisableNackBackoff). A message never acked nor nacked
//     comes back after the queue's visibility timeout, which the Subscriber extends while a
//     handler works on it.
//   - Concurrency: SubscriberConfig.Concurrency messages per topic are handed out at once
//     (default 16), Celery's worker_concurrency; on a FIFO queue one at a time per message
//     group, in order.
//   - Prefetch: SubscriberConfig.PrefetchCount messages per topic are received ahead of the
//     handlers, Kombu's prefetch count.
//   - Connection and channel errors: ErrConnection and ErrChannel classify every error.
//
// # Metadata
//
// The Subscriber sets MetadataSQSMessageID, MetadataReceiveCount and MetadataQueue on every
// message. EnvelopeMarshaler maps the envelope to metadata: every header under its own name (the
// Celery task name is under MetadataTask), and the properties under the kombu_* keys
// (MetadataCorrelationID, MetadataReplyTo, MetadataExchange, MetadataRoutingKey,
// MetadataPriority, MetadataExpiration, MetadataContentType...; the rarely needed
// properties have no constant: "kombu_delivery_mode", "kombu_body_encoding",
// "kombu_delivery_tag", "kombu_redelivered" and "kombu_message_deduplication_id"). When
// publishing, metadata keys that are not reserved become headers; MetadataMessageGroupID,
// MetadataDeduplicationID and MetadataDelaySeconds set the SQS parameters of the same names.
// A body that cannot be decoded is handed over with MetadataDecodeError rather than dropped.
//
// # Not supported
//
//   - Message priority: SQS has none. properties.priority is written and read back
//     (MetadataPriority, celery.WithPriority) for Celery's sake, but SQS delivers in its own order.
//   - Message TTL: properties.expiration is carried (MetadataExpiration) but SQS does not
//     expire messages by it; use the queue's MessageRetentionPeriod. Celery's task `expires`
//     is honoured by Celery's worker from the task headers, not by SQS.
//   - Serializers other than JSON, text and binary: EnvelopeMarshaler cannot decode pickle, YAML
//     or msgpack payloads (ErrUnsupportedContentType). Celery's default is JSON.
//   - Compression with brotli, lzma or zstd (zlib is read and written, bzip2 is read).
//   - Unroutable messages: a message published to an exchange routed here (not through SNS)
//     that none of its bindings matches is an error (ErrUnroutable), where Kombu drops it
//     silently.
//   - Headers exchanges, and exchange-to-exchange bindings.
//
// # Metrics
//
// Watermill's Prometheus decorators (github.com/ThreeDotsLabs/watermill/components/metrics)
// work on the Publisher and Subscriber like on any other. Package
// github.com/watermill-kombu/watermill-kombu/kombumetrics adds the SQS request counts (what
// AWS bills, see Publisher.Stats and Subscriber.Stats) and failed acks, so that only its
// users compile Prometheus.
package kombu
