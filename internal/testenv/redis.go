package testenv

import (
	"bufio"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// EnvRedisURL names the Redis server of the result backend tests (`make redis-up`).
const EnvRedisURL = "KOMBU_TEST_REDIS_URL"

// DefaultRedisURL is used when EnvRedisURL is unset.
const DefaultRedisURL = "redis://127.0.0.1:6379/0"

// RedisURL returns the URL of the test Redis server and fails the test if it does not answer
// a PING.
func RedisURL(t testing.TB) string {
	t.Helper()
	NeedsServices(t)
	raw := os.Getenv(EnvRedisURL)
	if raw == "" {
		raw = DefaultRedisURL
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		t.Fatalf("testenv: %s=%q is not a redis:// URL", EnvRedisURL, raw)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "6379")
	}
	if err := pingRedis(addr); err != nil {
		t.Fatalf("testenv: Redis at %s (%s) is not reachable: %v; run `make redis-up` (or `make test`)", addr, EnvRedisURL, err)
	}
	return raw
}

// pingRedis sends PING in Redis's inline protocol and expects +PONG (or an authentication
// error, which also proves that a Redis server answers).
func pingRedis(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") && !strings.HasPrefix(line, "-NOAUTH") {
		return &net.OpError{Op: "ping", Net: "tcp", Err: os.ErrInvalid}
	}
	return nil
}
