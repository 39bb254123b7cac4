package kombu

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// ExchangeType is the kind of a Kombu exchange.
type ExchangeType string

// The exchange types Kombu's SQS transport supports.
const (
	// ExchangeDirect sends a message to every queue bound with a routing key equal to the
	// message's.
	ExchangeDirect ExchangeType = "direct"
	// ExchangeTopic sends a message to every queue bound with a pattern matching the message's
	// routing key, as Kombu's SQS transport matches them. Patterns are words separated by
	// '.', where '*' stands for one non-empty word and '#' for any text, dots included:
	// "orders.*" matches "orders.created" but neither "orders" nor "orders.eu.created";
	// "orders.#" matches "orders.created" and "orders.eu.created" but, unlike an AMQP broker,
	// not "orders"; "#" matches every key.
	ExchangeTopic ExchangeType = "topic"
	// ExchangeFanout sends every message to every bound queue, whatever its routing key.
	ExchangeFanout ExchangeType = "fanout"
)

// Exchange is a Kombu exchange and the queues bound to it.
type Exchange struct {
	Type     ExchangeType
	Bindings []Binding

	// TopicARN makes a fanout exchange use this existing SNS topic when Config.SupportsFanout
	// is set (Kombu: the `arn` of a `predefined_exchanges` entry): it is never created, nor
	// cleaned of stale subscriptions. AccessKeyID, SecretAccessKey and SessionToken then sign
	// every SNS request on that topic (empty: the Config's credentials); printing an Exchange
	// shows no secret.
	TopicARN        string
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
}

// Binding binds a queue to an exchange with a routing key (a pattern for topic exchanges,
// ignored by fanout exchanges).
type Binding struct {
	Queue      string
	RoutingKey string
}

// ErrUnroutable means a message published to an exchange matched none of its bindings.
// Nothing of that Publish call was sent. It is also an ErrChannel.
var ErrUnroutable error = &channelSentinel{"kombu: no binding of the exchange matches the routing key"}

// UnroutableError names the exchange and routing key of a message no binding matched. Kombu
// drops such messages without a word; Publish reports them instead.
type UnroutableError struct {
	Exchange    string
	RoutingKey  string
	MessageUUID string
}

// Error names the message, the exchange and the routing key.
func (e *UnroutableError) Error() string {
	return fmt.Sprintf("kombu: message %s to exchange %q: no binding matches routing key %q", e.MessageUUID, e.Exchange, e.RoutingKey)
}

// Is makes errors.Is(err, ErrUnroutable) and errors.Is(err, ErrChannel) hold.
func (e *UnroutableError) Is(target error) bool {
	return target == ErrUnroutable || target == ErrChannel
}

// route returns the queues a message with this routing key goes to, each once, in binding
// order.
func (ex Exchange) route(routingKey string) []string {
	var out []string
	seen := make(map[string]bool)
	for _, b := range ex.Bindings {
		var ok bool
		switch ex.Type {
		case ExchangeDirect:
			ok = b.RoutingKey == routingKey
		case ExchangeTopic:
			ok = topicMatch(b.RoutingKey, routingKey)
		case ExchangeFanout:
			ok = true
		}
		if ok && !seen[b.Queue] {
			seen[b.Queue] = true
			out = append(out, b.Queue)
		}
	}
	return out
}

// topicMatch reports whether a binding's pattern matches a routing key the way Kombu's
// virtual topic exchange, which its SQS transport routes with, matches them.
func topicMatch(pattern, key string) bool {
	re, ok := topicPatterns.Load(pattern)
	if !ok {
		re, _ = topicPatterns.LoadOrStore(pattern, topicRegexp(pattern))
	}
	return re.(*regexp.Regexp).MatchString(key)
}

// topicPatterns caches the compiled binding patterns (they come from the configuration).
var topicPatterns sync.Map // string -> *regexp.Regexp

// topicRegexp builds the regular expression Kombu builds for a pattern: its words joined by
// a literal '.', '*' standing for one or more characters other than '.', '#' for any text,
// possibly empty. The trailing "\n?" stands for Python's '$', which also matches before a
// final newline.
func topicRegexp(pattern string) *regexp.Regexp {
	words := strings.Split(pattern, ".")
	for i, w := range words {
		switch w {
		case "*":
			words[i] = `[^.]+`
		case "#":
			words[i] = `.*?`
		default:
			words[i] = regexp.QuoteMeta(w)
		}
	}
	return regexp.MustCompile(`^` + strings.Join(words, `\.`) + `\n?$`)
}

// validateExchanges checks exchange types and bindings. With snsFanout, a fanout exchange is an
// SNS topic and may have no bindings (Go only publishes to it).
func validateExchanges(exchanges map[string]Exchange, snsFanout bool) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	for _, name := range sortedKeys(exchanges) {
		ex := exchanges[name]
		field := "Exchanges[" + name + "]"
		if name == "" {
			bad(field, "an exchange needs a name (the empty exchange is the queue itself)")
		}
		switch ex.Type {
		case ExchangeDirect, ExchangeTopic, ExchangeFanout:
		default:
			bad(field+".Type", "must be %q, %q or %q, got %q", ExchangeDirect, ExchangeTopic, ExchangeFanout, ex.Type)
		}
		if len(ex.Bindings) == 0 && !(snsFanout && ex.Type == ExchangeFanout) {
			bad(field+".Bindings", "needs at least one binding")
		}
		for i, b := range ex.Bindings {
			bfield := fmt.Sprintf("%s.Bindings[%d]", field, i)
			if b.Queue == "" {
				bad(bfield+".Queue", "is required")
			}
			if _, clash := exchanges[b.Queue]; clash && b.Queue != "" {
				bad(bfield+".Queue", "%q names an exchange, not a queue", b.Queue)
			}
			if ex.Type == ExchangeTopic {
				for _, w := range strings.Split(b.RoutingKey, ".") {
					if len(w) > 1 && strings.ContainsAny(w, "*#") {
						bad(bfield+".RoutingKey", "wildcards '*' and '#' must be whole words, got %q", b.RoutingKey)
						break
					}
				}
			}
		}
	}
	return errors.Join(errs...)
}

