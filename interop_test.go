//go:build unix

package kombu_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// These tests run real Celery and Kombu (interop/*.py, in the virtualenv of `make venv`)
// against the in-memory ElasticMQ broker, in both directions.

func interopConfig(endpoint string) kombu.Config {
	return kombu.Config{
		Region:          "us-east-1",
		EndpointURL:     endpoint,
		AccessKeyID:     "test",
		SecretAccessKey: "test",
	}
}

// interopPython runs a Python command of the interop virtualenv from the repository root and
// returns its stdout; it fails the test, with stderr, when the command fails.
func interopPython(t *testing.T, ctx context.Context, endpoint string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(ctx, testenv.Python(t), args...)
	cmd.Dir = testenv.RepoRoot(t)
	cmd.Env = append(os.Environ(), testenv.EnvSQSEndpoint+"="+endpoint)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// producerCase is one message described by interop/celery_producer.py.
type producerCase struct {
	Case      string          `json:"case"`
	Protocol  int             `json:"protocol"`
	ID        string          `json:"id"`
	Task      string          `json:"task"`
	Args      json.RawMessage `json:"args"`
	Kwargs    json.RawMessage `json:"kwargs"`
	ETA       *string         `json:"eta"`
	Countdown *float64        `json:"countdown"`
	Expires   *string         `json:"expires"`
	Retries   int             `json:"retries"`
	Headers   map[string]any  `json:"headers"`
	SentAt    string          `json:"sent_at"`
	Payload   json.RawMessage `json:"payload"`
	// Only for the largest message.
	ArgLen       int    `json:"arg_len"`
	BodySize     int    `json:"body_size"`
	NextBodySize int    `json:"next_body_size"`
	OversizeSend string `json:"oversize_send"`
	// Undecodable is set for a task whose payload is not JSON (NaN from Python).
	Undecodable bool `json:"undecodable"`
	// Compression is the compression header expected; Link and LinkError the callback tasks.
	Compression string `json:"compression"`
	Link        string `json:"link"`
	LinkError   string `json:"link_error"`
}

// MaxBodySize is SQS's limit on a message body, which the producer filled.
func (producerCase) MaxBodySize() int { return kombu.DefaultMaxMessageSize }

type producerManifest struct {
	Celery  string         `json:"celery"`
	Kombu   string         `json:"kombu"`
	MaxBody int            `json:"max_body"`
	Cases   []producerCase `json:"cases"`
}

type receivedMessage struct {
	msg *message.Message
	at  time.Time
}

// jsonValue decodes JSON keeping numbers as json.Number, as TaskFromMessage does.
func jsonValue(t *testing.T, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v), "%s", data)
	return v
}

func parseISO(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return at
}

