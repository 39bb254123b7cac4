package kombu

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// entityName mangles a Kombu queue name into an SQS queue name exactly as Kombu's SQS transport
// does: every ASCII punctuation character except '-' and '_' becomes '_', '.' becomes '-', and a
// trailing ".fifo" is kept as is.
func entityName(name string) string {
	suffix := ""
	if strings.HasSuffix(name, ".fifo") {
		name, suffix = strings.TrimSuffix(name, ".fifo"), ".fifo"
	}
	b := []byte(name)
	for i, c := range b {
		switch {
		case c == '.':
			b[i] = '-'
		case c == '-' || c == '_':
		case isASCIIPunct(c):
			b[i] = '_'
		}
	}
	return string(b) + suffix
}

func isASCIIPunct(c byte) bool {
	return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') || (c >= '{' && c <= '~')
}

// CanonicalQueueName is the SQS queue name Kombu uses for a queue: entityName(prefix + name).
func CanonicalQueueName(prefix, name string) string { return entityName(prefix + name) }

// isFIFOQueue reports whether a Kombu queue name names a FIFO queue (it ends in ".fifo").
func isFIFOQueue(name string) bool { return strings.HasSuffix(name, ".fifo") }

// validSQSQueueName checks SQS's rule: 1 to 80 characters of letters, digits, '-' and '_',
// plus an optional ".fifo" suffix.
func validSQSQueueName(name string) error {
	base := strings.TrimSuffix(name, ".fifo")
	if base == "" || len(name) > 80 {
		return fmt.Errorf("SQS queue name %q must have 1 to 80 characters", name)
	}
	for i := 0; i < len(base); i++ {
		c := base[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("SQS queue name %q has %q, which SQS does not allow", name, c)
		}
	}
	return nil
}

// queue is a resolved SQS queue: its names, URL, the client that signs its requests and its
// backoff policy.
type queue struct {
	name    string // Kombu queue name (the topic)
	sqsName string
	url     string
	fifo    bool
	client  *sqs.Client
	backoff *backoffTable

	visibilityMu  sync.Mutex
	visibility    time.Duration // 0 until read
	visibilityAsk bool          // the receives must ask for visibility: see visibilityTimeout
}

// visibilityTimeout is the visibility the heartbeat counts on for the queue's messages: the
// queue's VisibilityTimeout attribute, read once. When it cannot be read, it returns fallback
// and the error, and the next call tries again. ask reports that the queue does not hide a
// received message for vis itself (its VisibilityTimeout is 0), so the receives must ask for it.
func (q *queue) visibilityTimeout(ctx context.Context, fallback time.Duration) (vis time.Duration, ask bool, err error) {
	q.visibilityMu.Lock()
	defer q.visibilityMu.Unlock()
	if q.visibility > 0 {
		return q.visibility, q.visibilityAsk, nil
	}
	// Not the caller's cancellation: a Subscribe whose context ends at once still needs it.
	// RequestTimeout bounds the call.
	out, err := q.client.GetQueueAttributes(context.WithoutCancel(ctx), &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(q.url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameVisibilityTimeout},
	})
	if err != nil {
		return fallback, true, err
	}
	s := out.Attributes[string(types.QueueAttributeNameVisibilityTimeout)]
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return fallback, true, fmt.Errorf("VisibilityTimeout attribute %q is not a number of seconds", s)
	}
	q.visibility = time.Duration(n) * time.Second
	if n == 0 {
		// A queue whose messages are visible again at once, before the heartbeat's first
		// extension: the receives ask for the fallback, and the heartbeat extends by it.
		q.visibility, q.visibilityAsk = fallback, true
	}
	return q.visibility, q.visibilityAsk, nil
}

// queueResolver maps Kombu queue names to SQS queues, creating them when allowed, and caches
// the result. Predefined queues are never looked up or created.
type queueResolver struct {
	cfg     Config
	clients *clientSet
	// defaultBackoff applies to queues that are not predefined with their own policy.
	defaultBackoff *backoffTable

	mu     sync.Mutex
	queues map[string]*queueEntry
}

type queueEntry struct {
	ready chan struct{}
	q     *queue
	err   error
}

func newQueueResolver(cfg Config, clients *clientSet, defaultBackoff *backoffTable) *queueResolver {
	return &queueResolver{cfg: cfg, clients: clients, defaultBackoff: defaultBackoff, queues: map[string]*queueEntry{}}
}

