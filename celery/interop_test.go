//go:build unix

package celery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
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
	// Undecodable is set for a task whose payload is not JSON.
	Undecodable bool `json:"undecodable"`
	// PythonFloats is set for a task whose arguments are Python's NaN and Infinity.
	PythonFloats bool `json:"python_floats"`
	// Compression is the compression header expected; Link and LinkError the callback tasks.
	Compression string `json:"compression"`
	Link        string `json:"link"`
	LinkError   string `json:"link_error"`
	// Queue, Group and Dedup are set for tasks sent to the FIFO queue.
	Queue string `json:"queue"`
	Group string `json:"group"`
	Dedup string `json:"dedup"`
}

// MaxBodySize is SQS's limit on a message body, which the producer filled.
// maxMessageSize is the SQS limit on a message, 1 MiB.
const maxMessageSize = 1 << 20

func (producerCase) MaxBodySize() int { return maxMessageSize }

type producerManifest struct {
	Celery  string         `json:"celery"`
	Kombu   string         `json:"kombu"`
	MaxBody int            `json:"max_body"`
	Cases   []producerCase `json:"cases"`
}

type receivedMessage struct {
	msg *message.Message
	at  time.Time
	seq int
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
	fifoQueue := queue + ".fifo"

	var (
		mu       sync.Mutex
		received = map[string]receivedMessage{}
		seq      int
	)
	for _, q := range []string{queue, fifoQueue} {
		require.NoError(t, sub.SubscribeInitialize(q))
		msgs, err := sub.Subscribe(ctx, q)
		require.NoError(t, err)
		go collectMessages(msgs, &mu, received, &seq)
	}

	out := interopPython(t, ctx, endpoint, "interop/celery_producer.py", "--queue", queue, "--fifo-queue", fifoQueue)
	var manifest producerManifest
	require.NoError(t, json.Unmarshal(out, &manifest), "%s", out)
	t.Logf("Celery %s, Kombu %s: %d messages", manifest.Celery, manifest.Kombu, len(manifest.Cases))
	require.Len(t, manifest.Cases, 33)

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
				_, err := celery.TaskFromMessage(got.msg)
				assert.Error(t, err)
				return
			case c.PythonFloats:
				assert.Empty(t, got.msg.Metadata.Get(kombu.MetadataDecodeError))
				task, err := celery.TaskFromMessage(got.msg)
				require.NoError(t, err)
				assert.Equal(t, "[NaN, Infinity]", string(task.RawArgs))
				require.Len(t, task.Args, 2)
				assert.True(t, math.IsNaN(task.Args[0].(float64)))
				assert.Equal(t, math.Inf(1), task.Args[1])
				return
			}
			checkCeleryTask(t, c, got)
		})
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Len(t, received, len(manifest.Cases), "no message but those sent")
	var fifo []int
	for _, c := range manifest.Cases {
		if c.Group != "" {
			fifo = append(fifo, received[c.ID].seq)
		}
	}
	assert.Len(t, fifo, 3)
	assert.IsIncreasing(t, fifo, "the FIFO group arrives in order")
}

// collectMessages keeps every message received, numbered in order of arrival, and acks it.
func collectMessages(msgs <-chan *message.Message, mu *sync.Mutex, received map[string]receivedMessage, seq *int) {
	for msg := range msgs {
		key := msg.UUID
		if msg.Metadata.Get(kombu.MetadataDecodeError) != "" {
			// Handed on undecoded: the payload is the SQS body, whose envelope names the task.
			if env, err := kombu.DecodeEnvelope(string(msg.Payload)); err == nil {
				key = env.Properties.CorrelationID
			}
		}
		mu.Lock()
		*seq++
		received[key] = receivedMessage{msg: msg, at: time.Now(), seq: *seq}
		mu.Unlock()
		msg.Ack()
	}
}

func checkPlainKombu(t *testing.T, c producerCase, msg *message.Message) {
	assert.Equal(t, jsonValue(t, c.Payload), jsonValue(t, msg.Payload))
	assert.Equal(t, "application/json", msg.Metadata.Get(kombu.MetadataContentType))
	assert.Equal(t, "kombu", msg.Metadata.Get("source"))
	assert.Equal(t, "3", msg.Metadata.Get("count"))
	assert.JSONEq(t, `{"source": "kombu", "count": 3}`, msg.Metadata.Get(kombu.MetadataHeaders))
	_, err := celery.TaskFromMessage(msg)
	assert.ErrorIs(t, err, celery.ErrNotATask)
}

func checkCeleryTask(t *testing.T, c producerCase, got receivedMessage) {
	task, err := celery.TaskFromMessage(got.msg)
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
	if c.Group != "" {
		assert.Equal(t, c.Queue, got.msg.Metadata.Get(kombu.MetadataQueue))
		assert.Equal(t, c.Group, got.msg.Metadata.Get(kombu.MetadataReceivedGroupID))
		assert.Equal(t, c.Dedup, got.msg.Metadata.Get("kombu_message_deduplication_id"))
		assert.Equal(t, c.Queue, got.msg.Metadata.Get(kombu.MetadataRoutingKey))
	}
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
		var at, day celery.DateTime
		require.NoError(t, task.DecodeArgs(&at, &day))
		want := time.Date(2024, 2, 29, 23, 59, 58, 654321000, time.UTC)
		assert.True(t, want.Equal(at.Time), "datetime %s", at)
		assert.True(t, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC).Equal(day.Time), "date %s", day)
		var kw struct{ At celery.DateTime }
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
