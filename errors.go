package kombu

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors, for errors.Is.
var (
	// ErrPublisherClosed is returned by Publish after Close.
	ErrPublisherClosed = errors.New("kombu: publisher is closed")
	// ErrSubscriberClosed is returned by Subscribe after Close.
	ErrSubscriberClosed = errors.New("kombu: subscriber is closed")
	// ErrQueueDoesNotExist means an SQS queue is missing and was not to be created.
	ErrQueueDoesNotExist = errors.New("kombu: queue does not exist")
	// ErrUnknownQueue means predefined queues are configured and the queue is not one of them.
	ErrUnknownQueue = errors.New("kombu: queue is not among the predefined queues")
	// ErrMessageTooLarge means a message exceeds the SQS size limit; nothing was sent.
	ErrMessageTooLarge = errors.New("kombu: message too large")
	// ErrInvalidConfig wraps every configuration error.
	ErrInvalidConfig = errors.New("kombu: invalid config")
)

// ConfigError names an invalid configuration field and why.
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

// Is makes errors.Is(err, ErrMessageTooLarge) hold.
func (e *MessageTooLargeError) Is(target error) bool { return target == ErrMessageTooLarge }

// FailedMessage is one message SQS did not accept.
type FailedMessage struct {
	MessageUUID string
	Code        string
	Reason      string
	SenderFault bool
}

// PublishError names the messages of a Publish call that SQS did not accept. Messages not
// named were accepted.
type PublishError struct {
	Queue  string
	Failed []FailedMessage
}

func (e *PublishError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kombu: SQS rejected %d message(s) for queue %q:", len(e.Failed), e.Queue)
	for i, f := range e.Failed {
		if i == 5 {
			fmt.Fprintf(&b, " and %d more", len(e.Failed)-i)
			break
		}
		fmt.Fprintf(&b, " %s (%s: %s)", f.MessageUUID, f.Code, f.Reason)
	}
	return b.String()
}