// resolve returns the queue for a Kombu queue name. Concurrent calls for the same name share
// one lookup; a failed lookup is not cached.
func (r *queueResolver) resolve(ctx context.Context, name string) (*queue, error) {
	r.mu.Lock()
	e, ok := r.queues[name]
	if !ok {
		e = &queueEntry{ready: make(chan struct{})}
		r.queues[name] = e
		r.mu.Unlock()
		e.q, e.err = r.lookup(ctx, name)
		if e.err != nil {
			r.mu.Lock()
			delete(r.queues, name)
			r.mu.Unlock()
		}
		close(e.ready)
		return e.q, e.err
	}
	r.mu.Unlock()
	select {
	case <-e.ready:
		if e.err != nil {
			return r.resolve(ctx, name)
		}
		return e.q, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// known returns the queue of a name when it has been resolved already, and nil otherwise.
func (r *queueResolver) known(name string) *queue {
	r.mu.Lock()
	e := r.queues[name]
	r.mu.Unlock()
	if e == nil {
		return nil
	}
	select {
	case <-e.ready:
		return e.q // nil when the lookup failed
	default:
		return nil
	}
}

// forget drops the cached queue q of a name, after SQS said it does not exist (deleted, or
// lost by a broker restart), so that the next resolve looks it up, and creates it when
// allowed, again. A newer entry for the name is kept, and so is one whose lookup is under
// way: it is newer than q, and its fields are not to be read before it is ready.
func (r *queueResolver) forget(q *queue) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.queues[q.name]
	if !ok {
		return
	}
	select {
	case <-e.ready:
		if e.q == q {
			delete(r.queues, q.name)
		}
	default:
	}
}

// recoverable reports whether err says q is gone and a fresh lookup may bring it back: its
// URL is forgotten then. Predefined queues are never looked up, so never recoverable.
func (r *queueResolver) recoverable(q *queue, err error) bool {
	if len(r.cfg.PredefinedQueues) > 0 || !isQueueDoesNotExist(err) {
		return false
	}
	r.forget(q)
	return true
}

func (r *queueResolver) lookup(ctx context.Context, name string) (*queue, error) {
	if name == "" {
		return nil, &ConfigError{Field: "topic", Reason: "(the queue name) must not be empty"}
	}
	if len(r.cfg.PredefinedQueues) > 0 {
		return r.predefined(name)
	}
	sqsName := CanonicalQueueName(r.cfg.QueueNamePrefix, name)
	if err := validSQSQueueName(sqsName); err != nil {
		return nil, fmt.Errorf("kombu: queue %q: %w", name, err)
	}
	q := &queue{name: name, sqsName: sqsName, fifo: isFIFOQueue(sqsName), client: r.clients.def, backoff: r.defaultBackoff}
	out, err := q.client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(sqsName)})
	if err == nil {
		q.url = aws.ToString(out.QueueUrl)
		return q, nil
	}
	if !isQueueDoesNotExist(err) {
		return nil, fmt.Errorf("kombu: looking up the URL of queue %q (SQS name %q): %w", name, sqsName, err)
	}
	if r.cfg.DisableQueueCreation {
		return nil, fmt.Errorf("kombu: queue %q (SQS name %q): %w", name, sqsName, ErrQueueDoesNotExist)
	}
	url, err := r.create(ctx, q)
	if err != nil {
		return nil, err
	}
	q.url = url
	return q, nil
}

func (r *queueResolver) predefined(name string) (*queue, error) {
	pq, ok := r.cfg.PredefinedQueues[name]
	if !ok {
		// Kombu keys its URL cache by the canonical name as well.
		pq, ok = r.cfg.PredefinedQueues[CanonicalQueueName(r.cfg.QueueNamePrefix, name)]
	}
	if !ok {
		return nil, fmt.Errorf("kombu: queue %q: %w (predefined: %s)", name, ErrUnknownQueue, strings.Join(sortedKeys(r.cfg.PredefinedQueues), ", "))
	}
	client, err := r.clients.forPredefined(name, pq)
	if err != nil {
		return nil, err
	}
	backoff := r.defaultBackoff
	if len(pq.BackoffPolicy) > 0 {
		backoff = newBackoffTable(pq.BackoffPolicy, pq.BackoffTasks)
	}
	sqsName := pq.URL[strings.LastIndexByte(pq.URL, '/')+1:]
	return &queue{name: name, sqsName: sqsName, url: pq.URL, fifo: isFIFOQueue(sqsName), client: client, backoff: backoff}, nil
}

func (r *queueResolver) create(ctx context.Context, q *queue) (string, error) {
	attrs := map[string]string{
		string(types.QueueAttributeNameVisibilityTimeout): strconv.Itoa(int(r.cfg.VisibilityTimeout / time.Second)),
	}
	if q.fifo {
		attrs[string(types.QueueAttributeNameFifoQueue)] = "true"
	}
	for k, v := range r.cfg.CreationAttributes {
		attrs[k] = v
	}
	in := &sqs.CreateQueueInput{QueueName: aws.String(q.sqsName), Attributes: attrs}
	if len(r.cfg.QueueTags) > 0 {
		in.Tags = r.cfg.QueueTags
	}
	out, err := q.client.CreateQueue(ctx, in)
	if err == nil {
		return aws.ToString(out.QueueUrl), nil
	}
	var exists *types.QueueNameExists
	if errors.As(err, &exists) {
		// Created meanwhile by someone else with other attributes: use it as it is.
		got, gerr := q.client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(q.sqsName)})
		if gerr == nil {
			return aws.ToString(got.QueueUrl), nil
		}
	}
	return "", fmt.Errorf("kombu: creating queue %q (SQS name %q): %w", q.name, q.sqsName, err)
}

func isQueueDoesNotExist(err error) bool {
	if err == nil {
		// errors.As's targets escape: a nil error, what every successful call passes here,
		// would otherwise cost two allocations.
		return false
	}
	var notExist *types.QueueDoesNotExist
	if errors.As(err, &notExist) {
		return true
	}
	var apiErr interface{ ErrorCode() string }
	if errors.As(err, &apiErr) {
		code := apiErr.ErrorCode()
		return code == "AWS.SimpleQueueService.NonExistentQueue" || code == "QueueDoesNotExist" || strings.HasSuffix(code, "#QueueDoesNotExist")
	}
	return false
}

// sortedKeys returns the keys of m in ascending order.
func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
