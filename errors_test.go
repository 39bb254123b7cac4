package kombu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// opErr wraps err the way the SDK returns it from an operation.
func opErr(op string, err error) error {
	return &smithy.OperationError{ServiceID: "SQS", OperationName: op, Err: err}
}

// httpErr wraps err in the SDK's response error with the given status.
func httpErr(status int, err error) error {
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: err}, RequestID: "req-1"}
}

func TestErrorClassOf(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"nil", nil, nil},
		{"plain error", errors.New("something"), nil},
		{"cancelled", opErr("SendMessage", &aws.RequestCanceledError{Err: context.Canceled}), nil},
		{"bare cancel", context.Canceled, nil},
		{"deadline", opErr("SendMessage", context.DeadlineExceeded), ErrConnection},
		{"dial refused", opErr("ReceiveMessage", dial), ErrConnection},
		{"reset", opErr("ReceiveMessage", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}), ErrConnection},
		{"unexpected EOF", opErr("ReceiveMessage", fmt.Errorf("deserialization failed: %w", io.ErrUnexpectedEOF)), ErrConnection},
		{"dns", opErr("ReceiveMessage", &net.DNSError{Err: "no such host", Name: "sqs.example", IsNotFound: true}), ErrConnection},
		{"operation error without answer", opErr("SendMessage", errors.New("failed to sign request")), ErrConnection},
		{"throttling json", opErr("SendMessage", httpErr(400, &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"})), ErrConnection},
		{"request throttled type", opErr("SendMessage", &types.RequestThrottled{}), ErrConnection},
		{"kms throttled", opErr("SendMessage", &types.KmsThrottled{}), ErrConnection},
		{"500 generic", opErr("SendMessage", httpErr(500, &smithy.GenericAPIError{Code: "InternalError", Fault: smithy.FaultServer})), ErrConnection},
		{"503 unknown code", opErr("SendMessage", httpErr(503, &smithy.GenericAPIError{Code: "Whatever"})), ErrConnection},
		{"429", opErr("SendMessage", httpErr(429, &smithy.GenericAPIError{Code: "TooMany"})), ErrConnection},
		{"server fault", &smithy.GenericAPIError{Code: "Boom", Fault: smithy.FaultServer}, ErrConnection},
		{"expired token", opErr("SendMessage", httpErr(403, &smithy.GenericAPIError{Code: "ExpiredToken"})), ErrConnection},
		{"queue does not exist", opErr("ReceiveMessage", httpErr(400, &types.QueueDoesNotExist{Message: aws.String("nope")})), ErrChannel},
		{"access denied", opErr("SendMessage", httpErr(403, &smithy.GenericAPIError{Code: "AccessDenied"})), ErrChannel},
		{"kms access denied", opErr("SendMessage", &types.KmsAccessDenied{}), ErrChannel},
		{"invalid parameter", opErr("SendMessage", httpErr(400, &smithy.GenericAPIError{Code: "InvalidParameterValue"})), ErrChannel},
		{"batch too long", opErr("SendMessageBatch", &types.BatchRequestTooLong{}), ErrChannel},
		{"invalid contents", opErr("SendMessage", &types.InvalidMessageContents{}), ErrChannel},
		{"receipt invalid", opErr("DeleteMessage", &types.ReceiptHandleIsInvalid{}), ErrChannel},
		{"queue sentinel", fmt.Errorf("kombu: queue %q: %w", "x", ErrQueueDoesNotExist), ErrChannel},
		{"unknown queue", fmt.Errorf("kombu: %w", ErrUnknownQueue), ErrChannel},
		{"too large", &MessageTooLargeError{Queue: "q", MessageUUID: "u", Size: 2, Limit: 1}, ErrChannel},
		{"publish error sender", &PublishError{Queue: "q", Failed: []FailedMessage{{MessageUUID: "u", SenderFault: true}}}, ErrChannel},
		{"publish error sqs side", &PublishError{Queue: "q", Failed: []FailedMessage{{MessageUUID: "u"}}}, ErrConnection},
		{"publish error sender, rest not sent", &PublishError{Queue: "q.fifo", Failed: []FailedMessage{{MessageUUID: "u", SenderFault: true}, {MessageUUID: "v", NotSent: true}}}, ErrChannel},
		{"publish error not sent only", &PublishError{Queue: "q.fifo", Failed: []FailedMessage{{MessageUUID: "v", NotSent: true}}}, nil},
		{"decode", channelError("decode", "q", "id", errors.New("bad json")), ErrChannel},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := errorClass(c.err); got != c.want {
				t.Fatalf("errorClass(%v) = %v, want %v", c.err, got, c.want)
			}
			wrapped := classify("send", "celery", "m-1", c.err)
			if c.err == nil {
				if wrapped != nil {
					t.Fatalf("classify(nil) = %v", wrapped)
				}
				return
			}
			// The class shows through errors.Is, and only the one class.
			for _, class := range []error{ErrConnection, ErrChannel} {
				if got, want := errors.Is(wrapped, class), class == c.want; got != want {
					t.Fatalf("errors.Is(%v, %v) = %v, want %v", wrapped, class, got, want)
				}
			}
			// The original error stays reachable.
			if !errors.Is(wrapped, c.err) && !errors.Is(wrapped, context.Canceled) {
				t.Fatalf("classify lost the original error: %v", wrapped)
			}
		})
	}
}

func TestErrorKeepsSentinelsAndContext(t *testing.T) {
	err := classify("resolve queue", "celery", "", fmt.Errorf("kombu: queue: %w", ErrQueueDoesNotExist))
	if !errors.Is(err, ErrQueueDoesNotExist) || !errors.Is(err, ErrChannel) {
		t.Fatalf("lost the sentinel or the class: %v", err)
	}
	if !errors.Is(ErrMessageTooLarge, ErrChannel) || !errors.Is(&MessageTooLargeError{}, ErrMessageTooLarge) {
		t.Fatal("ErrMessageTooLarge is not an ErrChannel")
	}
	if errors.Is(ErrPublisherClosed, ErrChannel) || errors.Is(ErrPublisherClosed, ErrConnection) {
		t.Fatal("ErrPublisherClosed must have no class")
	}
	cancelled := classify("send", "celery", "", opErr("SendMessage", &aws.RequestCanceledError{Err: context.Canceled}))
	if !errors.Is(cancelled, context.Canceled) || errors.Is(cancelled, ErrConnection) {
		t.Fatalf("a cancellation must stay context.Canceled only: %v", cancelled)
	}
	timeout := classify("send", "celery", "", opErr("SendMessage", context.DeadlineExceeded))
	if !errors.Is(timeout, context.DeadlineExceeded) || !errors.Is(timeout, ErrConnection) {
		t.Fatalf("a request timeout is a connection error that stays DeadlineExceeded: %v", timeout)
	}
	var e *Error
	qdne := classify("receive", "celery", "", opErr("ReceiveMessage", &types.QueueDoesNotExist{}))
	if !errors.As(qdne, &e) || e.Queue != "celery" || e.Op != "receive" {
		t.Fatalf("no *Error naming the queue: %v", qdne)
	}
	var typed *types.QueueDoesNotExist
	if !errors.As(qdne, &typed) {
		t.Fatalf("the SDK's error is not reachable: %v", qdne)
	}
	msg := channelError("decode", "celery", "abc", errors.New("bad")).Error()
	if want := `kombu: decode (queue "celery", message abc) [channel error]: bad`; msg != want {
		t.Fatalf("Error() = %q, want %q", msg, want)
	}
}
