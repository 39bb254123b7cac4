package kombu_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// batchFaults is an HTTP transport that spoils chosen batch requests, counted from 1:
// SendMessageBatch (SQS) and PublishBatch (SNS) ones. A request in drop fails with a network
// error before it is sent. For a SendMessageBatch in failEntries, the entries at the positions
// given are taken out of the request and reported failed by SQS on its side (InternalError),
// the others are sent.
type batchFaults struct {
	drop        map[int]bool
	failEntries map[int][]int
	n           atomic.Int32
}

func (b *batchFaults) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil {
			return nil, err
		}
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	sqsBatch := r.Header.Get("X-Amz-Target") == "AmazonSQS.SendMessageBatch"
	if !sqsBatch && !bytes.Contains(body, []byte("Action=PublishBatch&")) {
		return http.DefaultTransport.RoundTrip(r)
	}
	n := int(b.n.Add(1))
	if b.drop[n] {
		return nil, errors.New("injected network failure")
	}
	if positions := b.failEntries[n]; sqsBatch && len(positions) > 0 {
		return failEntries(r, body, positions)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// failEntries forwards a SendMessageBatch request without the entries at positions, and
// answers with those entries failed as SQS fails them on its side.
func failEntries(r *http.Request, body []byte, positions []int) (*http.Response, error) {
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, err
	}
	var keep, failed []any
	for i, e := range in["Entries"].([]any) {
		if !slices.Contains(positions, i) {
			keep = append(keep, e)
			continue
		}
		failed = append(failed, map[string]any{"Id": e.(map[string]any)["Id"], "Code": "InternalError",
			"Message": "injected entry failure", "SenderFault": false})
	}
	in["Entries"] = keep
	nb, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	r2 := r.Clone(r.Context())
	r2.Body, r2.ContentLength = io.NopCloser(bytes.NewReader(nb)), int64(len(nb))
	resp, err := http.DefaultTransport.RoundTrip(r2) // ElasticMQ checks no signature
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	out["Failed"] = failed
	ob, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(ob)), int64(len(ob))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// numbered returns messages with payloads "1" to "n", all in the FIFO group "default".
func numbered(n int) []*message.Message {
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = message.NewMessage(watermill.NewUUID(), []byte(strconv.Itoa(i+1)))
	}
	return msgs
}

// faultyPublisher publishes through faults (nil: none), without the SDK's retries.
func faultyPublisher(t *testing.T, ep string, faults *batchFaults) *kombu.Publisher {
	t.Helper()
	cfg := semConfig(ep, 30*time.Second)
	if faults != nil {
		cfg.HTTPClient = &http.Client{Transport: faults}
	}
	cfg.RetryMaxAttempts = 1
	return semPublisher(t, cfg)
}

// fifoContents publishes a last message of the group, "end", and returns the payloads the
// FIFO queue at url holds up to it, in order.
func fifoContents(t *testing.T, pub *kombu.Publisher, client *sqs.Client, topic, url string) []string {
	t.Helper()
	require.NoError(t, pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("end"))))
	var got []string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 30})
		require.NoError(t, err)
		for _, m := range out.Messages {
			msg, err := kombu.EnvelopeMarshaler{}.Unmarshal(topic, &m)
			require.NoError(t, err)
			_, err = client.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
			require.NoError(t, err)
			if string(msg.Payload) == "end" {
				return got
			}
			got = append(got, string(msg.Payload))
		}
		if len(out.Messages) == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Fatalf("the last message did not arrive; got %v", got)
	return nil
}

// payloadRange returns the payloads "from" to "to".
func payloadRange(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

// requireFailed checks that pe names msgs in order, the last notSent of them as not sent.
func requireFailed(t *testing.T, pe *kombu.PublishError, msgs []*message.Message, notSent int) {
	t.Helper()
	require.Len(t, pe.Failed, len(msgs), "%v", pe)
	for i, f := range pe.Failed {
		require.Equal(t, msgs[i].UUID, f.MessageUUID, "entry %d of %v", i, pe)
		require.Equal(t, i >= len(msgs)-notSent, f.NotSent, "entry %d of %v", i, pe)
	}
}

// TestPublishFIFOStopsAtFailedRequest: when the request of a FIFO Publish's first batch fails
// (no answer), the second batch is not sent: it would be accepted ahead of the first. The
// error says what went out: the first batch unanswered, the second not sent.
func TestPublishFIFOStopsAtFailedRequest(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("pub-fifo-drop") + ".fifo"
	url := testenv.CreateQueue(t, client, topic, nil)
	pub := faultyPublisher(t, ep, &batchFaults{drop: map[int]bool{1: true}})

	msgs := numbered(20)
	err := pub.Publish(topic, msgs...)
	require.Error(t, err)
	t.Log(err)
	require.Empty(t, fifoContents(t, pub, client, topic, url), "nothing of the failed call may be in the queue")
	require.ErrorIs(t, err, kombu.ErrConnection)
	var pe *kombu.PublishError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, topic, pe.Queue)
	requireFailed(t, pe, msgs, 10)
	for _, f := range pe.Failed[:10] {
		require.Empty(t, f.Code, "no answer: no code")
	}
	require.Contains(t, err.Error(), "10 message(s) not sent")
}

