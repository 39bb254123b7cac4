package redisbackend_test

import (
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery/redisbackend"
)

// TestConfigValidate: New reports an invalid config as a *kombu.ConfigError naming the
// field, and never repeats a URL that may hold a password.
func TestConfigValidate(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	for name, c := range map[string]struct {
		cfg    redisbackend.Config
		reason string
	}{
		"neither":  {redisbackend.Config{}, "is required when Client is nil"},
		"both":     {redisbackend.Config{Client: client, URL: "redis://127.0.0.1:6379/0"}, "must be empty when Client is set"},
		"bad URL":  {redisbackend.Config{URL: "http://user:s3cret@host/0"}, "is not a valid redis:// or rediss:// URL"},
		"bad port": {redisbackend.Config{URL: "redis://:s3cret@host:port/0"}, "is not a valid redis:// or rediss:// URL"},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := redisbackend.New(c.cfg)
			require.Nil(t, b)
			var ce *kombu.ConfigError
			require.True(t, errors.As(err, &ce), "got %v", err)
			assert.ErrorIs(t, err, kombu.ErrInvalidConfig)
			assert.Equal(t, "redisbackend.Config.URL", ce.Field)
			assert.Equal(t, c.reason, ce.Reason)
			assert.NotContains(t, err.Error(), "s3cret")
		})
	}
	b, err := redisbackend.New(redisbackend.Config{Client: client})
	require.NoError(t, err)
	require.NoError(t, b.Close(), "a backend does not close a client it was given")
}

// TestKeyPrefix: KeyPrefix gets "_" appended unless it ends with one of ":_-.", as Celery's
// global_keyprefix, on the result keys and on the group and chord keys alike.
func TestKeyPrefix(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	for prefix, want := range map[string]string{
		"":       "",
		"myapp":  "myapp_",
		"myapp_": "myapp_",
		"myapp:": "myapp:",
		"myapp-": "myapp-",
		"myapp.": "myapp.",
		"my.app": "my.app_",
		"app1":   "app1_",
		"_":      "_",
	} {
		t.Run(prefix, func(t *testing.T) {
			b, err := redisbackend.New(redisbackend.Config{Client: client, KeyPrefix: prefix})
			require.NoError(t, err)
			assert.Equal(t, want+"celery-task-meta-ID", b.Key("ID"))
			assert.Equal(t, want+"celery-taskset-meta-G", b.GroupKey("G", ""))
			assert.Equal(t, want+"celery-taskset-meta-G.j", b.GroupKey("G", ".j"))
		})
	}
}
