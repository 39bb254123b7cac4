package kombu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Sentinel errors, for errors.Is.
var (
	// ErrPublisherClosed is returned by Publish after Close.
	ErrPublisherClosed = errors.New("kombu: publisher is closed")
	// ErrSubscriberClosed is returned by Subscribe after Close.
	ErrSubscriberClosed = errors.New("kombu: subscriber is closed")
	// ErrQueueDoesNotExist means an SQS queue is missing and was not to be created. It is
	// also an ErrChannel.
	ErrQueueDoesNotExist error = &channelSentinel{"kombu: queue does not exist"}
	// ErrUnknownQueue means predefined queues are configured and the queue is not one of them.
	// It is also an ErrChannel.
	ErrUnknownQueue error = &channelSentinel{"kombu: queue is not among the predefined queues"}
	// ErrMessageTooLarge means a message exceeds the SQS size limit; nothing was sent. It is
	// also an ErrChannel.
	ErrMessageTooLarge error = &channelSentinel{"kombu: message too large"}
	// ErrInvalidConfig wraps every configuration error.
	ErrInvalidConfig = errors.New("kombu: invalid config")
)

// ConfigError names an invalid configuration field and why. Field is the Go field (e.g.
// "VisibilityTimeout", "PredefinedQueues[celery].URL"), or, for the Celery settings read by
// ParseBrokerURL, ParseTransportOptions and their kin, the setting as Kombu spells it, with
// Python-style subscripts for nested ones (e.g. "visibility_timeout",
// `predefined_queues["celery"]["backoff_policy"]`, "broker_url"). Reason never shows a
// credential.
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string { return "kombu: invalid config: " + e.Field + " " + e.Reason }

// Is makes errors.Is(err, ErrInvalidConfig) hold.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// MessageTooLargeError tells which message is too large, by how much.
type MessageTooLargeError struct {
	Queue       string
	MessageUUID string
	Size        int
	Limit       int
}

func (e *MessageTooLargeError) Error() string {
	return fmt.Sprintf("kombu: message %s for queue %q is %d bytes once encoded, over the SQS limit of %d bytes; nothing was sent",
		e.MessageUUID, e.Queue, e.Size, e.Limit)
}

// Is makes errors.Is(err, ErrMessageTooLarge) and errors.Is(err, ErrChannel) hold.
func (e *MessageTooLargeError) Is(target error) bool {
	return target == ErrMessageTooLarge || target == ErrChannel
}

// FailedMessage is one message SQS did not accept.
type FailedMessage struct {
	MessageUUID string
	// Code and Reason are SQS's (or SNS's) for the entry. For a message whose whole request
	// failed (on a FIFO queue or topic, see PublishError), they are those of the request's
	// error; Code is empty when the request got no answer (a network failure, a timeout), and
	// the message may then have been accepted.
	Code        string
	Reason      string
	SenderFault bool
	// NotSent means the message was never sent: on a FIFO queue or topic, a message before it
	// in the same Publish call failed (or the call was cancelled first).
	NotSent bool
	// request is set when the message's whole request failed: that request's error, joined to
	// the PublishError, gives the class.
	request bool
}

// PublishError names the messages of a Publish call that SQS did not accept. Messages not
// named were accepted.
//
// On a FIFO queue or topic a Publish call stops at the first batch with a failed entry or
// request, so that no message is accepted ahead of one before it that was not. The error then
// names every message not accepted, in the call's order: the failed entries, the messages of
// a request that failed (that request's error is joined to the PublishError: errors.As finds
// both), and the messages after them, marked NotSent. Publishing the named messages again, in
// that order, keeps the group's order, except that a message of a request that got no answer
// may have been accepted already.
type PublishError struct {
	Queue string
	// Exchange is set instead of Queue when SNS rejected entries of a PublishBatch to the topic
	// of a fanout exchange.
	Exchange string
	Failed   []FailedMessage
}

// Is makes errors.Is(err, ErrChannel) hold when SQS blamed the sender for an entry (invalid
// contents, too large...), and errors.Is(err, ErrConnection) when it failed an entry on its
// side (worth publishing again). Messages not sent, and those of a request that got no
// answer, count for neither: the error of the failed request, joined to the PublishError,
// has the class.
func (e *PublishError) Is(target error) bool {
	for _, f := range e.Failed {
		if f.NotSent || f.request {
			continue
		}
		if (target == ErrChannel && f.SenderFault) || (target == ErrConnection && !f.SenderFault) {
			return true
		}
	}
	return false
}