// TestInteropCeleryToGo sends tasks with a real Celery app (delay / apply_async, protocols 2
// and 1) and a plain Kombu message, and checks every field a Go subscriber reads.
func TestInteropCeleryToGo(t *testing.T) {
	endpoint := testenv.SQSEndpoint(t)
	queue := testenv.UniqueName("interop-celery-to-go")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	sub, err := kombu.NewSubscriber(kombu.SubscriberConfig{
		Config:          interopConfig(endpoint),
		WaitTimeSeconds: 1,
		PollingInterval: 50 * time.Millisecond,
		CloseTimeout:    10 * time.Second,
	}, watermill.NopLogger{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	require.NoError(t, sub.SubscribeInitialize(queue))
	msgs, err := sub.Subscribe(ctx, queue)
	require.NoError(t, err)

	var (
		mu       sync.Mutex
		received = map[string]receivedMessage{}
	)
	go func() {
		for msg := range msgs {
			key := msg.UUID
			if msg.Metadata.Get(kombu.MetadataDecodeError) != "" {
				// Handed on undecoded: the payload is the SQS body, whose envelope names the task.
				if env, err := kombu.DecodeEnvelope(string(msg.Payload)); err == nil {
					key = env.Properties.CorrelationID
				}
			}
			mu.Lock()
			received[key] = receivedMessage{msg: msg, at: time.Now()}
			mu.Unlock()
			msg.Ack()
		}
	}()

	out := interopPython(t, ctx, endpoint, "interop/celery_producer.py", "--queue", queue)
	var manifest producerManifest
	require.NoError(t, json.Unmarshal(out, &manifest), "%s", out)
	t.Logf("Celery %s, Kombu %s: %d messages", manifest.Celery, manifest.Kombu, len(manifest.Cases))
	require.Len(t, manifest.Cases, 30)

	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := 0
		for _, c := range manifest.Cases {
			if _, ok := received[c.ID]; ok {
				n++
			}
		}
		mu.Unlock()
		if n == len(manifest.Cases) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d of %d messages within 30 s", n, len(manifest.Cases))
		}
		time.Sleep(50 * time.Millisecond)
	}

	for _, c := range manifest.Cases {
		mu.Lock()
		got := received[c.ID]
		mu.Unlock()
		t.Run(c.Case, func(t *testing.T) {
			switch {
			case strings.HasPrefix(c.Case, "kombu_"):
				checkPlainKombu(t, c, got.msg)
				return
			case c.Undecodable:
				md := got.msg.Metadata
				assert.Contains(t, md.Get(kombu.MetadataDecodeError), "not JSON")
				assert.Equal(t, queue, md.Get(kombu.MetadataQueue))
				assert.Equal(t, got.msg.UUID, md.Get(kombu.MetadataSQSMessageID))
				_, err := kombu.TaskFromMessage(got.msg)
				assert.Error(t, err)
				return
			}
			checkCeleryTask(t, c, got)
		})
	}
	mu.Lock()
	assert.Len(t, received, len(manifest.Cases), "no message but those sent")
	mu.Unlock()
}

func checkPlainKombu(t *testing.T, c producerCase, msg *message.Message) {
	assert.Equal(t, jsonValue(t, c.Payload), jsonValue(t, msg.Payload))
	assert.Equal(t, kombu.ContentTypeJSON, msg.Metadata.Get(kombu.MetadataContentType))
	assert.Equal(t, "kombu", msg.Metadata.Get("source"))
	assert.Equal(t, "3", msg.Metadata.Get("count"))
	assert.JSONEq(t, `{"source": "kombu", "count": 3}`, msg.Metadata.Get(kombu.MetadataHeaders))
	_, err := kombu.TaskFromMessage(msg)
	assert.ErrorIs(t, err, kombu.ErrNotATask)
}

