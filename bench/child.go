package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	kombu "github.com/watermill-kombu/watermill-kombu"
)

// childResult is what every client process (Go or Python) prints as one JSON line on stdout.
type childResult struct {
	N        int     `json:"n"`
	Elapsed  float64 `json:"elapsed_s"`
	CPU      float64 `json:"cpu_s"`
	Requests int64   `json:"requests"`
	P50      float64 `json:"p50_us"`
	P99      float64 `json:"p99_us"`
	RSSKB    int64   `json:"rss_kb"`
	// Lost counts messages left in flight by broken receive responses (see tracker.wait).
	Lost int `json:"lost"`
}

// childArgs are the flags of the child subcommand.
type childArgs struct {
	client   string
	endpoint string
	queues   []string
	n        int
	size     int
	prefetch int
	handler  time.Duration
	conc     int
	// concurrency is the Subscriber's Concurrency (0: the library default); goroutines the SDK
	// loop's goroutines per queue.
	concurrency int
	goroutines  int
}

func runChild(args []string) error {
	fs := flag.NewFlagSet("child", flag.ContinueOnError)
	var a childArgs
	var queues string
	fs.StringVar(&a.client, "client", "", "client to run")
	fs.StringVar(&a.endpoint, "endpoint", "", "SQS endpoint")
	fs.StringVar(&queues, "queues", "", "comma-separated queue names")
	fs.IntVar(&a.n, "n", 1000, "messages")
	fs.IntVar(&a.size, "size", 200, "payload size for publishers")
	fs.IntVar(&a.prefetch, "prefetch", 0, "subscriber prefetch (0: the library default)")
	fs.DurationVar(&a.handler, "handler", 0, "handler sleep")
	fs.IntVar(&a.conc, "conc", 4, "publisher goroutines per queue for single sends")
	fs.IntVar(&a.concurrency, "concurrency", 0, "subscriber Concurrency (0: the library default)")
	fs.IntVar(&a.goroutines, "goroutines", 1, "SDK consume loop goroutines per queue")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run")
	memprofile := fs.String("memprofile", "", "write an allocation profile of the run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *memprofile != "" {
		runtime.MemProfileRate = 64 << 10
		defer func() {
			if f, err := os.Create(*memprofile); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				_ = f.Close()
			}
		}()
	}
	a.queues = strings.Split(queues, ",")
	var res childResult
	var err error
	switch a.client {
	case "sub", "router":
		res, err = consumeLibrary(a)
	case "worker":
		res, err = consumeWorker(a)
	case "sdk-batch", "sdk-single":
		res, err = consumeSDK(a)
	case "pub-batch", "pub-single":
		res, err = publishLibrary(a)
	case "sdk-send-batch", "sdk-send":
		res, err = publishSDK(a)
	default:
		return fmt.Errorf("unknown client %q", a.client)
	}
	if err != nil {
		return err
	}
	res.RSSKB = peakRSS()
	return json.NewEncoder(os.Stdout).Encode(res)
}

// ready tells the parent that the client is about to consume.
func ready() { fmt.Println("READY") }

// cpuNow is the user+sys time of this process.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS reads VmHWM (kB) from /proc/self/status.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				v, _ := strconv.ParseInt(f[1], 10, 64)
				return v
			}
		}
	}
	return 0
}

// tracker counts handled messages, their latency from the publish timestamp, and the first and
// last handling times, with the process's CPU time at both: a consumer's CPU per message is
// measured over that window, as its throughput is, so that start-up (clients, queue lookups,
// the Router) is not spread over the messages.
type tracker struct {
	target   int64
	count    atomic.Int64
	mu       sync.Mutex
	lats     []float64
	first    time.Time
	last     time.Time
	cpuFirst time.Duration
	cpuLast  time.Duration
	done     chan struct{}
	doneOne  sync.Once
}

func newTracker(n int) *tracker {
	return &tracker{target: int64(n), lats: make([]float64, 0, n), done: make(chan struct{})}
}

