package kombu_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// These tests run Kombu 5.7 with supports_fanout (interop/sns_fanout.py) against moto's SQS and
// SNS, in both directions.

// kombuFanout starts interop/sns_fanout.py with args; the process is killed when the test ends.
type kombuFanout struct {
	cmd    *exec.Cmd
	stdout *bufio.Reader
	stderr *lockedLogBuffer
}

func startKombuFanout(t *testing.T, endpoint string, args ...string) *kombuFanout {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, testenv.Python(t), append([]string{"interop/sns_fanout.py"}, args...)...)
	cmd.Dir = testenv.RepoRoot(t)
	cmd.Env = append(os.Environ(), testenv.EnvMotoEndpoint+"="+endpoint)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	k := &kombuFanout{cmd: cmd, stdout: bufio.NewReader(out), stderr: &lockedLogBuffer{}}
	cmd.Stderr = k.stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return k
}

// waitReady reads the consumer's "ready" line.
func (k *kombuFanout) waitReady(t *testing.T) {
	t.Helper()
	line := make(chan string, 1)
	go func() {
		l, _ := k.stdout.ReadString('\n')
		line <- l
	}()
	select {
	case l := <-line:
		require.Equal(t, "ready\n", l, "Kombu consumer did not start; stderr: %s", k.stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("Kombu consumer not ready after 60 s: %s", k.stderr.String())
	}
}

// result waits for the process and decodes its JSON output into v.
func (k *kombuFanout) result(t *testing.T, v any) {
	t.Helper()
	out, err := io.ReadAll(k.stdout)
	require.NoError(t, err)
	require.NoError(t, k.cmd.Wait(), "interop/sns_fanout.py failed: %s", k.stderr.String())
	require.NoError(t, json.Unmarshal(out, v), "output: %s", out)
}

type kombuReceived struct {
	Payload     json.RawMessage   `json:"payload"`
	Exchange    string            `json:"exchange"`
	RoutingKey  string            `json:"routing_key"`
	ContentType string            `json:"content_type"`
	Group       *string           `json:"group"`
	Headers     map[string]string `json:"headers"`
}

// TestSNSFanoutKombuToGo: a Kombu 5.7 producer with supports_fanout publishes to a fanout
// exchange; Go subscribers on two queues bound to it receive every message once.
func TestSNSFanoutKombuToGo(t *testing.T) {
	endpoint := testenv.MotoEndpoint(t)
	exchange := testenv.UniqueName("kombu-to-go")
	q1, q2 := testenv.UniqueName("kombu-to-go-a"), testenv.UniqueName("kombu-to-go-b")
	cfg := motoConfig(endpoint, map[string]kombu.Exchange{exchange: fanoutExchange(q1, q2)})
	sub, err := kombu.NewSubscriber(quickSubscriberConfig(cfg), nil)
	require.NoError(t, err)
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch1, err := sub.Subscribe(ctx, q1)
	require.NoError(t, err)
	ch2, err := sub.Subscribe(ctx, q2)
	require.NoError(t, err)

	const n = 10
	var produced struct {
		Kombu string           `json:"kombu"`
		Sent  []map[string]any `json:"sent"`
	}
	startKombuFanout(t, endpoint, "produce", exchange, strconv.Itoa(n)).result(t, &produced)
	require.Equal(t, "5.7.0", produced.Kombu)

	for _, ch := range []<-chan *message.Message{ch1, ch2} {
		msgs := receiveMessages(t, ch, n, 30*time.Second)
		seen := map[int]bool{}
		for _, m := range msgs {
			require.Empty(t, m.Metadata.Get(kombu.MetadataDecodeError))
			require.Equal(t, exchange, m.Metadata.Get(kombu.MetadataExchange))
			require.Equal(t, "kombu", m.Metadata.Get("origin"), "Kombu headers")
			require.Equal(t, "application/json", m.Metadata.Get(kombu.MetadataContentType))
			var body struct{ I int }
			require.NoError(t, json.Unmarshal(m.Payload, &body))
			seen[body.I] = true
		}
		require.Len(t, seen, n, "every message once")
	}
	// Nothing more: one delivery per queue and message.
	select {
	case m := <-ch1:
		t.Fatalf("extra message %s", m.Payload)
	case m := <-ch2:
		t.Fatalf("extra message %s", m.Payload)
	case <-time.After(2 * time.Second):
	}
}

// TestSNSFanoutGoToKombu: two Kombu 5.7 consumers bind queues Go does not know of to a fanout
// exchange; a Go publish of one message (SNS Publish) and of twelve (PublishBatch) reaches
// both, decoded as Kombu's own.
func TestSNSFanoutGoToKombu(t *testing.T) {
	endpoint := testenv.MotoEndpoint(t)
	exchange := testenv.UniqueName("go-to-kombu")
	q1, q2 := testenv.UniqueName("go-to-kombu-a"), testenv.UniqueName("go-to-kombu-b")
	const n = 13
	consumer := startKombuFanout(t, endpoint, "consume", exchange, q1, q2, "--count", strconv.Itoa(n), "--timeout", "90")
	consumer.waitReady(t)

	// Go is told of the exchange only.
	cfg := motoConfig(endpoint, map[string]kombu.Exchange{exchange: {Type: kombu.ExchangeFanout}})
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, nil)
	require.NoError(t, err)
	defer pub.Close()
	newMsg := func(i int) *message.Message {
		m := message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprintf(`{"i":%d}`, i)))
		m.Metadata.Set("origin", "go")
		return m
	}
	require.NoError(t, pub.Publish(exchange, newMsg(0)))
	before := pub.Stats()
	var batch []*message.Message
	for i := 1; i < n; i++ {
		batch = append(batch, newMsg(i))
	}
	require.NoError(t, pub.Publish(exchange, batch...))
	batchCost := diffCounts(before, pub.Stats())
	t.Logf("publish of 1 (with topic lookup): %+v; publish of %d: %+v", before, n-1, batchCost)
	require.Equal(t, kombu.RequestCounts{SNSPublish: 2}, batchCost)

	var got map[string][]kombuReceived
	consumer.result(t, &got)
	for _, q := range []string{q1, q2} {
		require.Len(t, got[q], n, "queue %s", q)
		seen := map[int]bool{}
		for _, r := range got[q] {
			require.Equal(t, exchange, r.Exchange)
			require.Equal(t, "application/json", r.ContentType)
			require.Equal(t, "go", r.Headers["origin"])
			var body struct{ I int }
			require.NoError(t, json.Unmarshal(r.Payload, &body))
			seen[body.I] = true
		}
		require.Len(t, seen, n, "queue %s: every message once", q)
	}
}