// TestPublishFIFOStopsAtRejectedEntry: when SQS rejects an entry of a FIFO Publish's first
// batch, the entries after it in that batch are in, but the second batch is not sent. The
// error names the rejected message and, as not sent, the second batch; it is a channel error
// only (messages not sent give it no class).
func TestPublishFIFOStopsAtRejectedEntry(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("pub-fifo-reject") + ".fifo"
	url := testenv.CreateQueue(t, client, topic, nil)
	pub := faultyPublisher(t, ep, nil)

	msgs := numbered(20)
	// SQS rejects an empty string attribute: this entry fails, blaming the sender.
	msgs[2].Metadata.Set(kombu.MetadataAttributePrefix+"empty", "")
	err := pub.Publish(topic, msgs...)
	require.Error(t, err)
	t.Log(err)
	want := append(payloadRange(1, 2), payloadRange(4, 10)...)
	require.Equal(t, want, fifoContents(t, pub, client, topic, url))
	require.ErrorIs(t, err, kombu.ErrChannel)
	require.NotErrorIs(t, err, kombu.ErrConnection)
	var pe *kombu.PublishError
	require.ErrorAs(t, err, &pe)
	requireFailed(t, pe, append([]*message.Message{msgs[2]}, msgs[10:]...), 10)
	require.True(t, pe.Failed[0].SenderFault)
	require.NotEmpty(t, pe.Failed[0].Code)
}

// TestPublishStandardSendsEveryBatch: on a standard queue a failed batch stops nothing; the
// error is the failed request's.
func TestPublishStandardSendsEveryBatch(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("pub-std-drop")
	url := testenv.CreateQueue(t, client, topic, nil)
	faults := &batchFaults{drop: map[int]bool{1: true}}
	pub := faultyPublisher(t, ep, faults)

	err := pub.Publish(topic, numbered(20)...)
	require.ErrorIs(t, err, kombu.ErrConnection)
	require.False(t, errors.As(err, new(*kombu.PublishError)), "%v", err)
	require.Len(t, semReceiveAll(t, client, url, 10, 20*time.Second), 10)
	require.EqualValues(t, 2, faults.n.Load())
	require.True(t, strings.Contains(err.Error(), "injected network failure"), "%v", err)
}

// TestSNSFanoutFIFOStopsAtFailedRequest: the same on a FIFO topic: when the PublishBatch of
// the first batch fails, the second is not published.
func TestSNSFanoutFIFOStopsAtFailedRequest(t *testing.T) {
	endpoint := testenv.MotoEndpoint(t)
	exchange := testenv.UniqueName("fifo-fanout-drop") + ".fifo"
	q := testenv.UniqueName("fifo-fanout-drop-q") + ".fifo"
	cfg := motoConfig(endpoint, map[string]kombu.Exchange{exchange: fanoutExchange(q)})
	sub, err := kombu.NewSubscriber(quickSubscriberConfig(cfg), nil)
	require.NoError(t, err)
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := sub.Subscribe(ctx, q)
	require.NoError(t, err)

	cfg.HTTPClient = &http.Client{Transport: &batchFaults{drop: map[int]bool{1: true}}}
	cfg.RetryMaxAttempts = 1
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, nil)
	require.NoError(t, err)
	defer pub.Close()
	msgs := numbered(15)
	err = pub.Publish(exchange, msgs...)
	require.Error(t, err)
	t.Log(err)
	// The group's next message is the first the queue delivers.
	require.NoError(t, pub.Publish(exchange, message.NewMessage(watermill.NewUUID(), []byte("end"))))
	require.Equal(t, []string{"end"}, payloads(receiveMessages(t, ch, 1, 60*time.Second)))

	require.ErrorIs(t, err, kombu.ErrConnection)
	var pe *kombu.PublishError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, exchange, pe.Exchange)
	requireFailed(t, pe, msgs, 5)
}

// TestPublishFIFOFailedEntryNotResentBehindLaterOnes: when SQS fails the first entry of a
// FIFO batch on its side and accepts the others, sending it again would put it behind them.
// It is reported instead, and the next batch is not sent.
func TestPublishFIFOFailedEntryNotResentBehindLaterOnes(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("pub-fifo-entry") + ".fifo"
	url := testenv.CreateQueue(t, client, topic, nil)
	pub := faultyPublisher(t, ep, &batchFaults{failEntries: map[int][]int{1: {0}}})

	msgs := numbered(15)
	err := pub.Publish(topic, msgs...)
	t.Log(err)
	require.Equal(t, payloadRange(2, 10), fifoContents(t, pub, client, topic, url))
	require.ErrorIs(t, err, kombu.ErrConnection)
	var pe *kombu.PublishError
	require.ErrorAs(t, err, &pe)
	requireFailed(t, pe, append([]*message.Message{msgs[0]}, msgs[10:]...), 5)
	require.Equal(t, "InternalError", pe.Failed[0].Code)
	require.False(t, pe.Failed[0].SenderFault)
}

// TestPublishFIFOFailedTailResent: entries SQS failed on its side at the end of a FIFO
// batch, nothing after them accepted, are sent again and keep their place.
func TestPublishFIFOFailedTailResent(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("pub-fifo-tail") + ".fifo"
	url := testenv.CreateQueue(t, client, topic, nil)
	faults := &batchFaults{failEntries: map[int][]int{1: {7, 8, 9}}}
	pub := faultyPublisher(t, ep, faults)

	require.NoError(t, pub.Publish(topic, numbered(15)...))
	require.Equal(t, payloadRange(1, 15), fifoContents(t, pub, client, topic, url))
	require.EqualValues(t, 4, faults.n.Load(), "one batch, the failed entries again, the next batch, the last message")
}
