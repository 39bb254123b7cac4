package kombu_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/faultproxy"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// silentEndpoint accepts TCP connections and never answers on them, as a stuck proxy or load
// balancer does. It returns the endpoint URL.
func silentEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// within runs f and fails the test if it takes longer than limit (without waiting for it
// beyond limit plus a grace period). It returns how long f took.
func within(t *testing.T, what string, limit time.Duration, f func()) time.Duration {
	t.Helper()
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(limit + 30*time.Second):
		t.Fatalf("%s still blocked after %s (limit %s)", what, time.Since(start).Round(time.Millisecond), limit)
	}
	took := time.Since(start)
	t.Logf("%s returned after %s", what, took.Round(time.Millisecond))
	require.LessOrEqual(t, took, limit, "%s took too long", what)
	return took
}

// TestHangSilentEndpoint: against an endpoint that accepts connections and never answers,
// Subscribe and Publish return a connection error within RequestTimeout (the default, and a
// configured one), and both Close calls return at once.
func TestHangSilentEndpoint(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		timeout time.Duration // 0: the default
		limit   time.Duration
	}{
		{"default", 0, 10*time.Second + 5*time.Second},
		{"configured", 2 * time.Second, 2*time.Second + 4*time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.timeout == 0 && testing.Short() {
				t.Skip("waits out the default RequestTimeout (10 s); not under -short")
			}
			t.Parallel()
			cfg := kombu.Config{
				Region: "us-east-1", EndpointURL: silentEndpoint(t),
				AccessKeyID: "test", SecretAccessKey: "test",
				RequestTimeout: tc.timeout,
			}
			sub, err := kombu.NewSubscriber(kombu.SubscriberConfig{Config: cfg, CloseTimeout: 2 * time.Second}, nil)
			require.NoError(t, err)
			pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg, CloseTimeout: 2 * time.Second}, nil)
			require.NoError(t, err)

			var subErr, pubErr error
			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer wg.Done()
				within(t, "Subscribe", tc.limit, func() { _, subErr = sub.Subscribe(context.Background(), "silent") })
			}()
			go func() {
				defer wg.Done()
				within(t, "Publish", tc.limit, func() { pubErr = pub.Publish("silent", message.NewMessage("1", []byte("x"))) })
			}()
			wg.Wait()
			require.Error(t, subErr)
			require.ErrorIs(t, subErr, kombu.ErrConnection, "Subscribe: %v", subErr)
			require.Error(t, pubErr)
			require.ErrorIs(t, pubErr, kombu.ErrConnection, "Publish: %v", pubErr)

			within(t, "Subscriber.Close", 2*time.Second+3*time.Second, func() { require.NoError(t, sub.Close()) })
			within(t, "Publisher.Close", 2*time.Second+3*time.Second, func() { require.NoError(t, pub.Close()) })
		})
	}
}

// TestHangEndpointFallsSilent: the endpoint stops answering while a handler holds a message and
// a Publish without any request deadline is under way. Subscriber.Close returns within
// CloseTimeout plus its margin although the handler's Ack cannot be sent (it is counted as
// failed), and Publisher.Close returns within its CloseTimeout, cancelling the stuck Publish.
func TestHangEndpointFallsSilent(t *testing.T) {
	t.Parallel()
	ep := testenv.SQSEndpoint(t)
	client := testenv.SQSClient(t, ep)
	topic := testenv.UniqueName("hang-silent")
	semQueue(t, client, topic, 30*time.Second)
	proxy, err := faultproxy.Start(faultproxy.Config{Target: ep})
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })
	proxy.SetEnabled(false)

	cfg := semConfig(proxy.URL, 30*time.Second)
	cfg.DisableRequestTimeout = true // nothing but Close bounds the calls
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg, CloseTimeout: 2 * time.Second}, nil)
	require.NoError(t, err)
	sc := semSubConfig(cfg)
	sc.CloseTimeout = 2 * time.Second
	sc.AckBatchWindow = time.Millisecond
	sub, err := kombu.NewSubscriber(sc, nil)
	require.NoError(t, err)

	msgs, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	semPublishN(t, pub, topic, 3)
	var held *message.Message
	select {
	case held = <-msgs:
	case <-time.After(15 * time.Second):
		t.Fatal("no message received")
	}

	proxy.SetSilent(true)
	publishErr := make(chan error, 1)
	go func() { publishErr <- pub.Publish(topic, message.NewMessage("stuck", []byte("x"))) }()
	go func() {
		time.Sleep(500 * time.Millisecond)
		held.Ack()
	}()
	time.Sleep(200 * time.Millisecond)

	within(t, "Subscriber.Close", 2*time.Second+2*time.Second+3*time.Second, func() { require.NoError(t, sub.Close()) })
	require.GreaterOrEqual(t, sub.FailedAcks(), int64(1), "the Ack that could not be sent is counted")
	within(t, "Publisher.Close", 2*time.Second+3*time.Second, func() { require.NoError(t, pub.Close()) })
	select {
	case err := <-publishErr:
		require.Error(t, err, "the stuck Publish cannot have succeeded")
		require.False(t, errors.Is(err, kombu.ErrChannel), "cancelled, not rejected: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the stuck Publish did not return after Close")
	}
}

// TestHangCloseEndsStuckSubscribe: a Subscribe stuck looking its queue up at an endpoint that
// never answers (no request deadline) ends when Close begins, with ErrSubscriberClosed, and
// Close returns at once instead of waiting out CloseTimeout and its margin for it.
func TestHangCloseEndsStuckSubscribe(t *testing.T) {
	t.Parallel()
	cfg := kombu.Config{
		Region: "us-east-1", EndpointURL: silentEndpoint(t),
		AccessKeyID: "test", SecretAccessKey: "test",
		DisableRequestTimeout: true,
	}
	sub, err := kombu.NewSubscriber(kombu.SubscriberConfig{Config: cfg, CloseTimeout: 5 * time.Second}, nil)
	require.NoError(t, err)
	subErr := make(chan error, 1)
	go func() {
		_, err := sub.Subscribe(context.Background(), "silent")
		subErr <- err
	}()
	time.Sleep(300 * time.Millisecond) // the lookup is under way
	select {
	case err := <-subErr:
		t.Fatalf("Subscribe returned before Close: %v", err)
	default:
	}
	// Well under CloseTimeout (5 s) plus its margin, which Close took before.
	within(t, "Subscriber.Close", 2*time.Second, func() { require.NoError(t, sub.Close()) })
	select {
	case err := <-subErr:
		require.ErrorIs(t, err, kombu.ErrSubscriberClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Subscribe still blocked after Close")
	}
}
