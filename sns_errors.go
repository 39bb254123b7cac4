package kombu

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/smithy-go"
)

// ErrTopicDoesNotExist means the SNS topic of a fanout exchange is missing and was not to be
// created (DisableTopicCreation), or was deleted. It is also an ErrChannel.
var ErrTopicDoesNotExist error = &channelSentinel{"kombu: SNS topic does not exist"}

// ExchangeError is a failed SNS operation of a fanout exchange (or an SQS one made for it,
// such as setting a queue's policy), with its class: errors.Is(err, ErrConnection) or
// errors.Is(err, ErrChannel) holds as for SQS errors (see ErrConnection), and Unwrap gives
// the underlying error.
type ExchangeError struct {
	// Op is what was being done: "resolve topic", "publish", "subscribe queue".
	Op string
	// Exchange is the Kombu exchange name, TopicARN its topic when known.
	Exchange string
	TopicARN string
	// Queue is the Kombu queue name when the operation was about one (subscribing it).
	Queue string
	// Failed names the messages of a PublishBatch that SNS did not accept; the others were
	// sent.
	Failed []FailedMessage
	// Class is ErrConnection or ErrChannel.
	Class error
	Err   error
}

func (e *ExchangeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kombu: %s (exchange %q", e.Op, e.Exchange)
	if e.Queue != "" {
		fmt.Fprintf(&b, ", queue %q", e.Queue)
	}
	if e.TopicARN != "" {
		fmt.Fprintf(&b, ", topic %s", e.TopicARN)
	}
	b.WriteString(")")
	switch e.Class {
	case ErrConnection:
		b.WriteString(" [connection error]")
	case ErrChannel:
		b.WriteString(" [channel error]")
	}
	if len(e.Failed) > 0 {
		fmt.Fprintf(&b, ": SNS rejected %d message(s):", len(e.Failed))
		for i, f := range e.Failed {
			if i == 5 {
				fmt.Fprintf(&b, " and %d more", len(e.Failed)-i)
				break
			}
			fmt.Fprintf(&b, " %s (%s: %s)", f.MessageUUID, f.Code, f.Reason)
		}
		return b.String()
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *ExchangeError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, e.Class) hold; with Failed entries, ErrChannel when SNS blamed the
// sender for one and ErrConnection when it failed one on its side, as *PublishError.
func (e *ExchangeError) Is(target error) bool {
	if target == nil {
		return false
	}
	if target == e.Class {
		return true
	}
	for _, f := range e.Failed {
		if (target == ErrChannel && f.SenderFault) || (target == ErrConnection && !f.SenderFault) {
			return true
		}
	}
	return false
}

// snsConnectionCodes are SNS error codes of transient failures that the SQS classification
// does not know (SNS says "Throttled" where SQS says "ThrottlingException").
var snsConnectionCodes = map[string]struct{}{
	"Throttled": {}, "ThrottledException": {}, "KMSThrottling": {}, "KMSThrottlingException": {},
}

// snsErrorClass is errorClass for errors of SNS calls.
func snsErrorClass(err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		if _, ok := snsConnectionCodes[apiErr.ErrorCode()]; ok {
			return ErrConnection
		}
	}
	return errorClass(err)
}

// isTopicNotFound reports whether SNS said the topic does not exist.
func isTopicNotFound(err error) bool {
	if errors.Is(err, ErrTopicDoesNotExist) {
		return true
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code := apiErr.ErrorCode()
		return code == "NotFound" || code == "NotFoundException"
	}
	return false
}

// exchangeError wraps err in an *ExchangeError of its class, unless it is nil, already one, or
// has no class (the caller's cancellation).
func exchangeError(op, exchange, topicARN, queue string, err error) error {
	if err == nil {
		return nil
	}
	var e *ExchangeError
	if errors.As(err, &e) {
		return err
	}
	class := snsErrorClass(err)
	if class == nil {
		return err
	}
	return &ExchangeError{Op: op, Exchange: exchange, TopicARN: topicARN, Queue: queue, Class: class, Err: err}
}