func (e *PublishError) Error() string {
	service, dest := "SQS", fmt.Sprintf("queue %q", e.Queue)
	if e.Exchange != "" {
		service, dest = "SNS", fmt.Sprintf("exchange %q", e.Exchange)
	}
	var rejected, unanswered []FailedMessage
	notSent := 0
	for _, f := range e.Failed {
		switch {
		case f.NotSent:
			notSent++
		case f.request && f.Code == "":
			unanswered = append(unanswered, f)
		default:
			rejected = append(rejected, f)
		}
	}
	var b strings.Builder
	b.WriteString("kombu: ")
	// part begins a part of the message and returns what names the destination: the first
	// part names it, the others follow it after "; ".
	part := func() string {
		if b.Len() > len("kombu: ") {
			b.WriteString("; ")
			return ""
		}
		return " for " + dest
	}
	if len(rejected) > 0 {
		forDest := part()
		fmt.Fprintf(&b, "%s rejected %d message(s)%s:", service, len(rejected), forDest)
		writeFirst(&b, len(rejected), func(i int) {
			fmt.Fprintf(&b, " %s (%s: %s)", rejected[i].MessageUUID, rejected[i].Code, rejected[i].Reason)
		})
	}
	if len(unanswered) > 0 {
		forDest := part()
		fmt.Fprintf(&b, "%d message(s)%s got no answer from %s (they may have been accepted):", len(unanswered), forDest, service)
		writeFirst(&b, len(unanswered), func(i int) { fmt.Fprintf(&b, " %s", unanswered[i].MessageUUID) })
	}
	if notSent > 0 {
		forDest := part()
		fmt.Fprintf(&b, "%d message(s)%s not sent", notSent, forDest)
	}
	return b.String()
}

// writeFirst writes the first five of n items with write, then how many more there are.
func writeFirst(b *strings.Builder, n int, write func(i int)) {
	for i := range min(n, 5) {
		write(i)
	}
	if n > 5 {
		fmt.Fprintf(b, " and %d more", n-5)
	}
}

// Error classes, after Kombu's split of a transport's errors into connection errors and
// channel errors. An error returned by Publish or Subscribe, or reported in the Subscriber's
// log, that comes from SQS satisfies errors.Is with one of them (a *PublishError whose entries
// failed both ways, with both). ErrPublisherClosed, ErrSubscriberClosed, ErrInvalidConfig and
// a cancelled context have no class.
//
// ErrConnection: the request did not get through or SQS could not serve it now; the same
// request may succeed later. The SDK retries these first; then the Subscriber retries with
// a pause that doubles with each failure.
//   - network failures: refused, reset or dropped connections, DNS errors, timeouts (also
//     context.DeadlineExceeded of a request timeout)
//   - throttling (ThrottlingException, RequestThrottled, KmsThrottled and the SDK's other
//     throttle codes, HTTP 429)
//   - HTTP 5xx and server-side faults (InternalError, ServiceUnavailable...)
//   - expired or not yet refreshed credentials (ExpiredToken, RequestExpired...)
//   - batch entries SQS failed on its side (SenderFault false)
//
// ErrChannel: the request itself is wrong for this queue or message; sending it again
// unchanged fails again until something changes. Neither the SDK nor the Subscriber retries
// these at once: the Subscriber reports them with the queue and message id, hands an
// undecodable message on raw (see MetadataDecodeError), and polls a queue that failed again
// only after a pause that doubles with each failure (ReconnectRetrySleep, up to 30 s).
//   - queue does not exist (QueueDoesNotExist, ErrQueueDoesNotExist, ErrUnknownQueue),
//     deleted recently
//   - access denied (AccessDenied, KMS access errors, invalid security or credentials)
//   - message too large (ErrMessageTooLarge, BatchRequestTooLong)
//   - message bodies that cannot be encoded or decoded, invalid message contents
//   - invalid parameters, attributes, batch entries or receipt handles; unsupported
//     operations; batch entries SQS failed blaming the sender (SenderFault true)
//
// A cancelled context (context.Canceled) is neither: it is returned as it is.
var (
	ErrConnection = errors.New("kombu: connection error")
	ErrChannel    = errors.New("kombu: channel error")
)

