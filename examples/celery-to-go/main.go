// Command celery-to-go runs, in a Watermill router, the tasks a Celery app sends.
//
//	go run ./examples/celery-to-go
//
// It starts send_tasks.py (next to this file) with the project's Python virtualenv
// (.cache/venv, made by `make venv`), which sends shop.tasks.charge tasks with Celery's
// send_task to the queue example-celery-to-go on the local ElasticMQ. The Go handler decodes
// each task and prints it. The program exits once every task sent has run, or after -timeout.
// With -send=false it only consumes -tasks tasks, e.g. ones your own Celery app sends.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
)

func main() {
	endpoint := flag.String("endpoint", "http://127.0.0.1:9324", "SQS endpoint (ElasticMQ)")
	queue := flag.String("queue", "example-celery-to-go", "Celery queue to consume")
	tasks := flag.Int("tasks", 3, "number of tasks to send and run")
	send := flag.Bool("send", true, "send the tasks with send_tasks.py (Celery) first")
	python := flag.String("python", defaultPython(), "Python with Celery installed")
	timeout := flag.Duration("timeout", 30*time.Second, "give up after this long")
	flag.Parse()

	if err := run(*endpoint, *queue, *tasks, *send, *python, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "celery-to-go:", err)
		os.Exit(1)
	}
}

// charge is the Go implementation of the Celery task shop.tasks.charge(order, amount, currency=...).
func charge(task *celery.Task) error {
	var (
		order  string
		amount int
		kwargs struct {
			Currency string `json:"currency"`
		}
	)
	if err := task.DecodeArgs(&order, &amount); err != nil {
		return err
	}
	if err := task.DecodeKwargs(&kwargs); err != nil {
		return err
	}
	fmt.Printf("go: ran %s(%q, %d, currency=%q) id=%s\n", task.Name, order, amount, kwargs.Currency, task.ID)
	return nil
}

func run(endpoint, queue string, n int, send bool, python string, timeout time.Duration) error {
	// Ctrl-C or SIGTERM stops the program cleanly, stopping the processes it started.
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cfg := kombu.Config{Region: "us-east-1", EndpointURL: endpoint, AccessKeyID: "test", SecretAccessKey: "test"}
	sub, err := kombu.NewSubscriber(kombu.SubscriberConfig{Config: cfg, WaitTimeSeconds: 1, PollingInterval: 100 * time.Millisecond}, nil)
	if err != nil {
		return err
	}
	defer sub.Close()
	// Create the queue before Celery sends to it.
	if err := sub.SubscribeInitialize(queue); err != nil {
		return err
	}

	var (
		mu   sync.Mutex
		done = map[string]bool{}
		ran  = make(chan struct{}, 100)
	)
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, watermill.NopLogger{})
	if err != nil {
		return err
	}
	router.AddConsumerHandler("charge", queue, sub, func(msg *message.Message) error {
		task, err := celery.TaskFromMessage(msg)
		if err != nil {
			fmt.Printf("go: not a Celery task (%v), dropped\n", err)
			return nil
		}
		if task.Name != "shop.tasks.charge" {
			return fmt.Errorf("unknown task %q", task.Name) // Nack: another consumer may know it
		}
		if err := charge(task); err != nil {
			return err
		}
		mu.Lock()
		done[task.ID] = true
		mu.Unlock()
		ran <- struct{}{}
		return nil
	})
	routerDone := make(chan error, 1)
	go func() { routerDone <- router.Run(ctx) }()
	defer func() { _ = router.Close(); <-routerDone }()
	<-router.Running()

	var want []string
	if send {
		if want, err = sendTasks(ctx, python, endpoint, queue, n); err != nil {
			return err
		}
		fmt.Printf("celery: sent %d task(s) to %q\n", len(want), queue)
	}

	for {
		mu.Lock()
		finished := len(done) >= n
		if send {
			finished = true
			for _, id := range want {
				finished = finished && done[id]
			}
		}
		mu.Unlock()
		if finished {
			fmt.Println("all tasks ran")
			return nil
		}
		select {
		case <-ran:
		case <-ctx.Done():
			return errors.New("timed out waiting for the tasks")
		}
	}
}

// sendTasks runs send_tasks.py and returns the ids of the tasks it sent.
func sendTasks(ctx context.Context, python, endpoint, queue string, n int) ([]string, error) {
	cmd := exec.CommandContext(ctx, python, filepath.Join(exampleDir(), "send_tasks.py"), fmt.Sprint(n))
	cmd.Env = append(os.Environ(), "SQS_ENDPOINT="+endpoint, "QUEUE="+queue)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s send_tasks.py: %w (run `make venv` for a Python with Celery, or pass -python)", python, err)
	}
	var ids []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if id := strings.TrimSpace(sc.Text()); id != "" {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// exampleDir is the directory of this file, where send_tasks.py is.
func exampleDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return filepath.Join("examples", "celery-to-go")
	}
	return filepath.Dir(file)
}

// defaultPython is $PYTHON, else the project's virtualenv, else python3.
func defaultPython() string {
	if p := os.Getenv("PYTHON"); p != "" {
		return p
	}
	venv := filepath.Join(exampleDir(), "..", "..", ".cache", "venv", "bin", "python")
	if _, err := os.Stat(venv); err == nil {
		return filepath.Clean(venv)
	}
	return "python3"
}