// TestSNSFanoutFIFOOrder: on a .fifo exchange (a FIFO topic) messages keep their order per
// message group on every FIFO queue, published by Kombu and by Go (one Publish per message,
// and PublishBatch).
func TestSNSFanoutFIFOOrder(t *testing.T) {
	endpoint := testenv.MotoEndpoint(t)
	exchange := testenv.UniqueName("fifo-fanout") + ".fifo"
	q1, q2 := testenv.UniqueName("fifo-fanout-a")+".fifo", testenv.UniqueName("fifo-fanout-b")+".fifo"
	cfg := motoConfig(endpoint, map[string]kombu.Exchange{exchange: fanoutExchange(q1, q2)})
	sub, err := kombu.NewSubscriber(quickSubscriberConfig(cfg), nil)
	require.NoError(t, err)
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch1, err := sub.Subscribe(ctx, q1)
	require.NoError(t, err)
	ch2, err := sub.Subscribe(ctx, q2)
	require.NoError(t, err)

	// groupOrder checks that each group's sequence numbers arrive in increasing order.
	groupOrder := func(t *testing.T, msgs []*message.Message) map[string][]int {
		t.Helper()
		byGroup := map[string][]int{}
		for _, m := range msgs {
			require.Empty(t, m.Metadata.Get(kombu.MetadataDecodeError))
			var body struct {
				I     int
				Group string
			}
			require.NoError(t, json.Unmarshal(m.Payload, &body))
			require.Equal(t, body.Group, m.Metadata.Get(kombu.MetadataReceivedGroupID), "the group travels in the envelope")
			byGroup[body.Group] = append(byGroup[body.Group], body.I)
		}
		return byGroup
	}

	t.Run("Kombu", func(t *testing.T) {
		const n = 20
		var produced struct{ Sent []map[string]any }
		startKombuFanout(t, endpoint, "produce", exchange, strconv.Itoa(n), "g1,g2").result(t, &produced)
		want := map[string][]int{}
		for i := 0; i < n; i++ {
			g := []string{"g1", "g2"}[i%2]
			want[g] = append(want[g], i)
		}
		for _, ch := range []<-chan *message.Message{ch1, ch2} {
			require.Equal(t, want, groupOrder(t, receiveMessages(t, ch, n, 60*time.Second)))
		}
	})

	t.Run("Go", func(t *testing.T) {
		pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, nil)
		require.NoError(t, err)
		defer pub.Close()
		const n = 30
		want := map[string][]int{}
		var batch []*message.Message
		for i := 0; i < n; i++ {
			g := []string{"g1", "g2", "g3"}[i%3]
			want[g] = append(want[g], i)
			m := message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprintf(`{"i":%d,"group":%q}`, i, g)))
			m.Metadata.Set(kombu.MetadataMessageGroupID, g)
			if i < 6 {
				require.NoError(t, pub.Publish(exchange, m)) // one Publish each
			} else {
				batch = append(batch, m)
			}
		}
		require.NoError(t, pub.Publish(exchange, batch...)) // PublishBatch, in order
		for _, ch := range []<-chan *message.Message{ch1, ch2} {
			require.Equal(t, want, groupOrder(t, receiveMessages(t, ch, n, 60*time.Second)))
		}
	})
}
