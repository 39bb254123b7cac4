// Command go-worker runs Celery tasks in Go: a Python app calls them with .delay() and reads
// their results with .get(), as if a Celery worker ran them.
//
//	make up redis-up
//	go run ./examples/go-worker
//	.cache/venv/bin/python examples/go-worker/client.py
//
// Environment: SQS_ENDPOINT (http://127.0.0.1:9324), QUEUE (go-tasks), PY_QUEUE (celery, where
// callbacks to Python tasks go), REDIS_URL (redis://127.0.0.1:6379/0).
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
	"github.com/watermill-kombu/watermill-kombu/celery/redisbackend"
)

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// AddArgs are the arguments of proj.tasks.add: add.delay(2, 3) or add.delay(a=2, b=3).
type AddArgs struct {
	A int `json:"a"`
	B int `json:"b"`
}

func main() {
	queue := env("QUEUE", "go-tasks")
	cfg := kombu.Config{
		Region:          "us-east-1",
		EndpointURL:     env("SQS_ENDPOINT", "http://127.0.0.1:9324"),
		AccessKeyID:     env("AWS_ACCESS_KEY_ID", "test"),
		SecretAccessKey: env("AWS_SECRET_ACCESS_KEY", "test"),
	}
	logger := watermill.NewStdLogger(false, false)

	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, logger)
	if err != nil {
		log.Fatal(err)
	}
	defer pub.Close()
	sub, err := kombu.NewSubscriber(kombu.SubscriberConfig{Config: cfg, WaitTimeSeconds: 5}, logger)
	if err != nil {
		log.Fatal(err)
	}
	results, err := redisbackend.New(redisbackend.Config{URL: env("REDIS_URL", "redis://127.0.0.1:6379/0")})
	if err != nil {
		log.Fatal(err)
	}
	defer results.Close()

	w, err := celery.NewWorker(celery.WorkerConfig{
		Publisher:    pub,
		Results:      results,
		DefaultQueue: env("PY_QUEUE", "celery"),
	}, logger)
	if err != nil {
		log.Fatal(err)
	}

	// A typed task: arguments decoded into AddArgs, the int returned is the result.
	celery.RegisterFunc(w, "proj.tasks.add", func(_ context.Context, a AddArgs) (int, error) {
		return a.A + a.B, nil
	})
	// A task on the raw *Task: upper-cases its one argument, retrying on empty input.
	w.Register("proj.tasks.shout", func(_ context.Context, t *celery.Task) (any, error) {
		var s string
		if err := t.DecodeArgs(&s); err != nil {
			return nil, err
		}
		if s == "" {
			return nil, celery.Retry(2*time.Second, errors.New("nothing to shout"))
		}
		return strings.ToUpper(s) + "!", nil
	}, celery.MaxRetries(2))
	// A failing task: Python raises ValueError with this message.
	w.Register("proj.tasks.divide", func(_ context.Context, t *celery.Task) (any, error) {
		var a, b float64
		if err := t.DecodeArgs(&a, &b); err != nil {
			return nil, err
		}
		if b == 0 {
			return nil, celery.NewTaskError("builtins", "ValueError", fmt.Sprintf("cannot divide %g by zero", a))
		}
		return a / b, nil
	})

	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, logger)
	if err != nil {
		log.Fatal(err)
	}
	router.AddConsumerHandler("go-worker", queue, sub, w.Handler())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Printf("go-worker: serving %v on queue %s", w.Tasks(), queue)
	if err := router.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