// publishToExchange routes messages to the queues bound to the exchange, as Kombu's virtual
// exchanges do, and publishes each queue's share with delivery_info naming the exchange and
// the message's routing key. Every message is routed before anything is sent, so an
// unroutable message fails the call without side effects.
func (p *Publisher) publishToExchange(ctx context.Context, name string, ex Exchange, msgs []*message.Message) error {
	// For each queue, the messages in publish order, cut into runs of one routing key (the
	// routing key is part of the Destination). Runs are sent one after the other, so a FIFO
	// queue receives its messages in order, and a failed run stops the queue's share: the
	// messages of the later runs are not sent.
	var queues []string
	runs := make(map[string][]*exchangeRun)
	for _, msg := range msgs {
		rk := msg.Metadata.Get(MetadataRoutingKey)
		targets := ex.route(rk)
		if len(targets) == 0 {
			return &UnroutableError{Exchange: name, RoutingKey: rk, MessageUUID: msg.UUID}
		}
		for _, queue := range targets {
			rs, ok := runs[queue]
			if !ok {
				queues = append(queues, queue)
			}
			if len(rs) == 0 || rs[len(rs)-1].routingKey != rk {
				rs = append(rs, &exchangeRun{routingKey: rk})
				runs[queue] = rs
			}
			rs[len(rs)-1].msgs = append(rs[len(rs)-1].msgs, msg)
		}
	}
	if len(queues) > 1 || len(runs[queues[0]]) > 1 {
		// Each run checks its own messages before sending them; with several, a message too
		// large in a later run would fail the call after earlier runs were sent.
		if err := p.checkExchangeSizes(name, queues, runs); err != nil {
			return err
		}
	}
	var errs []error
	for _, queue := range queues {
		rs := runs[queue]
		for i, r := range rs {
			dest := Destination{Queue: queue, Exchange: name, RoutingKey: r.routingKey}
			if err := p.publishToQueue(ctx, queue, dest, r.msgs); err != nil {
				markLaterRunsNotSent(err, queue, rs[i+1:])
				errs = append(errs, fmt.Errorf("kombu: exchange %q to queue %q: %w", name, queue, err))
				break
			}
		}
	}
	return errors.Join(errs...)
}

// exchangeRun is a run of consecutive messages of a Publish call to an exchange that go to
// one queue with one routing key.
type exchangeRun struct {
	routingKey string
	msgs       []*message.Message
}

// markLaterRunsNotSent adds the messages of the runs after a failed one, which were never
// sent, to the PublishError of the failed run, when it has one for the queue: that error
// promises that the messages it does not name were accepted, so a caller sending the named
// ones again would otherwise lose these.
func markLaterRunsNotSent(err error, queue string, later []*exchangeRun) {
	var pe *PublishError
	if len(later) == 0 || !errors.As(err, &pe) || pe.Queue != queue {
		return
	}
	for _, r := range later {
		for _, m := range r.msgs {
			pe.Failed = append(pe.Failed, FailedMessage{MessageUUID: m.UUID, NotSent: true,
				Reason: "not sent: a message before it in the call was not accepted"})
		}
	}
}

// checkExchangeSizes marshals the messages of every run as they will be sent and fails with
// the first error publishTo would meet (a message that does not marshal, or is too large).
func (p *Publisher) checkExchangeSizes(name string, queues []string, runs map[string][]*exchangeRun) error {
	for _, queue := range queues {
		fifo := p.queueIsFIFO(queue)
		for _, r := range runs[queue] {
			dest := Destination{Queue: queue, Exchange: name, RoutingKey: r.routingKey, FIFO: fifo}
			for _, msg := range r.msgs {
				out, err := p.config.Marshaler.Marshal(dest, msg)
				if err != nil {
					return channelError("marshal", queue, msg.UUID, err)
				}
				if size := out.size(); size > p.config.MaxMessageSize {
					return &MessageTooLargeError{Queue: queue, MessageUUID: msg.UUID, Size: size, Limit: p.config.MaxMessageSize}
				}
			}
		}
	}
	return nil
}

// queueIsFIFO tells whether a queue is a FIFO one without a request: as resolved already,
// else from its predefined URL or its SQS name.
func (p *Publisher) queueIsFIFO(name string) bool {
	if q := p.resolver.known(name); q != nil {
		return q.fifo
	}
	if pq, ok := p.config.PredefinedQueues[name]; ok {
		return isFIFOQueue(pq.URL[strings.LastIndexByte(pq.URL, '/')+1:])
	}
	return isFIFOQueue(CanonicalQueueName(p.config.QueueNamePrefix, name))
}