// handled records one message published at tsMicro (0 if unknown). Messages past the target
// (a warm-up message, a redelivery) are counted but move neither the window nor the figures.
func (t *tracker) handled(tsMicro int64) {
	c := t.count.Add(1)
	if c > t.target {
		return
	}
	now := time.Now()
	t.mu.Lock()
	if t.first.IsZero() {
		t.first, t.cpuFirst = now, cpuNow()
	}
	t.last = now
	if tsMicro > 0 {
		t.lats = append(t.lats, float64(now.UnixMicro()-tsMicro))
	}
	if c == t.target {
		t.cpuLast = cpuNow()
		t.doneOne.Do(func() { close(t.done) })
	}
	t.mu.Unlock()
}

// wait waits until the target is reached. When no message came for a while and at most 2%
// are missing, it stops there: aws-sdk-go-v2 retries a ReceiveMessage whose response broke off,
// and the messages of the broken response stay in flight for the visibility timeout (30 min).
// It fails when nothing came for idle.
func (t *tracker) wait(idle time.Duration) error {
	const grace = 2 * time.Second
	last, quiet := int64(-1), time.Duration(0)
	for {
		select {
		case <-t.done:
			return nil
		case <-time.After(grace):
			c := t.count.Load()
			if c != last {
				last, quiet = c, 0
				continue
			}
			quiet += grace
			if c*100 >= t.target*98 {
				return nil
			}
			if quiet >= idle {
				return fmt.Errorf("handled %d of %d messages, then none for %s", c, t.target, quiet)
			}
		}
	}
}

// result gives the figures; cpuEnd is the process's CPU time now, the end of the window when
// the target was not reached (the last messages stayed in flight).
func (t *tracker) result(n int, cpuEnd time.Duration, reqs int64) childResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cpuLast > 0 {
		cpuEnd = t.cpuLast
	}
	cpu := cpuEnd - t.cpuFirst
	p50, p99 := percentiles(t.lats)
	got := int(t.count.Load())
	return childResult{N: got, Lost: n - got, Elapsed: t.last.Sub(t.first).Seconds(), CPU: cpu.Seconds(), Requests: reqs, P50: p50, P99: p99}
}