func checkCeleryTask(t *testing.T, c producerCase, got receivedMessage) {
	task, err := kombu.TaskFromMessage(got.msg)
	require.NoError(t, err)
	assert.Equal(t, c.Protocol, task.Protocol)
	assert.Equal(t, c.Task, task.Name)
	assert.Equal(t, c.Task, got.msg.Metadata.Get(kombu.MetadataTask))
	assert.Equal(t, c.ID, task.ID)
	assert.Equal(t, c.ID, task.CorrelationID)
	assert.Equal(t, c.Retries, task.Retries)
	assert.NotEmpty(t, task.ReplyTo)

	if c.Case == "v2_largest" {
		var arg string
		require.NoError(t, task.DecodeArgs(&arg))
		assert.Equal(t, c.ArgLen, len(arg))
		assert.Equal(t, strings.Repeat("x", c.ArgLen), arg)
		// Two base64 layers make the body grow in steps of 4 to 8 bytes.
		assert.LessOrEqual(t, c.BodySize, c.MaxBodySize())
		assert.Greater(t, c.BodySize, c.MaxBodySize()-8)
		assert.Greater(t, c.NextBodySize, c.MaxBodySize())
		assert.NotEqual(t, "accepted", c.OversizeSend, "one character more is refused by the broker")
		t.Logf("largest argument %d characters, SQS body %d bytes; one more gives %d bytes (%s)",
			c.ArgLen, c.BodySize, c.NextBodySize, c.OversizeSend)
	} else {
		assert.Equal(t, jsonValue(t, c.Args), jsonValue(t, task.RawArgs))
		assert.Equal(t, jsonValue(t, c.Args), jsonValue(t, mustJSON(t, task.Args)))
	}
	assert.Equal(t, jsonValue(t, c.Kwargs), jsonValue(t, task.RawKwargs))
	if task.Kwargs != nil || string(c.Kwargs) != "{}" {
		assert.Equal(t, jsonValue(t, c.Kwargs), jsonValue(t, mustJSON(t, task.Kwargs)))
	}

	switch {
	case c.ETA != nil:
		eta := parseISO(t, *c.ETA)
		require.NotNil(t, task.ETA)
		assert.True(t, eta.Equal(*task.ETA), "eta %s, want %s", task.ETA, eta)
		assertArrivedAtETA(t, eta, got.at)
	case c.Countdown != nil:
		sent := parseISO(t, c.SentAt)
		want := sent.Add(time.Duration(*c.Countdown * float64(time.Second)))
		require.NotNil(t, task.ETA)
		assert.WithinRange(t, *task.ETA, want, want.Add(2*time.Second))
		assertArrivedAtETA(t, *task.ETA, got.at)
	default:
		assert.Nil(t, task.ETA)
	}
	if c.Expires != nil {
		require.NotNil(t, task.Expires)
		assert.True(t, parseISO(t, *c.Expires).Equal(*task.Expires), "expires %s, want %s", task.Expires, *c.Expires)
		assert.NotEmpty(t, got.msg.Metadata.Get(kombu.MetadataExpiration), "Celery sets the expiration property")
	} else {
		assert.Nil(t, task.Expires)
	}
	assert.Equal(t, c.Compression, got.msg.Metadata.Get(kombu.MetadataCompression))
	if c.Link != "" {
		require.Len(t, task.Callbacks, 1)
		assert.Equal(t, c.Link, task.Callbacks[0].Task)
		assert.Equal(t, []any{json.Number("10")}, task.Callbacks[0].Args)
		require.Len(t, task.Errbacks, 1)
		assert.Equal(t, c.LinkError, task.Errbacks[0].Task)
		assert.True(t, task.Errbacks[0].Immutable)
	} else {
		assert.Empty(t, task.Callbacks)
		assert.Empty(t, task.Errbacks)
	}
	for k, v := range c.Headers {
		assert.Equal(t, jsonValue(t, mustJSON(t, v)), jsonValue(t, mustJSON(t, task.Headers[k])), "header %s", k)
	}

	if strings.HasSuffix(c.Case, "_datetimes") {
		var at, day kombu.DateTime
		require.NoError(t, task.DecodeArgs(&at, &day))
		want := time.Date(2024, 2, 29, 23, 59, 58, 654321000, time.UTC)
		assert.True(t, want.Equal(at.Time), "datetime %s", at)
		assert.True(t, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC).Equal(day.Time), "date %s", day)
		var kw struct{ At kombu.DateTime }
		require.NoError(t, task.DecodeKwargs(&kw))
		assert.True(t, want.Equal(kw.At.Time))
	}
	if strings.HasSuffix(c.Case, "_ints") {
		var a, b, c2, d int64
		var e, f json.Number
		require.NoError(t, task.DecodeArgs(&a, &b, &c2, &d, &e, &f))
		assert.Equal(t, []int64{0, -1, 1 << 31, -1 << 63}, []int64{a, b, c2, d})
		assert.Equal(t, json.Number("18446744073709551617"), e)
		assert.Equal(t, json.Number("1000000000000000000000000000000"), f)
	}
}

