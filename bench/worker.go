package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
)

// consumeWorker runs the queues' bench.noop tasks with a Go celery.Worker through a
// message.Router, in its default configuration and without a result backend, as the Celery
// worker rows run them.
func consumeWorker(a childArgs) (childResult, error) {
	sub, err := kombu.NewSubscriber(subscriberConfig(a), nil)
	if err != nil {
		return childResult{}, err
	}
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: benchConfig(a.endpoint)}, nil)
	if err != nil {
		return childResult{}, err
	}
	defer pub.Close()
	w, err := celery.NewWorker(celery.WorkerConfig{Publisher: pub}, nil)
	if err != nil {
		return childResult{}, err
	}
	tr := newTracker(a.n)
	w.Register("bench.noop", func(_ context.Context, t *celery.Task) (any, error) {
		if a.handler > 0 {
			time.Sleep(a.handler)
		}
		var ts int64
		if v, ok := t.Headers["bench_ts"].(string); ok {
			ts, _ = strconv.ParseInt(v, 10, 64)
		}
		tr.handled(ts)
		return nil, nil
	})
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, watermill.NopLogger{})
	if err != nil {
		return childResult{}, err
	}
	for _, q := range a.queues {
		router.AddConsumerHandler("worker-"+q, q, sub, w.Handler())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready()
	go func() { _ = router.Run(ctx) }()
	if err := tr.wait(15 * time.Second); err != nil {
		return childResult{}, fmt.Errorf("go worker: %w", err)
	}
	cpu := cpuNow()
	_ = router.Close()
	_ = sub.Close()
	return tr.result(a.n, cpu, sub.Stats().Total()), nil
}