// channelSentinel is a sentinel error that is also an ErrChannel.
type channelSentinel struct{ msg string }

func (e *channelSentinel) Error() string { return e.msg }

// Is makes errors.Is(sentinel, ErrChannel) hold.
func (e *channelSentinel) Is(target error) bool { return target == ErrChannel }

// Error is a failed SQS operation, or SNS operation of a fanout exchange, with its class
// (ErrConnection or ErrChannel) and what it was about. errors.Is(err, e.Class) holds, and
// Unwrap gives the SDK's error.
type Error struct {
	// Op is what was being done, e.g. "send", "receive", "delete", "decode".
	Op string
	// Queue is the Kombu queue name.
	Queue string
	// Exchange is the fanout exchange of an SNS operation (see Config.SupportsFanout).
	Exchange string
	// MessageID is the SQS message id or Watermill UUID concerned, if a single one.
	MessageID string
	// Class is ErrConnection or ErrChannel.
	Class error
	// Err is the underlying error.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("kombu: ")
	b.WriteString(e.Op)
	var about []string
	if e.Exchange != "" {
		about = append(about, fmt.Sprintf("exchange %q", e.Exchange))
	}
	if e.Queue != "" {
		about = append(about, fmt.Sprintf("queue %q", e.Queue))
	}
	if e.MessageID != "" && len(about) > 0 {
		about = append(about, "message "+e.MessageID)
	}
	if len(about) > 0 {
		b.WriteString(" (" + strings.Join(about, ", ") + ")")
	}
	if e.Class == ErrConnection {
		b.WriteString(" [connection error]")
	} else if e.Class == ErrChannel {
		b.WriteString(" [channel error]")
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, e.Class) hold.
func (e *Error) Is(target error) bool { return target != nil && target == e.Class }

// errorClass returns ErrConnection, ErrChannel or nil (nil error, cancelled context, or an
// error that says nothing about SQS) for err. See ErrConnection for the lists.
func errorClass(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrChannel):
		return ErrChannel
	case errors.Is(err, ErrConnection):
		return ErrConnection
	case errors.Is(err, context.Canceled):
		return nil
	}
	// A response with a status code says most.
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		if code := re.HTTPStatusCode(); code >= 500 || code == http.StatusTooManyRequests {
			return ErrConnection
		}
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return classifyAPIError(apiErr)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) {
		return ErrConnection
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return ErrConnection
	}
	var opErr *smithy.OperationError
	if errors.As(err, &opErr) {
		// The SDK sent (or tried to send) a request and got no usable answer: a garbled or
		// cut response, a failed signing or credential refresh...
		return ErrConnection
	}
	return nil
}

// connectionCodes are API error codes of transient failures besides the SDK's throttle codes.
var connectionCodes = map[string]struct{}{
	"RequestTimeout": {}, "RequestTimeoutException": {}, "ServiceUnavailable": {}, "InternalError": {},
	"InternalFailure": {}, "KmsThrottled": {}, "KMS.ThrottlingException": {}, "ExpiredToken": {},
	"ExpiredTokenException": {}, "RequestExpired": {}, "IDPCommunicationError": {},
	"AWS.SimpleQueueService.InternalError": {}, "AWS.SimpleQueueService.ServiceUnavailable": {},
}

func classifyAPIError(apiErr smithy.APIError) error {
	code := apiErr.ErrorCode()
	if _, ok := retry.DefaultThrottleErrorCodes[code]; ok {
		return ErrConnection
	}
	if _, ok := connectionCodes[code]; ok {
		return ErrConnection
	}
	if apiErr.ErrorFault() == smithy.FaultServer {
		return ErrConnection
	}
	// QueueDoesNotExist, AccessDenied, InvalidParameterValue, BatchRequestTooLong, ...: the
	// request is at fault.
	return ErrChannel
}

// classify wraps err in an *Error of its class, unless it is nil, already classified, has no
// class, or is the caller's cancellation.
func classify(op, queue, messageID string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	class := errorClass(err)
	if class == nil {
		return err
	}
	return &Error{Op: op, Queue: queue, MessageID: messageID, Class: class, Err: err}
}

// channelError wraps err as an ErrChannel, for failures outside SQS calls that sending again
// cannot cure (a body that does not encode or decode).
func channelError(op, queue, messageID string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Op: op, Queue: queue, MessageID: messageID, Class: ErrChannel, Err: err}
}
