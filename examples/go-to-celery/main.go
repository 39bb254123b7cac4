// Command go-to-celery enqueues tasks from Go for a Celery worker.
//
//	go run ./examples/go-to-celery
//
// It starts a Celery worker on worker.py (next to this file) with the project's Python
// virtualenv (.cache/venv, made by `make venv`), publishes billing.tasks.invoice tasks built
// with celery.NewTask to the queue example-go-to-celery on the local ElasticMQ, prints what
// the worker reports for each, stops the worker and exits (at the latest after -timeout).
// With -worker=false it only enqueues, for a worker you run yourself.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
)

func main() {
	endpoint := flag.String("endpoint", "http://127.0.0.1:9324", "SQS endpoint (ElasticMQ)")
	queue := flag.String("queue", "example-go-to-celery", "queue the Celery worker consumes")
	worker := flag.Bool("worker", true, "start the Celery worker of worker.py")
	python := flag.String("python", defaultPython(), "Python with Celery installed")
	timeout := flag.Duration("timeout", 45*time.Second, "give up after this long")
	flag.Parse()

	if err := run(*endpoint, *queue, *worker, *python, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "go-to-celery:", err)
		os.Exit(1)
	}
}

func run(endpoint, queue string, startWorker bool, python string, timeout time.Duration) error {
	// Ctrl-C or SIGTERM stops the program cleanly, stopping the processes it started.
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cfg := kombu.Config{Region: "us-east-1", EndpointURL: endpoint, AccessKeyID: "test", SecretAccessKey: "test"}
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, nil)
	if err != nil {
		return err
	}
	defer pub.Close()

	// What apply_async(args, kwargs, countdown=...) would send.
	calls := []struct {
		args   []any
		kwargs map[string]any
		opts   []celery.TaskOption
	}{
		{[]any{"ACME Corp", 100}, nil, nil},
		{[]any{"Globex", 250.5}, map[string]any{"vat": 0.07}, nil},
		{[]any{"Initech", 42}, nil, []celery.TaskOption{celery.WithCountdown(2 * time.Second)}},
	}
	ids := map[string]bool{}
	for _, c := range calls {
		msg, err := celery.NewTask("billing.tasks.invoice", c.args, c.kwargs, c.opts...)
		if err != nil {
			return err
		}
		if err := pub.Publish(queue, msg); err != nil {
			return err
		}
		ids[msg.UUID] = true
		fmt.Printf("go: enqueued billing.tasks.invoice%v %v as task %s\n", c.args, c.kwargs, msg.UUID)
	}
	if !startWorker {
		return nil
	}

	results, stop, err := runWorker(ctx, python, endpoint, queue)
	if err != nil {
		return err
	}
	defer stop()
	for len(ids) > 0 {
		select {
		case line, ok := <-results:
			if !ok {
				return fmt.Errorf("the Celery worker exited (log: %s)", workerLog)
			}
			fmt.Println("celery:", line)
			for id := range ids {
				if strings.Contains(line, id) {
					delete(ids, id) // else a task left over from an earlier run
				}
			}
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for the Celery worker (log: %s)", workerLog)
		}
	}
	fmt.Println("the Celery worker ran every task")
	_ = os.Remove(workerLog)
	return nil
}

// workerLog is the file the Celery worker logs to.
var workerLog string

// runWorker starts `celery worker` on worker.py in its own process group, and returns the
// RESULT lines it prints, and a function that stops it.
func runWorker(ctx context.Context, python, endpoint, queue string) (<-chan string, func(), error) {
	cmd := exec.Command(python, "-m", "celery", "-A", "worker", "worker", "-Q", queue,
		"--pool", "solo", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning")
	cmd.Dir = exampleDir()
	cmd.Env = append(os.Environ(), "SQS_ENDPOINT="+endpoint, "QUEUE="+queue)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The worker logs to stderr; keep it in a file, and show its path on failure.
	logFile, err := os.CreateTemp("", "go-to-celery-worker-*.log")
	if err != nil {
		return nil, nil, err
	}
	workerLog = logFile.Name()
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("starting the Celery worker with %s: %w (run `make venv`, or pass -python)", python, err)
	}
	lines := make(chan string)
	exited := make(chan struct{})
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "RESULT "); ok {
				select {
				case lines <- rest:
				case <-ctx.Done():
				}
			}
		}
	}()
	go func() { _ = cmd.Wait(); _ = logFile.Close(); close(exited) }()
	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}
	return lines, stop, nil
}

// exampleDir is the directory of this file, where worker.py is.
func exampleDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return filepath.Join("examples", "go-to-celery")
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
