// Command demo shows Go and Celery sharing SQS queues through watermill-kombu.
//
// It prints each Celery task it receives on the queue demo-go, enqueues tasks.mul tasks on
// demo-celery for a Celery worker (interop/demo_app.py), and prints the results the worker
// reports back on demo-results. It exits once it has received -tasks tasks and every result,
// or after -timeout. `make demo` runs the whole scene against the local ElasticMQ.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
)

const (
	toGo       = "demo-go"
	toCelery   = "demo-celery"
	fromCelery = "demo-results"
)

func main() {
	endpoint := flag.String("endpoint", envOr("DEMO_SQS_ENDPOINT", "http://127.0.0.1:9324"), "SQS endpoint")
	wantTasks := flag.Int("tasks", 3, "exit after receiving this many tasks on "+toGo+" (and every result)")
	timeout := flag.Duration("timeout", 60*time.Second, "give up after this long")
	flag.Parse()
	if err := run(*endpoint, *wantTasks, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func run(endpoint string, wantTasks int, timeout time.Duration) error {
	cfg := kombu.Config{Region: "us-east-1", EndpointURL: endpoint, AccessKeyID: "test", SecretAccessKey: "test"}
	logger := watermill.NopLogger{}
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, logger)
	if err != nil {
		return err
	}
	defer pub.Close()
	sub, err := kombu.NewSubscriber(kombu.SubscriberConfig{Config: cfg, WaitTimeSeconds: 1, PollingInterval: 100 * time.Millisecond}, logger)
	if err != nil {
		return err
	}
	defer sub.Close()

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tasks, err := sub.Subscribe(ctx, toGo)
	if err != nil {
		return err
	}
	results, err := sub.Subscribe(ctx, fromCelery)
	if err != nil {
		return err
	}

	// (b) Go → Celery: tasks.mul for the Celery worker, protocol 2 and 1.
	pending := map[string]bool{}
	for _, send := range []struct {
		args   []any
		kwargs map[string]any
		opts   []celery.TaskOption
	}{
		{args: []any{4, 5}},
		{args: []any{6, 7}, opts: []celery.TaskOption{celery.WithProtocol(1)}},
		{kwargs: map[string]any{"x": 3, "y": 9}},
	} {
		msg, err := celery.NewTask("tasks.mul", send.args, send.kwargs, send.opts...)
		if err != nil {
			return err
		}
		if err := pub.Publish(toCelery, msg); err != nil {
			return err
		}
		pending[msg.UUID] = true
	}
	fmt.Printf("[go] enqueued %d tasks.mul tasks on %s\n", len(pending), toCelery)

	// (a) Celery → Go: print what arrives, until everything has.
	received := 0
	for received < wantTasks || len(pending) > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out after %s: %d of %d tasks received, %d results missing (is the Celery worker running?)",
				timeout, received, wantTasks, len(pending))
		case msg, ok := <-tasks:
			if !ok {
				return errors.New("subscription closed")
			}
			task, err := celery.TaskFromMessage(msg)
			if err != nil {
				fmt.Printf("[celery → go] not a task (%v): %s\n", err, msg.Payload)
			} else {
				fmt.Printf("[celery → go] %s\n", callText(task.Name, task.RawArgs, task.RawKwargs))
				received++
			}
			msg.Ack()
		case msg, ok := <-results:
			if !ok {
				return errors.New("subscription closed")
			}
			reportResult(msg, pending)
			msg.Ack()
		}
	}
	fmt.Printf("[go] done: %d tasks from Celery, every result back from the worker\n", received)
	return nil
}

// reportResult prints a demo.result task sent by the worker: [task id, name, args, kwargs, result].
func reportResult(msg *message.Message, pending map[string]bool) {
	task, err := celery.TaskFromMessage(msg)
	if err != nil {
		return
	}
	var id, name string
	var args, kwargs, result json.RawMessage
	if err := task.DecodeArgs(&id, &name, &args, &kwargs, &result); err != nil {
		fmt.Printf("[go] unexpected result message: %v\n", err)
		return
	}
	if !pending[id] {
		return // left over from an earlier run
	}
	delete(pending, id)
	fmt.Printf("[go → celery] %s = %s\n", callText(name, args, kwargs), result)
}

// callText writes a call like Python would show it: name(1, 'a', key=2).
func callText(name string, args, kwargs json.RawMessage) string {
	var parts []string
	var list []json.RawMessage
	if json.Unmarshal(args, &list) == nil {
		for _, a := range list {
			parts = append(parts, compact(a))
		}
	}
	var dict map[string]json.RawMessage
	if json.Unmarshal(kwargs, &dict) == nil {
		keys := make([]string, 0, len(dict))
		for k := range dict {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			parts = append(parts, k+"="+compact(dict[k]))
		}
	}
	return name + "(" + strings.Join(parts, ", ") + ")"
}

// compact re-encodes a JSON value on one line, with non-ASCII text as it is.
func compact(v json.RawMessage) string {
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var x any
	if dec.Decode(&x) != nil {
		return string(v)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(x) != nil {
		return string(v)
	}
	return strings.TrimSpace(b.String())
}
