package celery_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
)

// TestTaskFromMessageUndecodable returns the reason the Subscriber could not decode a message
// (a pickled Celery task here), not a misleading "no task header".
func TestTaskFromMessageUndecodable(t *testing.T) {
	reason := `kombu: content type "application/x-python-serialize" is not supported (use the json serializer in Celery/Kombu) in SQS message m-1`
	msg := message.NewMessage("m-1", []byte("raw SQS body"))
	msg.Metadata.Set(kombu.MetadataDecodeError, reason)
	_, err := celery.TaskFromMessage(msg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), reason)
	assert.ErrorIs(t, err, celery.ErrNotATask)
	assert.ErrorIs(t, err, kombu.ErrUndecodableBody)
	assert.ErrorIs(t, err, kombu.ErrUnsupportedContentType)
	assert.NotContains(t, err.Error(), "no task header")
}

// TestTaskReceivedRootID: a task published without a root is its own root; a received one
// keeps the root_id it came with, none for protocol 1 from Celery's client (as Celery's
// worker sees it), and protocol 1 carries parent, root, shadow and ignore_result.
func TestTaskReceivedRootID(t *testing.T) {
	for _, proto := range []int{1, 2} {
		msg, err := celery.NewTask("t", nil, nil, celery.WithProtocol(proto))
		require.NoError(t, err)
		task, err := celery.TaskFromMessage(msg)
		require.NoError(t, err)
		if proto == 2 {
			assert.Equal(t, task.ID, task.RootID, "protocol 2 writes root_id = id")
		} else {
			assert.Empty(t, task.RootID, "protocol 1 writes no root_id for a task that is its own root")
			task.Protocol = 2
			again, err := task.Message()
			require.NoError(t, err)
			back, err := celery.TaskFromMessage(again)
			require.NoError(t, err)
			assert.Equal(t, task.ID, back.RootID, "sent again, the task is its own root")
		}

		msg, err = celery.NewTask("t", nil, nil, celery.WithProtocol(proto), celery.WithParent("p", "r"),
			celery.WithShadow("s"), celery.WithIgnoreResult())
		require.NoError(t, err)
		task, err = celery.TaskFromMessage(msg)
		require.NoError(t, err)
		assert.Equal(t, [4]any{"p", "r", "s", true}, [4]any{task.ParentID, task.RootID, task.Shadow, task.IgnoreResult},
			"protocol %d carries parent, root, shadow and ignore_result", proto)
	}
}

// TestTaskRawArgumentsAndCompression reads arguments as JSON values, sends kwargs in the
// order given, and sends a compressed task.
func TestTaskRawArgumentsAndCompression(t *testing.T) {
	msg, err := celery.NewTask("t", []any{1, "two", []int{3}}, nil,
		celery.WithRawKwargs(json.RawMessage(`{"z": 1, "a": {"b": null}}`)), celery.WithCompression("gzip"))
	require.NoError(t, err)
	assert.Equal(t, "gzip", msg.Metadata.Get(kombu.MetadataCompression))
	var h map[string]any
	require.NoError(t, json.Unmarshal([]byte(msg.Metadata.Get(kombu.MetadataHeaders)), &h))
	assert.Equal(t, "{'z': 1, 'a': {'b': None}}", h["kwargsrepr"])

	out, err := kombu.EnvelopeMarshaler{}.Marshal(kombu.Destination{Queue: "q"}, msg)
	require.NoError(t, err)
	back, err := kombu.EnvelopeMarshaler{}.Unmarshal("q", &types.Message{Body: aws.String(out.Body), MessageId: aws.String("m-2")})
	require.NoError(t, err)
	assert.Equal(t, "application/x-gzip", back.Metadata.Get(kombu.MetadataCompression))
	task, err := celery.TaskFromMessage(back)
	require.NoError(t, err)
	assert.Equal(t, "application/x-gzip", task.Compression)
	args, err := task.ArgValues()
	require.NoError(t, err)
	require.Len(t, args, 3)
	assert.Equal(t, []string{"1", `"two"`, "[3]"}, []string{string(args[0]), string(args[1]), string(args[2])})
	kwargs, err := task.KwargValues()
	require.NoError(t, err)
	assert.JSONEq(t, `{"b": null}`, string(kwargs["a"]))

	_, err = celery.NewTask("t", nil, nil, celery.WithCompression("brotli"))
	assert.True(t, errors.Is(err, celery.ErrInvalidTask), "%v", err)
}
