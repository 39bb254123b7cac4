package kombu

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
)

// TestResendFailedFIFO checks which failed entries resendFailed sends again, on SQS and SNS
// alike: on a standard queue or topic every entry failed on the service's side; on a FIFO
// one only a tail of such entries, never one that an accepted entry follows.
func TestResendFailedFIFO(t *testing.T) {
	msgs := make([]*message.Message, 5)
	for i := range msgs {
		msgs[i] = message.NewMessage("m"+strconv.Itoa(i), nil)
	}
	batch := []string{"0", "1", "2", "3", "4"}
	retryable := func(ids ...string) []batchFailure {
		var out []batchFailure
		for _, id := range ids {
			out = append(out, batchFailure{id: id, code: "InternalError"})
		}
		return out
	}
	cases := []struct {
		name     string
		fifo     bool
		failures []batchFailure // of the first request; the others succeed
		sent     string         // the entries of each request
		failed   string         // the messages returned
	}{
		{"standard, head", false, retryable("0"), "[[0 1 2 3 4] [0]]", "[]"},
		{"fifo, head", true, retryable("0"), "[[0 1 2 3 4]]", "[m0]"},
		{"fifo, middle", true, retryable("3", "1"), "[[0 1 2 3 4]]", "[m1 m3]"},
		{"fifo, tail", true, retryable("4", "3"), "[[0 1 2 3 4] [3 4]]", "[]"},
		{"fifo, whole batch", true, retryable("0", "1", "2", "3", "4"), "[[0 1 2 3 4] [0 1 2 3 4]]", "[]"},
		{"fifo, tail with a sender fault", true, append(retryable("4"), batchFailure{id: "3", code: "InvalidAttributeValue", senderFault: true}),
			"[[0 1 2 3 4]]", "[m3 m4]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var sent [][]string
			failed, _, err := resendFailed(context.Background(), batch, msgs, c.fifo, func(id string) string { return id },
				func(b []string, attempt int) ([]batchFailure, error) {
					sent = append(sent, b)
					if attempt == 0 {
						return c.failures, nil
					}
					return nil, nil
				})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range failed {
				names = append(names, f.MessageUUID)
			}
			if got := fmt.Sprint(sent); got != c.sent {
				t.Errorf("requests %s, want %s", got, c.sent)
			}
			if got := fmt.Sprint(names); got != c.failed {
				t.Errorf("failed %s, want %s", got, c.failed)
			}
		})
	}
}