func percentiles(v []float64) (p50, p99 float64) {
	if len(v) == 0 {
		return 0, 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	at := func(p float64) float64 { return s[int(p*float64(len(s)-1))] }
	return at(0.5), at(0.99)
}

func subscriberConfig(a childArgs) kombu.SubscriberConfig {
	return kombu.SubscriberConfig{
		Config:                 benchConfig(a.endpoint),
		WaitTimeSeconds:        1,
		DisablePollingInterval: true,
		PrefetchCount:          a.prefetch,
		Concurrency:            a.concurrency,
	}
}

// consumeLibrary consumes a.n messages with the Subscriber, directly or through a Router.
func consumeLibrary(a childArgs) (childResult, error) {
	var logger watermill.LoggerAdapter
	if os.Getenv("BENCH_DEBUG") != "" {
		logger = watermill.NewStdLogger(true, false)
	}
	sub, err := kombu.NewSubscriber(subscriberConfig(a), logger)
	if err != nil {
		return childResult{}, err
	}
	tr := newTracker(a.n)
	handle := func(msg *message.Message) {
		if a.handler > 0 {
			time.Sleep(a.handler)
		}
		// As in the SDK loops, only messages that carry a timestamp are parsed: parsing ""
		// fails, and its error allocates.
		var ts int64
		if v := msg.Metadata.Get("bench_ts"); v != "" {
			ts, _ = strconv.ParseInt(v, 10, 64)
		}
		tr.handled(ts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready()
	if a.client == "router" {
		router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, watermill.NopLogger{})
		if err != nil {
			return childResult{}, err
		}
		for _, q := range a.queues {
			router.AddConsumerHandler("h-"+q, q, sub, func(msg *message.Message) error {
				handle(msg)
				return nil
			})
		}
		go func() { _ = router.Run(ctx) }()
		if err := tr.wait(15 * time.Second); err != nil {
			return childResult{}, err
		}
		cpu := cpuNow()
		_ = router.Close()
		_ = sub.Close()
		return tr.result(a.n, cpu, sub.Stats().Total()), nil
	}
	for _, q := range a.queues {
		ch, err := sub.Subscribe(ctx, q)
		if err != nil {
			return childResult{}, err
		}
		go func() {
			for msg := range ch {
				handle(msg)
				msg.Ack()
			}
		}()
	}
	if err := tr.wait(15 * time.Second); err != nil {
		return childResult{}, err
	}
	cpu := cpuNow()
	_ = sub.Close()
	return tr.result(a.n, cpu, sub.Stats().Total()), nil
}

// consumeSDK is the hand-written aws-sdk-go-v2 loop: one goroutine per queue doing
// ReceiveMessage (10, or 1, with a long poll) then DeleteMessageBatch (or DeleteMessage).
func consumeSDK(a childArgs) (childResult, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client, err := newSQSClient(ctx, a.endpoint)
	if err != nil {
		return childResult{}, err
	}
	var reqs atomic.Int64
	urls := make([]string, len(a.queues))
	for i, q := range a.queues {
		out, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(kombu.CanonicalQueueName("", q))})
		reqs.Add(1)
		if err != nil {
			return childResult{}, err
		}
		urls[i] = aws.ToString(out.QueueUrl)
	}
	batch := int32(10)
	if a.client == "sdk-single" {
		batch = 1
	}
	tr := newTracker(a.n)
	ready()
	var wg sync.WaitGroup
	perQueue := a.goroutines
	if perQueue < 1 {
		perQueue = 1
	}
	sem := make(chan struct{}, max(a.concurrency, 1))
	loops := make([]string, 0, len(urls)*perQueue)
	for _, u := range urls {
		for range perQueue {
			loops = append(loops, u)
		}
	}
	errc := make(chan error, len(loops))
	for _, u := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-tr.done:
					return
				case <-ctx.Done():
					return
				default:
				}
				out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
					QueueUrl: aws.String(u), MaxNumberOfMessages: batch, WaitTimeSeconds: 1,
					MessageAttributeNames: []string{"bench_ts"},
				})
				reqs.Add(1)
				if err != nil {
					if ctx.Err() == nil {
						errc <- err
					}
					return
				}
				if len(out.Messages) == 0 {
					continue
				}
				var handlers sync.WaitGroup
				for _, m := range out.Messages {
					var ts int64
					if v, ok := m.MessageAttributes["bench_ts"]; ok {
						ts, _ = strconv.ParseInt(aws.ToString(v.StringValue), 10, 64)
					}
					if a.handler <= 0 {
						tr.handled(ts)
						continue
					}
					// With a handler, the batch's messages are handled at once, at most
					// a.concurrency across the loops.
					sem <- struct{}{}
					handlers.Add(1)
					go func() {
						defer func() { <-sem; handlers.Done() }()
						time.Sleep(a.handler)
						tr.handled(ts)
					}()
				}
				handlers.Wait()
				if batch == 1 {
					_, err = client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(u), ReceiptHandle: out.Messages[0].ReceiptHandle})
				} else {
					entries := make([]types.DeleteMessageBatchRequestEntry, len(out.Messages))
					for i, m := range out.Messages {
						entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle}
					}
					_, err = client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(u), Entries: entries})
				}
				reqs.Add(1)
				if err != nil && ctx.Err() == nil {
					errc <- err
					return
				}
			}
		}()
	}
	waited := make(chan error, 1)
	go func() { waited <- tr.wait(15 * time.Second) }()
	select {
	case err := <-waited:
		if err != nil {
			return childResult{}, err
		}
	case err := <-errc:
		return childResult{}, err
	}
	cpu := cpuNow()
	cancel()
	wg.Wait()
	return tr.result(a.n, cpu, reqs.Load()), nil
}

// pubTimer collects the duration of each publish call.
type pubTimer struct {
	mu   sync.Mutex
	lats []float64
}

func (p *pubTimer) add(d time.Duration) {
	p.mu.Lock()
	p.lats = append(p.lats, float64(d.Microseconds()))
	p.mu.Unlock()
}

