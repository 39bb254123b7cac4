//go:build unix

package celery_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// The Go → Celery direction: tasks built by NewTask, run by a real Celery worker.

// celeryWorker is a `celery worker` process on interop/celery_worker_app.py.
type celeryWorker struct {
	out, log string
	exited   <-chan struct{}
}

// startCeleryWorker starts a Celery worker consuming queues, in its own process group, killed
// when the test ends. Each task it runs appends a JSON line to w.out.
func startCeleryWorker(t *testing.T, endpoint string, queues ...string) *celeryWorker {
	t.Helper()
	dir := t.TempDir()
	w := &celeryWorker{out: filepath.Join(dir, "tasks.jsonl")}
	worker := testenv.StartCeleryWorker(t, "interop.celery_worker_app", queues,
		testenv.EnvSQSEndpoint+"="+endpoint,
		"KOMBU_INTEROP_QUEUE="+queues[0],
		"KOMBU_INTEROP_OUT="+w.out,
	)
	w.exited, w.log = worker.Exited, worker.LogPath
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
	line       int               // in the output file, which the worker appends to in order
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
			for line := 1; sc.Scan(); line++ {
				r := workerRecord{line: line}
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

// largestTaskArg finds the longest string argument whose task, as EnvelopeMarshaler encodes it,
// fits limit bytes of SQS body.
func largestTaskArg(t *testing.T, queue string, limit int, opts ...celery.TaskOption) int {
	t.Helper()
	size := func(n int) int {
		msg, err := celery.NewTask("tasks.record", []any{strings.Repeat("x", n)}, nil, opts...)
		require.NoError(t, err)
		out, err := kombu.EnvelopeMarshaler{}.Marshal(kombu.Destination{Queue: queue, RoutingKey: queue}, msg)
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
	fifoQueue := queue + ".fifo"
	worker := startCeleryWorker(t, endpoint, queue, fifoQueue)

	newPub := func(m kombu.Marshaler) *kombu.Publisher {
		pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: interopConfig(endpoint), Marshaler: m}, watermill.NopLogger{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = pub.Close() })
		return pub
	}
	pub := newPub(nil)
	gzipPub := newPub(kombu.EnvelopeMarshaler{Compression: "gzip"})
	rawPub := newPub(kombu.EnvelopeMarshaler{RawEnvelope: true})

	when := time.Date(2024, 2, 29, 23, 59, 58, 654321000, time.UTC)
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	type goCase struct {
		name   string
		args   []any
		kwargs map[string]any
		opts   []celery.TaskOption
		check  func(t *testing.T, r workerRecord, sent time.Time)
		pub    *kombu.Publisher
		queue  string
	}
	nested := map[string]any{"a": 1, "b": "two", "nested": map[string]any{"l": []any{1, 2.5, nil, true}}}
	cases := []goCase{}
	for _, v := range []int{2, 1} {
		p := celery.WithProtocol(v)
		prefix := map[int]string{1: "v1_", 2: "v2_"}[v]
		cases = append(cases,
			goCase{name: prefix + "add", args: []any{2, 3}, opts: []celery.TaskOption{p}},
			goCase{name: prefix + "kwargs", kwargs: nested, opts: []celery.TaskOption{p}},
			goCase{name: prefix + "unicode", args: []any{"héllo ☃ 日本語 🎉 \x00 \"q\" \\"},
				kwargs: map[string]any{"ключ": "значение", "😀": "🐍"}, opts: []celery.TaskOption{p}},
			goCase{name: prefix + "types", args: []any{nil, true, uint64(1<<64 - 1), -1.5,
				json.Number("123456789012345678901234567890"), celery.DateTime{Time: when}},
				opts: []celery.TaskOption{p}, check: func(t *testing.T, r workerRecord, _ time.Time) {
					assert.Equal(t, []string{"NoneType", "bool", "int", "float", "int", "datetime"}, r.ArgTypes)
				}},
			goCase{name: prefix + "countdown", args: []any{4, 5}, opts: []celery.TaskOption{p, celery.WithCountdown(2 * time.Second)},
				check: func(t *testing.T, r workerRecord, sent time.Time) {
					require.NotNil(t, r.ETA)
					eta := parseISO(t, *r.ETA)
					assert.WithinRange(t, eta, sent.Truncate(time.Millisecond).Add(2*time.Second), sent.Add(4*time.Second))
					assert.False(t, parseISO(t, r.RanAt).Before(eta), "ran at %s, before its eta %s", r.RanAt, eta)
				}},
			goCase{name: prefix + "expires_retries_headers", args: []any{6}, opts: []celery.TaskOption{p,
				celery.WithExpires(expires), celery.WithRetryCount(2), celery.WithHeaders(map[string]any{"x_custom": "go", "x_number": 7})},
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
		goCase{name: "v1_gzip", args: []any{"compressed"}, pub: gzipPub, opts: []celery.TaskOption{celery.WithProtocol(1)}},
		goCase{name: "v2_raw_envelope", args: []any{"raw"}, pub: rawPub},
		goCase{name: "v2_link", args: []any{1, 2}, opts: []celery.TaskOption{
			celery.WithLink(celery.Signature{Task: "tasks.record", Args: []any{"linked"}}),
		}},
	)
	for i := range 3 {
		cases = append(cases, goCase{name: fmt.Sprintf("v2_fifo_%d", i), args: []any{i}, queue: fifoQueue})
	}
	largest := largestTaskArg(t, queue, maxMessageSize)
	cases = append(cases, goCase{name: "v2_largest", args: []any{strings.Repeat("x", largest)},
		check: func(t *testing.T, r workerRecord, _ time.Time) { assert.Equal(t, []string{"str"}, r.ArgTypes) }})

	ids := make([]string, len(cases))
	sentAt := make([]time.Time, len(cases))
	for i, c := range cases {
		sentAt[i] = time.Now()
		msg, err := celery.NewTask("tasks.record", c.args, c.kwargs, c.opts...)
		require.NoError(t, err)
		ids[i] = msg.UUID
		p, q := pub, queue
		if c.pub != nil {
			p = c.pub
		}
		if c.queue != "" {
			q = c.queue
			msg.Metadata.Set(kombu.MetadataMessageGroupID, "grp-go")
		}
		require.NoError(t, p.Publish(q, msg), c.name)
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
	t.Run("v2_fifo_order", func(t *testing.T) {
		var lines []int
		for i, c := range cases {
			if c.queue != "" {
				lines = append(lines, records[ids[i]].line)
			}
		}
		assert.IsIncreasing(t, lines, "the FIFO group ran in order")
	})
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
			if c.queue != "" {
				assert.Equal(t, c.queue, r.Delivery["routing_key"])
			} else {
				assert.Equal(t, queue, r.Delivery["routing_key"])
			}
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

	n := largestTaskArg(t, queue, maxMessageSize)
	over, err := celery.NewTask("tasks.record", []any{strings.Repeat("x", n+1)}, nil)
	require.NoError(t, err)
	err = pub.Publish(queue, over)
	require.ErrorIs(t, err, kombu.ErrMessageTooLarge)
	var tooLarge *kombu.MessageTooLargeError
	require.ErrorAs(t, err, &tooLarge)
	assert.Greater(t, tooLarge.Size, maxMessageSize)
	assert.Equal(t, maxMessageSize, tooLarge.Limit)
	assert.Equal(t, int64(0), pub.Stats().Send, "nothing was sent")

	fits, err := celery.NewTask("tasks.record", []any{strings.Repeat("x", n)}, nil)
	require.NoError(t, err)
	require.NoError(t, pub.Publish(queue, fits))
	assert.Equal(t, int64(1), pub.Stats().Send)
	t.Logf("largest task argument %d characters; %d is refused (%d bytes)", n, n+1, tooLarge.Size)
}