// assertArrivedAtETA checks that the subscriber held a task back until its eta (ETA deferral),
// to SQS's one-second granularity.
func assertArrivedAtETA(t *testing.T, eta, at time.Time) {
	t.Helper()
	assert.False(t, at.Before(eta.Add(-time.Second)), "handed over at %s, before its eta %s", at, eta)
	assert.False(t, at.After(eta.Add(10*time.Second)), "handed over at %s, long after its eta %s", at, eta)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// celeryWorker is a `celery worker` process on interop/celery_worker_app.py.
type celeryWorker struct {
	out, log string
	exited   chan struct{}
}

// startCeleryWorker starts a Celery worker consuming queue, in its own process group, killed
// when the test ends. Each task it runs appends a JSON line to w.out.
func startCeleryWorker(t *testing.T, endpoint, queue string) *celeryWorker {
	t.Helper()
	dir := t.TempDir()
	w := &celeryWorker{out: filepath.Join(dir, "tasks.jsonl"), log: filepath.Join(dir, "worker.log")}
	logFile, err := os.Create(w.log)
	require.NoError(t, err)
	cmd := exec.Command(testenv.Python(t), "-m", "celery", "-A", "interop.celery_worker_app", "worker",
		"-Q", queue, "--pool", "solo", "-c", "1", "--without-gossip", "--without-mingle",
		"--without-heartbeat", "-l", "info")
	cmd.Dir = testenv.RepoRoot(t)
	cmd.Env = append(os.Environ(),
		testenv.EnvSQSEndpoint+"="+endpoint,
		"KOMBU_INTEROP_QUEUE="+queue,
		"KOMBU_INTEROP_OUT="+w.out,
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	w.exited = done
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		_ = logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(w.log)
			t.Logf("celery worker log:\n%s", b)
		}
	})
	return w
}

// workerRecord is what interop/celery_worker_app.py writes for each task it runs.
type workerRecord struct {
	Task       string            `json:"task"`
	ID         string            `json:"id"`
	Args       json.RawMessage   `json:"args"`
	Kwargs     json.RawMessage   `json:"kwargs"`
	ArgTypes   []string          `json:"arg_types"`
	KwargTypes map[string]string `json:"kwarg_types"`
	Retries    int               `json:"retries"`
	ETA        *string           `json:"eta"`
	Expires    *string           `json:"expires"`
	Headers    map[string]any    `json:"headers"`
	Delivery   map[string]any    `json:"delivery_info"`
	ParentID   *string           `json:"parent_id"`
	RootID     *string           `json:"root_id"`
	RanAt      string            `json:"ran_at"`
}

