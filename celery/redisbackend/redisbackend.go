package redisbackend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"

	"github.com/redis/go-redis/v9"
)

// Config configures a Backend.
type Config struct {
	// Client is the Redis client to use. When nil, URL is parsed as Celery's result_backend
	// setting is: redis://[user:password@]host:port/db, rediss:// for TLS with Celery's
	// ssl_cert_reqs, ssl_ca_certs, ssl_certfile and ssl_keyfile options,
	// redis+socket:///path/to/socket?virtual_host=db, and redis-py's socket_timeout,
	// socket_connect_timeout and max_connections options. Set one of the two.
	Client redis.UniversalClient
	URL    string
	// Expires is how long results are kept (Celery's result_expires); 0 means
	// celery.DefaultResultExpires (one day), a negative value keeps them forever.
	Expires time.Duration
	// KeyPrefix is prepended to the keys of results, groups and chords (Celery's
	// result_backend_transport_options global_keyprefix); empty by default. As in Celery, a
	// prefix that does not end with one of ":_-." gets "_" appended: "myapp" gives keys
	// "myapp_celery-task-meta-<id>", "myapp:" gives "myapp:celery-task-meta-<id>".
	KeyPrefix string
	// DisableChordOrdering records chord header results in a list, in the order they finish,
	// instead of a sorted set by their place in the header: set it when the Celery app sets
	// result_backend_transport_options={"result_chord_ordered": False}.
	DisableChordOrdering bool
}

// Backend is Celery's Redis result backend: a task's result is the JSON document at key
// celery-task-meta-<id>, kept for Expires, and published on a channel of the same name,
// which AsyncResult.get listens on.
type Backend struct {
	client  redis.UniversalClient
	owned   bool
	expires time.Duration
	prefix  string
	now     func() time.Time
	// unordered is DisableChordOrdering.
	unordered bool
}

// setDefaults fills the zero fields with their defaults.
func (c *Config) setDefaults() {
	if c.Expires == 0 {
		c.Expires = celery.DefaultResultExpires
	}
}

// Validate reports every invalid field as a *kombu.ConfigError naming it.
func (c Config) Validate() error {
	bad := func(field, reason string) error {
		return &kombu.ConfigError{Field: "redisbackend.Config." + field, Reason: reason}
	}
	switch {
	case c.Client == nil && c.URL == "":
		return bad("URL", "is required when Client is nil")
	case c.Client != nil && c.URL != "":
		return bad("URL", "must be empty when Client is set")
	case c.Client == nil:
		if _, err := parseURL(c.URL); err != nil {
			reason := "is not a valid redis:// or rediss:// URL"
			if err.Error() != "" {
				reason += ": " + err.Error()
			}
			return bad("URL", reason)
		}
	}
	return nil
}

// New returns a Celery Redis result backend. An invalid config gives a *kombu.ConfigError
// (errors.Is kombu.ErrInvalidConfig).
func New(cfg Config) (*Backend, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Backend{client: cfg.Client, expires: cfg.Expires, prefix: keyPrefix(cfg.KeyPrefix), now: time.Now,
		unordered: cfg.DisableChordOrdering}
	if b.client == nil {
		opts, err := parseURL(cfg.URL)
		if err != nil {
			return nil, err // Validate checked the URL
		}
		b.client, b.owned = redis.NewClient(opts), true
	}
	return b, nil
}

// keyPrefix returns the prefix Celery's backend puts in front of its keys for a
// global_keyprefix: the prefix with "_" appended unless it ends with one of ":_-."
// (BaseKeyValueStoreBackend._add_global_keyprefix).
func keyPrefix(global string) string {
	if global == "" || strings.ContainsRune(":_-.", rune(global[len(global)-1])) {
		return global
	}
	return global + "_"
}

// Key returns the Redis key (and pub/sub channel) of a task's result.
func (b *Backend) Key(taskID string) string { return b.prefix + "celery-task-meta-" + taskID }

// Store writes r with SETEX (SET when results never expire) and publishes it, in one
// transaction, unless the stored result is already SUCCESS.
func (b *Backend) Store(ctx context.Context, r celery.TaskResult) error {
	if r.TaskID == "" {
		return errors.New("redisbackend: empty task id")
	}
	key := b.Key(r.TaskID)
	if cur, err := b.Get(ctx, r.TaskID); err == nil && cur.Status == celery.StateSuccess {
		return nil
	} else if err != nil && !errors.Is(err, celery.ErrResultNotFound) {
		return err
	}
	if r.DateDone.IsZero() {
		r.DateDone = b.now() // used for final states only
	}
	// Not json.Marshal, which would reject the NaN and Infinity words of Python's JSON that
	// the arguments of an extended result may hold.
	doc, err := r.MarshalJSON()
	if err != nil {
		return fmt.Errorf("redisbackend: result of task %s: %w", r.TaskID, err)
	}
	_, err = b.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if b.expires > 0 {
			p.SetEx(ctx, key, doc, time.Duration(b.expirySeconds())*time.Second)
		} else {
			p.Set(ctx, key, doc, 0)
		}
		p.Publish(ctx, key, doc)
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: redisbackend: storing task %s: %w", kombu.ErrConnection, r.TaskID, err)
	}
	return nil
}

// expirySeconds is Expires in the whole seconds Redis keeps expiries in, the same for results
// and chord keys: truncated, as Celery's int(result_expires), but at least 1 for a positive
// Expires, which must not keep the keys forever; 0 when results never expire.
func (b *Backend) expirySeconds() int64 {
	if b.expires <= 0 {
		return 0
	}
	return max(1, int64(b.expires/time.Second))
}

// Get reads a task's stored result.
func (b *Backend) Get(ctx context.Context, taskID string) (*celery.TaskResult, error) {
	doc, err := b.client.Get(ctx, b.Key(taskID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%w: %s", celery.ErrResultNotFound, taskID)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: redisbackend: reading task %s: %w", kombu.ErrConnection, taskID, err)
	}
	// Not json.Unmarshal, which would reject a document holding Python's NaN or Infinity
	// (Celery writes them so, in a result or in the arguments of an extended result).
	var r celery.TaskResult
	if err := r.UnmarshalJSON(doc); err != nil {
		return nil, fmt.Errorf("redisbackend: task %s: %w", taskID, err)
	}
	return &r, nil
}

// Close closes the client when the backend created it from URL.
func (b *Backend) Close() error {
	if b.owned {
		return b.client.Close()
	}
	return nil
}
