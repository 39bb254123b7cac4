package kombu_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// TestSubscriberKeepSQSBody exposes the received SQS body (the Kombu envelope) as metadata
// when asked, and not otherwise; it is never sent on when the message is published again.
func TestSubscriberKeepSQSBody(t *testing.T) {
	endpoint := testenv.SQSEndpoint(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, keep := range []bool{true, false} {
		cfg := testSubscriberConfig(endpoint)
		cfg.KeepSQSBody = keep
		pub, sub := newPubSub(t, endpoint, cfg)
		queue := testenv.UniqueName("sqsbody")
		require.NoError(t, sub.SubscribeInitialize(queue))
		msgs, err := sub.Subscribe(ctx, queue)
		require.NoError(t, err)
		require.NoError(t, pub.Publish(queue, message.NewMessage("m-1", []byte(`{"hello": "world"}`))))
		var got *message.Message
		select {
		case got = <-msgs:
			got.Ack()
		case <-ctx.Done():
			t.Fatal("no message")
		}
		body := got.Metadata.Get("sqs_body")
		if !keep {
			assert.Empty(t, body)
		} else {
			// Kombu's SQS transport sends the envelope base64-encoded.
			raw, err := base64.StdEncoding.DecodeString(body)
			require.NoError(t, err, body)
			var env map[string]any
			require.NoError(t, json.Unmarshal(raw, &env), string(raw))
			assert.Contains(t, env, "properties", "the Kombu envelope as received")
			assert.Contains(t, env, "body")
			out, err := kombu.EnvelopeMarshaler{}.Marshal(kombu.Destination{Queue: queue}, got)
			require.NoError(t, err)
			assert.NotContains(t, out.Body, "sqs_body", "not sent on as a header")
		}
		require.NoError(t, pub.Close())
		require.NoError(t, sub.Close())
	}
}
