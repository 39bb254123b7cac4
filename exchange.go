package kombu

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
)

// ExchangeType is the kind of a Kombu exchange.
type ExchangeType string

// The exchange types Kombu's SQS transport supports.
const (
	ExchangeDirect ExchangeType = "direct"
	ExchangeTopic  ExchangeType = "topic"
	ExchangeFanout ExchangeType = "fanout"
)

// Exchange is a Kombu exchange and the queues bound to it.
type Exchange struct {
	Type     ExchangeType
	Bindings []Binding
}

// Binding binds a queue to an exchange with a routing key (a pattern for topic exchanges,
// ignored by fanout exchanges).
type Binding struct {
	Queue      string
	RoutingKey string
}

// publishToExchange routes messages to the queues bound to the exchange.
func (p *Publisher) publishToExchange(ctx context.Context, name string, ex Exchange, msgs []*message.Message) error {
	return fmt.Errorf("kombu: publishing to exchange %q: exchanges are not supported yet", name)
}