// waitRecords reads the worker's output until every id has run and done (if not nil) accepts
// the records, or fails after timeout.
func (w *celeryWorker) waitRecords(t *testing.T, ids []string, done func(map[string]workerRecord) bool, timeout time.Duration) map[string]workerRecord {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		records := map[string]workerRecord{}
		if f, err := os.Open(w.out); err == nil {
			sc := bufio.NewScanner(f)
			sc.Buffer(nil, 4<<20)
			for sc.Scan() {
				var r workerRecord
				if json.Unmarshal(sc.Bytes(), &r) == nil {
					records[r.ID] = r
				}
			}
			_ = f.Close()
		} else if !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		missing := 0
		for _, id := range ids {
			if _, ok := records[id]; !ok {
				missing++
			}
		}
		if missing == 0 && (done == nil || done(records)) {
			return records
		}
		select {
		case <-w.exited:
			t.Fatalf("the Celery worker exited after running %d of %d tasks", len(ids)-missing, len(ids))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Celery worker ran %d of %d tasks within %s", len(ids)-missing, len(ids), timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// largestTaskArg finds the longest string argument whose task, as KombuMarshaler encodes it,
// fits limit bytes of SQS body.
func largestTaskArg(t *testing.T, queue string, limit int, opts ...kombu.TaskOption) int {
	t.Helper()
	size := func(n int) int {
		msg, err := kombu.NewTask("tasks.record", []any{strings.Repeat("x", n)}, nil, opts...)
		require.NoError(t, err)
		out, err := kombu.KombuMarshaler{}.Marshal(kombu.Destination{Queue: queue, RoutingKey: queue}, msg)
		require.NoError(t, err)
		return len(out.Body)
	}
	lo, hi := 1, limit
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if size(mid) <= limit {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	require.LessOrEqual(t, size(lo), limit)
	require.Greater(t, size(lo+1), limit)
	return lo
}

// TestInteropGoToCelery publishes tasks with NewTask (protocols 2 and 1) and checks what a real
// Celery worker runs.
func TestInteropGoToCelery(t *testing.T) {
	endpoint := testenv.SQSEndpoint(t)
	queue := testenv.UniqueName("interop-go-to-celery")
	worker := startCeleryWorker(t, endpoint, queue)

	newPub := func(m kombu.Marshaler) *kombu.Publisher {
		pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: interopConfig(endpoint), Marshaler: m}, watermill.NopLogger{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = pub.Close() })
		return pub
	}
	pub := newPub(nil)
	gzipPub := newPub(kombu.KombuMarshaler{Compression: "gzip"})
	rawPub := newPub(kombu.KombuMarshaler{RawEnvelope: true})

	when := time.Date(2024, 2, 29, 23, 59, 58, 654321000, time.UTC)
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	type goCase struct {
		name   string
		args   []any
		kwargs map[string]any
		opts   []kombu.TaskOption
		check  func(t *testing.T, r workerRecord, sent time.Time)
		pub    *kombu.Publisher
	}
	nested := map[string]any{"a": 1, "b": "two", "nested": map[string]any{"l": []any{1, 2.5, nil, true}}}
	cases := []goCase{}
	for _, v := range []int{2, 1} {
		p := kombu.WithProtocol(v)
		prefix := map[int]string{1: "v1_", 2: "v2_"}[v]
		cases = append(cases,
			goCase{name: prefix + "add", args: []any{2, 3}, opts: []kombu.TaskOption{p}},
			goCase{name: prefix + "kwargs", kwargs: nested, opts: []kombu.TaskOption{p}},
			goCase{name: prefix + "unicode", args: []any{"héllo ☃ 日本語 🎉 \x00 \"q\" \\"},
				kwargs: map[string]any{"ключ": "значение", "😀": "🐍"}, opts: []kombu.TaskOption{p}},
			goCase{name: prefix + "types", args: []any{nil, true, uint64(1<<64 - 1), -1.5,
				json.Number("123456789012345678901234567890"), kombu.DateTime{Time: when}},
				opts: []kombu.TaskOption{p}, check: func(t *testing.T, r workerRecord, _ time.Time) {
					assert.Equal(t, []string{"NoneType", "bool", "int", "float", "int", "datetime"}, r.ArgTypes)
				}},
			goCase{name: prefix + "countdown", args: []any{4, 5}, opts: []kombu.TaskOption{p, kombu.WithCountdown(2 * time.Second)},
				check: func(t *testing.T, r workerRecord, sent time.Time) {
					require.NotNil(t, r.ETA)
					eta := parseISO(t, *r.ETA)
					assert.WithinRange(t, eta, sent.Truncate(time.Millisecond).Add(2*time.Second), sent.Add(4*time.Second))
					assert.False(t, parseISO(t, r.RanAt).Before(eta), "ran at %s, before its eta %s", r.RanAt, eta)
				}},
			goCase{name: prefix + "expires_retries_headers", args: []any{6}, opts: []kombu.TaskOption{p,
				kombu.WithExpires(expires), kombu.WithRetries(2), kombu.WithHeaders(map[string]any{"x_custom": "go", "x_number": 7})},
				check: func(t *testing.T, r workerRecord, _ time.Time) {
					assert.Equal(t, 2, r.Retries)
					require.NotNil(t, r.Expires)
					assert.True(t, expires.Equal(parseISO(t, *r.Expires)), "expires %s, want %s", *r.Expires, expires)
					if v == 2 { // protocol 1 carries no custom headers to the task
						assert.Equal(t, "go", r.Headers["x_custom"])
						assert.Equal(t, float64(7), r.Headers["x_number"])
					}
				}},
		)
	}
	cases = append(cases,
		goCase{name: "v2_gzip", args: []any{"compressed"}, pub: gzipPub},
		goCase{name: "v1_gzip", args: []any{"compressed"}, pub: gzipPub, opts: []kombu.TaskOption{kombu.WithProtocol(1)}},
		goCase{name: "v2_raw_envelope", args: []any{"raw"}, pub: rawPub},
		goCase{name: "v2_link", args: []any{1, 2}, opts: []kombu.TaskOption{
			kombu.WithLink(kombu.Signature{Task: "tasks.record", Args: []any{"linked"}}),
		}},
	)
	largest := largestTaskArg(t, queue, kombu.DefaultMaxMessageSize)
	cases = append(cases, goCase{name: "v2_largest", args: []any{strings.Repeat("x", largest)},
		check: func(t *testing.T, r workerRecord, _ time.Time) { assert.Equal(t, []string{"str"}, r.ArgTypes) }})

	ids := make([]string, len(cases))
	sentAt := make([]time.Time, len(cases))
	for i, c := range cases {
		sentAt[i] = time.Now()
		msg, err := kombu.NewTask("tasks.record", c.args, c.kwargs, c.opts...)
		require.NoError(t, err)
		ids[i] = msg.UUID
		p := pub
		if c.pub != nil {
			p = c.pub
		}
		require.NoError(t, p.Publish(queue, msg), c.name)
	}
	var linkID string
	for i, c := range cases {
		if c.name == "v2_link" {
			linkID = ids[i]
		}
	}
	var linked workerRecord
	records := worker.waitRecords(t, ids, func(records map[string]workerRecord) bool {
		for _, r := range records {
			if r.ParentID != nil && *r.ParentID == linkID {
				linked = r
				return true
			}
		}
		return false
	}, 60*time.Second)
	t.Run("v2_link_callback", func(t *testing.T) {
		// Celery ran the callback with the task's result (its argument count) first.
		assert.Equal(t, "tasks.record", linked.Task)
		assert.Equal(t, jsonValue(t, []byte(`[2, "linked"]`)), jsonValue(t, linked.Args))
		require.NotNil(t, linked.RootID)
		assert.Equal(t, linkID, *linked.RootID)
	})

	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := records[ids[i]]
			assert.Equal(t, "tasks.record", r.Task)
			assert.Equal(t, ids[i], r.ID)
			assert.Equal(t, queue, r.Delivery["routing_key"])
			if c.name == "v2_largest" {
				var args []string
				require.NoError(t, json.Unmarshal(r.Args, &args))
				require.Len(t, args, 1)
				assert.Equal(t, largest, len(args[0]))
			} else {
				args := c.args
				if args == nil {
					args = []any{}
				}
				kwargs := c.kwargs
				if kwargs == nil {
					kwargs = map[string]any{}
				}
				assert.Equal(t, jsonValue(t, mustJSON(t, args)), jsonValue(t, r.Args))
				assert.Equal(t, jsonValue(t, mustJSON(t, kwargs)), jsonValue(t, r.Kwargs))
			}
			if c.check != nil {
				c.check(t, r, sentAt[i])
			} else {
				assert.Equal(t, 0, r.Retries)
				assert.Nil(t, r.ETA)
				assert.Nil(t, r.Expires)
			}
		})
	}
}

