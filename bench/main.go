// Command bench compares watermill-kombu's Publisher and Subscriber with hand-written
// aws-sdk-go-v2 loops, Kombu and Celery on an ElasticMQ broker, and writes BENCHMARKS.md and a
// chart. Run it with `make bench` (full) or `make bench-quick` (smoke run).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// settings are the sizes of one benchmark run.
type settings struct {
	quick     bool
	n         int // messages per Go client run
	nPy       int // messages per Kombu/Celery run
	reps      int // Go clients at the smaller size
	repsLarge int // Go clients at the larger size
	repsPy    int
	memN      int
	paced     int // messages of the latency phase
	pacedRate float64
	sizes     []int
	queues    int
}

type bench struct {
	s       settings
	root    string
	python  string
	self    string
	backend string // the broker the clients talk to
	proxy   *countingProxy
	broker  *broker
	seq     int
	log     *os.File
	timeout time.Duration
	start   time.Time
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "fill" {
		if err := runFill(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "fill:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "child" {
		if err := runChild(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	quick := flag.Bool("quick", false, "smoke run: ~3000 messages per Go client (enough for the request-count goals), one repetition")
	out := flag.String("out", "BENCHMARKS.md", "report to write")
	svg := flag.String("svg", "", "chart to write (default: throughput.svg next to this tool)")
	endpoint := flag.String("endpoint", "", "use this broker instead of a private ElasticMQ")
	python := flag.String("python", "", "Python of the virtualenv with Celery and Kombu")
	root := flag.String("root", "..", "repository root")
	slack := flag.Float64("request-slack", 0, "fail only when a request-count goal is missed by more than this many requests per message (make test's smoke run allows for a loaded machine)")
	flag.Parse()

	b := &bench{timeout: 5 * time.Minute, log: os.Stderr, start: time.Now()}
	b.s = settings{n: 10000, nPy: 1000, reps: 3, repsLarge: 1, repsPy: 1, memN: 10000, paced: 400, pacedRate: 200,
		sizes: []int{200, 20 * 1024}, queues: 4}
	if *quick {
		b.s = settings{quick: true, n: 3000, nPy: 100, reps: 1, repsLarge: 1, repsPy: 1, memN: 1000, paced: 50, pacedRate: 200,
			sizes: []int{200, 20 * 1024}, queues: 4}
		b.timeout = 60 * time.Second
		testing.Init()
		_ = flag.Set("test.benchtime", "200ms")
	}
	var err error
	if b.root, err = filepath.Abs(*root); err != nil {
		return err
	}
	if b.self, err = os.Executable(); err != nil {
		return err
	}
	b.python = *python
	if b.python == "" {
		b.python = filepath.Join(b.root, ".cache", "venv", "bin", "python")
	}
	if *svg == "" {
		*svg = filepath.Join(b.root, "bench", "throughput.svg")
	}
	started := time.Now()
	env := machineInfo(b.python)
	// The codec figures first, while no broker runs: a JVM warming up beside them would
	// slow them down by half.
	envelope, err := b.envelope()
	if err != nil {
		return fmt.Errorf("envelope: %w", err)
	}

	b.backend = *endpoint
	var mq *privateBroker
	if b.backend == "" {
		if mq, err = startElasticMQ(b.root); err != nil {
			return err
		}
		defer mq.stop()
		b.backend = mq.URL
		env.ElasticMQ = mq.Version + " (private in-memory instance, -Xmx3g)"
	} else {
		env.ElasticMQ = "external broker at " + b.backend
	}
	ctx := context.Background()
	if b.broker, err = newBroker(ctx, b.backend); err != nil {
		return err
	}
	if b.proxy, err = startProxy(b.backend); err != nil {
		return err
	}
	defer b.proxy.close()

	rep := &report{Env: env, Settings: b.s, Envelope: envelope}
	b.logf("warming up the broker")
	warm := 2000
	if b.s.quick {
		warm = 200
	}
	if _, err := b.consume(ctx, "sub", warm, 200, nil); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	for _, size := range b.s.sizes {
		if err := b.consumeRows(ctx, rep, size); err != nil {
			return err
		}
		if err := b.publishRows(ctx, rep, size); err != nil {
			return err
		}
	}
	if err := b.oneQueueRows(ctx, rep); err != nil {
		return err
	}
	if err := b.memoryRows(ctx, rep); err != nil {
		return err
	}
	// The codec figures once more, with the broker stopped again (an external one keeps
	// running), and the better of the two passes kept.
	mq.stop()
	if err := b.codecAgain(rep.Envelope); err != nil {
		return fmt.Errorf("envelope: %w", err)
	}
	rep.Duration = time.Since(started)
	if err := os.WriteFile(*svg, []byte(rep.chart()), 0o644); err != nil {
		return err
	}
	rel, _ := filepath.Rel(filepath.Dir(mustAbs(*out)), mustAbs(*svg))
	if err := os.WriteFile(*out, []byte(rep.markdown(filepath.ToSlash(rel))), 0o644); err != nil {
		return err
	}
	b.logf("wrote %s and %s in %s", *out, *svg, rep.Duration.Round(time.Second))
	for _, line := range rep.goalLines() {
		b.logf("%s", line)
	}
	if missed := rep.missedRequestGoals(*slack); len(missed) > 0 {
		return fmt.Errorf("request-count goals missed: %s", strings.Join(missed, "; "))
	}
	return nil
}

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: %5.1fs "+format+"\n", append([]any{time.Since(b.start).Seconds()}, args...)...)
}

// queueSet makes fresh queues for one run.
func (b *bench) queueSet(ctx context.Context, k int) ([]string, error) {
	b.seq++
	return b.broker.create(ctx, fmt.Sprintf("bench-%d-%d", os.Getpid(), b.seq), k)
}

var goConsumers = []string{"sub", "router", "worker", "sdk-batch", "sdk-single"}
var pyConsumers = []string{"kombu", "celery"}

// consumeRows measures every consumer at one size: saturation (prefilled queues) and latency
// (paced publishing while the consumer runs). The clients' runs take turns.
func (b *bench) consumeRows(ctx context.Context, rep *report, size int) error {
	clients := append(append([]string{}, goConsumers...), pyConsumers...)
	rows := make([]*row, len(clients))
	for i, c := range clients {
		rows[i] = &row{Scenario: "consume", Client: c, Size: size}
	}
	err := takeTurns(len(clients), func(i int) int { return b.repsOf(clients[i], size) }, func(i, run int) error {
		c := clients[i]
		res, err := b.consume(ctx, c, b.nOf(c), size, nil)
		if err != nil {
			b.logf("consume %s %d B failed (%v); running it again", c, size, err)
			res, err = b.consume(ctx, c, b.nOf(c), size, nil)
		}
		if err != nil {
			return fmt.Errorf("consume %s %d B: %w", c, size, err)
		}
		rows[i].Runs = append(rows[i].Runs, res)
		b.logf("consume %-10s %6d B run %d: %s", c, size, run+1, res.summary(true))
		return nil
	})
	if err != nil {
		return err
	}
	for i, c := range clients {
		rep.Rows = append(rep.Rows, rows[i])
		if b.s.quick && size != b.s.sizes[0] {
			// The smoke run measures latency at the smaller size only.
			continue
		}
		lat, err := b.consume(ctx, c, b.s.paced, size, &b.s.pacedRate)
		if err != nil {
			return fmt.Errorf("latency %s %d B: %w", c, size, err)
		}
		rows[i].Paced = &lat
		b.logf("latency %-10s %6d B: p50 %.1f ms p99 %.1f ms", c, size, lat.P50/1000, lat.P99/1000)
	}
	return nil
}

var publishers = []string{"pub-batch", "pub-single", "sdk-send-batch", "sdk-send", "kombu-publish", "celery-publish"}

func (b *bench) publishRows(ctx context.Context, rep *report, size int) error {
	rows := make([]*row, len(publishers))
	for i, c := range publishers {
		rows[i] = &row{Scenario: "publish", Client: c, Size: size}
		rep.Rows = append(rep.Rows, rows[i])
	}
	return takeTurns(len(publishers), func(i int) int { return b.repsOf(publishers[i], size) }, func(i, run int) error {
		c := publishers[i]
		n := b.nOf(c)
		qs, err := b.queueSet(ctx, b.s.queues)
		if err != nil {
			return err
		}
		var res childResult
		if isPy(c) {
			res, err = b.runPy(ctx, nil, c, b.proxy.URL, strings.Join(qs, ","), strconv.Itoa(n), strconv.Itoa(size))
		} else {
			res, err = b.runGo(ctx, nil, "-client", c, "-endpoint", b.backend, "-queues", strings.Join(qs, ","),
				"-n", strconv.Itoa(n), "-size", strconv.Itoa(size))
		}
		b.broker.remove(ctx, qs)
		if err != nil {
			return fmt.Errorf("publish %s %d B: %w", c, size, err)
		}
		rows[i].Runs = append(rows[i].Runs, res)
		b.logf("publish %-14s %6d B run %d: %s", c, size, run+1, res.summary(false))
		return nil
	})
}

// takeTurns calls run for each repetition of n configurations, one of each per round, so
// that a change in the machine's speed touches them all alike.
func takeTurns(n int, reps func(i int) int, run func(i, rep int) error) error {
	rounds := 0
	for i := 0; i < n; i++ {
		rounds = max(rounds, reps(i))
	}
	for r := 0; r < rounds; r++ {
		for i := 0; i < n; i++ {
			if r < reps(i) {
				if err := run(i, r); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// memoryRows runs the Subscriber with a 1 ms handler over 20 KB messages at two prefetch counts.
func (b *bench) memoryRows(ctx context.Context, rep *report) error {
	size := 20 * 1024
	for _, prefetch := range []int{10, 100} {
		qs, err := b.queueSet(ctx, 1)
		if err != nil {
			return err
		}
		if err := b.broker.send(ctx, qs, b.s.memN, size, 0); err != nil {
			return err
		}
		res, err := b.runGo(ctx, nil, "-client", "sub", "-endpoint", b.backend, "-queues", qs[0],
			"-n", strconv.Itoa(b.s.memN), "-prefetch", strconv.Itoa(prefetch), "-handler", "1ms")
		b.broker.remove(ctx, qs)
		if err != nil {
			return fmt.Errorf("memory prefetch %d: %w", prefetch, err)
		}
		b.logf("memory prefetch %d: %s", prefetch, res.summary(true))
		rep.Memory = append(rep.Memory, memRow{Prefetch: prefetch, N: b.s.memN, Size: size, Res: res})
	}
	return nil
}

// nOf is the message count of a client's run.
func (b *bench) nOf(client string) int {
	if isPy(client) {
		return b.s.nPy
	}
	return b.s.n
}

// repsOf is how many runs a client gets at a size.
func (b *bench) repsOf(client string, size int) int {
	switch {
	case isPy(client):
		return b.s.repsPy
	case size > b.s.sizes[0]:
		return b.s.repsLarge
	default:
		return b.s.reps
	}
}

func isPy(client string) bool {
	return client == "kombu" || client == "celery" || strings.HasPrefix(client, "kombu-") || strings.HasPrefix(client, "celery-")
}

// consume runs one consumer over n messages. With rate nil the queues are filled first; otherwise
// the messages are sent at that rate once the consumer is ready.
func (b *bench) consume(ctx context.Context, client string, n, size int, rate *float64) (childResult, error) {
	qs, err := b.queueSet(ctx, b.s.queues)
	if err != nil {
		return childResult{}, err
	}
	defer b.broker.remove(ctx, qs)
	if rate == nil {
		if err := b.broker.send(ctx, qs, n, size, 0); err != nil {
			return childResult{}, err
		}
	}
	readyFn := func() error {
		if rate == nil {
			return nil
		}
		return b.broker.send(ctx, qs, n, size, *rate)
	}
	list := strings.Join(qs, ",")
	switch client {
	case "kombu":
		return b.runPy(ctx, readyFn, "kombu-consume", b.proxy.URL, list, strconv.Itoa(n))
	case "celery":
		return b.runCelery(ctx, readyFn, list, n)
	default:
		return b.runGo(ctx, readyFn, "-client", client, "-endpoint", b.backend, "-queues", list, "-n", strconv.Itoa(n))
	}
}

func (b *bench) runGo(ctx context.Context, onReady func() error, args ...string) (childResult, error) {
	cmd := exec.CommandContext(ctx, b.self, append([]string{"child"}, args...)...)
	return b.runChildProcess(cmd, onReady, false)
}

func (b *bench) runPy(ctx context.Context, onReady func() error, args ...string) (childResult, error) {
	cmd := exec.CommandContext(ctx, b.python, append([]string{filepath.Join(b.root, "bench", "bench_clients.py")}, args...)...)
	return b.runChildProcess(cmd, onReady, true)
}

// runChildProcess runs a client, calls onReady once it printed READY, and reads its JSON result.
// Python clients get their requests counted by the proxy.
func (b *bench) runChildProcess(cmd *exec.Cmd, onReady func() error, counted bool) (childResult, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return childResult{}, err
	}
	before := b.proxy.total()
	if err := cmd.Start(); err != nil {
		return childResult{}, err
	}
	timer := time.AfterFunc(b.timeout, func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	defer timer.Stop()
	var res childResult
	var got bool
	readyErr := make(chan error, 1)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "READY":
			if onReady != nil {
				go func() {
					if err := onReady(); err != nil {
						readyErr <- err
						_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
					}
				}()
			}
		case strings.HasPrefix(line, "{"):
			if err := json.Unmarshal([]byte(line), &res); err == nil {
				got = true
			}
		}
	}
	err = cmd.Wait()
	select {
	case rerr := <-readyErr:
		return res, rerr
	default:
	}
	if err != nil {
		return res, err
	}
	if !got {
		return res, fmt.Errorf("%s printed no result", filepath.Base(cmd.Path))
	}
	if counted {
		res.Requests = b.proxy.total() - before
	}
	return res, nil
}

// runCelery starts a Celery worker (solo pool, prefetch 10) on the queues and waits until it ran
// n tasks.
func (b *bench) runCelery(ctx context.Context, onReady func() error, queues string, n int) (childResult, error) {
	dir, err := os.MkdirTemp("", "bench-celery-")
	if err != nil {
		return childResult{}, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "result.json")
	cmd := exec.CommandContext(ctx, b.python, "-m", "celery", "-A", "bench_celery_app", "worker",
		"-Q", queues, "--pool", "solo", "--concurrency", "1", "--prefetch-multiplier", "10",
		"--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING")
	cmd.Dir = filepath.Join(b.root, "bench")
	cmd.Env = append(os.Environ(), "BENCH_ENDPOINT="+b.proxy.URL, "BENCH_N="+strconv.Itoa(n), "BENCH_OUT="+out)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, err := os.Create(filepath.Join(dir, "worker.log"))
	if err != nil {
		return childResult{}, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	failed := true
	defer func() {
		if failed {
			if data, err := os.ReadFile(logf.Name()); err == nil {
				os.Stderr.Write(data)
			}
		}
	}()
	before := b.proxy.total()
	if err := cmd.Start(); err != nil {
		return childResult{}, err
	}
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}()
	deadline := time.Now().Add(b.timeout)
	readyDone := false
	for time.Now().Before(deadline) {
		if !readyDone {
			if _, err := os.Stat(out + ".ready"); err == nil {
				readyDone = true
				if onReady != nil {
					if err := onReady(); err != nil {
						return childResult{}, err
					}
				}
			}
		}
		if data, err := os.ReadFile(out); err == nil {
			var res childResult
			if err := json.Unmarshal(data, &res); err != nil {
				return res, err
			}
			res.Requests = b.proxy.total() - before
			failed = false
			return res, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return childResult{}, fmt.Errorf("celery worker did not run %d tasks in %s", n, b.timeout)
}
