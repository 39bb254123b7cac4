package kombu_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"
	"github.com/stretchr/testify/require"

	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// overlapCounter counts the SendMessageBatch calls, and those that started while another was
// under way.
type overlapCounter struct {
	inflight, calls, overlapped atomic.Int64
}

func (o *overlapCounter) option(opts *sqs.Options) {
	opts.APIOptions = append(opts.APIOptions, func(stack *middleware.Stack) error {
		return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("overlapCounter",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				if awsmiddleware.GetOperationName(ctx) != "SendMessageBatch" {
					return next.HandleFinalize(ctx, in)
				}
				o.calls.Add(1)
				if o.inflight.Add(1) > 1 {
					o.overlapped.Add(1)
				}
				defer o.inflight.Add(-1)
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
	})
}

// TestCoalescedPublishKeepsTwoBatchesInFlight: 16 goroutines publishing one message per call
// are sent as two batches of about 8 in flight at once, not as one batch of 10 while the other
// 6 callers wait for its answer; batches stay near full (≤ 0.15 requests per message).
func TestCoalescedPublishKeepsTwoBatchesInFlight(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("coalesce-overlap")
	url := semQueue(t, client, topic, 30*time.Second)
	var counter overlapCounter
	cfg := semConfig(ep, 30*time.Second)
	cfg.SQSOptions = append(cfg.SQSOptions, counter.option)
	pub := semPublisher(t, cfg)
	require.NoError(t, pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("warm-up"))))

	const publishers, each = 16, 40
	calls0, overlapped0 := counter.calls.Load(), counter.overlapped.Load()
	var wg sync.WaitGroup
	errs := make(chan error, publishers*each)
	for g := 0; g < publishers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				errs <- pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte(strconv.Itoa(i))))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	calls := counter.calls.Load() - calls0
	overlapped := counter.overlapped.Load() - overlapped0
	perMsg := float64(calls) / (publishers * each)
	t.Logf("%d SendMessageBatch calls for %d messages (%.3f per message), %d started while another was under way",
		calls, publishers*each, perMsg, overlapped)
	require.LessOrEqual(t, perMsg, 0.15, "batches stay near full")
	// One batch at a time overlaps none but the first few; two in flight, about half.
	require.GreaterOrEqual(t, float64(overlapped)/float64(calls), 0.25, "batches went out one at a time")

	seen := semReceiveAll(t, client, url, publishers*each+1, 60*time.Second)
	require.Len(t, seen, publishers*each+1)
}