// split divides n messages among k workers.
func split(n, k int) []int {
	out := make([]int, k)
	for i := range out {
		out[i] = n / k
		if i < n%k {
			out[i]++
		}
	}
	return out
}

// publishLibrary publishes a.n messages with the Publisher: batches of 10 per Publish call with one
// goroutine per queue, or one message per call with a.conc goroutines per queue.
func publishLibrary(a childArgs) (childResult, error) {
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: benchConfig(a.endpoint)}, nil)
	if err != nil {
		return childResult{}, err
	}
	defer pub.Close()
	payload := benchPayload(a.size)
	per, workers := 10, 1
	if a.client == "pub-single" {
		per, workers = 1, a.conc
	}
	// Resolve the queues first, as a long-running service would have.
	for _, q := range a.queues {
		if err := pub.Publish(q, message.NewMessage(watermill.NewUUID(), payload)); err != nil {
			return childResult{}, err
		}
	}
	var pt pubTimer
	cpu0 := cpuNow()
	start := time.Now()
	err = runWorkers(a.queues, workers, a.n, per, func(q string, k int) error {
		msgs := make([]*message.Message, k)
		for i := range msgs {
			msgs[i] = message.NewMessage(watermill.NewUUID(), payload)
		}
		t := time.Now()
		err := pub.Publish(q, msgs...)
		pt.add(time.Since(t))
		return err
	})
	elapsed := time.Since(start)
	cpu := cpuNow() - cpu0
	if err != nil {
		return childResult{}, err
	}
	p50, p99 := percentiles(pt.lats)
	return childResult{N: a.n, Elapsed: elapsed.Seconds(), CPU: cpu.Seconds(), Requests: pub.Stats().Total(), P50: p50, P99: p99}, nil
}

// runWorkers splits n messages among workers goroutines per queue, each calling send with up to
// per messages at a time.
func runWorkers(queues []string, workers, n, per int, send func(q string, k int) error) error {
	counts := split(n, len(queues)*workers)
	var wg sync.WaitGroup
	errc := make(chan error, len(counts))
	for i, c := range counts {
		q := queues[i%len(queues)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c > 0 {
				k := min(per, c)
				if err := send(q, k); err != nil {
					errc <- err
					return
				}
				c -= k
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// publishSDK sends a.n pre-encoded Kombu bodies with SendMessageBatch (one goroutine per queue) or
// SendMessage (a.conc goroutines per queue).
func publishSDK(a childArgs) (childResult, error) {
	ctx := context.Background()
	client, err := newSQSClient(ctx, a.endpoint)
	if err != nil {
		return childResult{}, err
	}
	var reqs atomic.Int64
	urls := map[string]string{}
	for _, q := range a.queues {
		out, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(kombu.CanonicalQueueName("", q))})
		reqs.Add(1)
		if err != nil {
			return childResult{}, err
		}
		urls[q] = aws.ToString(out.QueueUrl)
	}
	body, err := encodedBody(a.size)
	if err != nil {
		return childResult{}, err
	}
	per, workers := 10, 1
	if a.client == "sdk-send" {
		per, workers = 1, a.conc
	}
	var pt pubTimer
	cpu0 := cpuNow()
	start := time.Now()
	err = runWorkers(a.queues, workers, a.n, per, func(q string, k int) error {
		t := time.Now()
		defer func() { pt.add(time.Since(t)) }()
		reqs.Add(1)
		if k == 1 && per == 1 {
			_, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(urls[q]), MessageBody: aws.String(body)})
			return err
		}
		entries := make([]types.SendMessageBatchRequestEntry, k)
		for i := range entries {
			entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(body)}
		}
		out, err := client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(urls[q]), Entries: entries})
		if err == nil && len(out.Failed) > 0 {
			err = errors.New("SendMessageBatch: entries failed")
		}
		return err
	})
	elapsed := time.Since(start)
	cpu := cpuNow() - cpu0
	if err != nil {
		return childResult{}, err
	}
	p50, p99 := percentiles(pt.lats)
	return childResult{N: a.n, Elapsed: elapsed.Seconds(), CPU: cpu.Seconds(), Requests: reqs.Load(), P50: p50, P99: p99}, nil
}
