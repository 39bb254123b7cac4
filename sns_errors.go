package kombu

import (
	"errors"

	"github.com/aws/smithy-go"
)

// snsConnectionCodes are SNS error codes of transient failures that the SQS classification
// does not know (SNS says "Throttled" where SQS says "ThrottlingException").
var snsConnectionCodes = map[string]struct{}{
	"Throttled": {}, "ThrottledException": {}, "KMSThrottling": {}, "KMSThrottlingException": {},
	"InternalError": {}, "InternalErrorException": {},
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
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code := apiErr.ErrorCode()
		return code == "NotFound" || code == "NotFoundException"
	}
	return false
}

// exchangeError wraps err in an *Error of its class naming the exchange (and the queue, when
// subscribing one), unless it is nil, already an *Error naming the exchange, or has no class
// (the caller's cancellation).
func exchangeError(op, exchange, queue string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) && e.Exchange != "" {
		return err
	}
	class := snsErrorClass(err)
	if class == nil {
		return err
	}
	return &Error{Op: op, Exchange: exchange, Queue: queue, Class: class, Err: err}
}