// TestInteropPublishTooLarge checks that a task one character over SQS's limit is refused
// before any request, and that the largest one that fits is sent.
func TestInteropPublishTooLarge(t *testing.T) {
	endpoint := testenv.SQSEndpoint(t)
	queue := testenv.UniqueName("interop-too-large")
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: interopConfig(endpoint)}, watermill.NopLogger{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })

	n := largestTaskArg(t, queue, kombu.DefaultMaxMessageSize)
	over, err := kombu.NewTask("tasks.record", []any{strings.Repeat("x", n+1)}, nil)
	require.NoError(t, err)
	err = pub.Publish(queue, over)
	require.ErrorIs(t, err, kombu.ErrMessageTooLarge)
	var tooLarge *kombu.MessageTooLargeError
	require.ErrorAs(t, err, &tooLarge)
	assert.Greater(t, tooLarge.Size, kombu.DefaultMaxMessageSize)
	assert.Equal(t, kombu.DefaultMaxMessageSize, tooLarge.Limit)
	assert.Equal(t, int64(0), pub.Stats().Send, "nothing was sent")

	fits, err := kombu.NewTask("tasks.record", []any{strings.Repeat("x", n)}, nil)
	require.NoError(t, err)
	require.NoError(t, pub.Publish(queue, fits))
	assert.Equal(t, int64(1), pub.Stats().Send)
	t.Logf("largest task argument %d characters; %d is refused (%d bytes)", n, n+1, tooLarge.Size)
}
