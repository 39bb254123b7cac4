package kombu_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// motoServer starts the venv's moto_server on a free port and returns its endpoint. It is
// killed when the test ends.
func motoServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(filepath.Dir(testenv.Python(t)), "moto_server")
	port := freeLocalPort(t)
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	logs := &lockedLogBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start(), "starting %s (run `make venv`)", bin)
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	endpoint := "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(endpoint + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return endpoint
		}
		select {
		case <-exited:
			t.Fatalf("moto_server exited:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server did not answer on %s: %v\n%s", endpoint, err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeLocalPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var stsAccessKey = regexp.MustCompile(`<AccessKeyId>([^<]+)</AccessKeyId>`)

// TestSTSAssumeRole uses moto as STS: every SQS request must be signed with credentials from
// AssumeRole, and with a refresh window that makes them stale after two seconds, the role is
// assumed again while traffic goes on without a failed request.
func TestSTSAssumeRole(t *testing.T) {
	endpoint := testenv.SQSEndpoint(t)
	stsProxy := newRecordingProxy(t, motoServer(t))
	sqsProxy := newRecordingProxy(t, endpoint)

	const (
		roleArn                   = "arn:aws:iam::123456789012:role/test"
		sourceKey, sourceSecret   = "AKIDSTSSOURCE", "sts-source-secret"
		topic, predefinedTopic    = "sts.tasks", "sts.predefined"
		queueKey, queueSecretText = "AKIDSTSQUEUE", "sts-queue-secret"
	)
	raw := testenv.SQSClient(t, endpoint)
	predefinedName := testenv.UniqueName("sts-predefined")
	predefinedURL := createRawQueue(t, raw, predefinedName)
	// The queue found by name exists already, so that its lookup does not fail.
	prefix := testenv.UniqueName("sts") + "-"
	createRawQueue(t, raw, kombu.CanonicalQueueName(prefix, topic))

	base := kombu.Config{
		Region:             "us-east-1",
		EndpointURL:        sqsProxy.URL,
		AccessKeyID:        sourceKey,
		SecretAccessKey:    sourceSecret,
		StsRoleArn:         roleArn,
		StsTokenTimeout:    900 * time.Second,
		StsTokenBufferTime: 898 * time.Second, // stale two seconds after they are issued
		StsEndpointURL:     stsProxy.URL,
		QueueNamePrefix:    prefix,
	}
	// A Subscriber on a queue found by name, and a Publisher and Subscriber on a predefined
	// queue with keys of its own: both assume the role.
	predefined := base
	predefined.PredefinedQueues = map[string]kombu.PredefinedQueue{
		predefinedTopic: {URL: predefinedURL, AccessKeyID: queueKey, SecretAccessKey: queueSecretText},
	}
	pubDyn, err := kombu.NewPublisher(kombu.PublisherConfig{Config: base}, nil)
	require.NoError(t, err)
	defer pubDyn.Close()
	subDyn, err := kombu.NewSubscriber(quickSubscriberConfig(base), nil)
	require.NoError(t, err)
	defer subDyn.Close()
	pubPre, err := kombu.NewPublisher(kombu.PublisherConfig{Config: predefined}, nil)
	require.NoError(t, err)
	defer pubPre.Close()
	subPre, err := kombu.NewSubscriber(quickSubscriberConfig(predefined), nil)
	require.NoError(t, err)
	defer subPre.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	chDyn, err := subDyn.Subscribe(ctx, topic)
	require.NoError(t, err)
	chPre, err := subPre.Subscribe(ctx, predefinedTopic)
	require.NoError(t, err)

	// Traffic for about eight seconds: the credentials go stale four times over.
	start := time.Now()
	for round := 0; time.Since(start) < 8*time.Second; round++ {
		require.NoError(t, pubDyn.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprint("dyn-", round)))))
		require.NoError(t, pubPre.Publish(predefinedTopic, message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprint("pre-", round)))))
		require.Equal(t, []string{fmt.Sprint("dyn-", round)}, receiveAcked(t, chDyn, 1, 20*time.Second))
		require.Equal(t, []string{fmt.Sprint("pre-", round)}, receiveAcked(t, chPre, 1, 20*time.Second))
		time.Sleep(700 * time.Millisecond)
	}
	cancel()
	require.NoError(t, subDyn.Close())
	require.NoError(t, subPre.Close())

	issued := map[string]bool{}
	assumeRoles := map[string]int{} // source key -> AssumeRole calls
	for _, r := range stsProxy.requests() {
		require.Equal(t, "AssumeRole", r.Op)
		require.Equal(t, http.StatusOK, r.Status, "AssumeRole failed: %s", r.Response)
		require.Equal(t, roleArn, r.Form.Get("RoleArn"))
		require.Equal(t, "900", r.Form.Get("DurationSeconds"))
		require.Equal(t, "Celery", r.Form.Get("RoleSessionName"))
		m := stsAccessKey.FindStringSubmatch(r.Response)
		require.NotNil(t, m, "no AccessKeyId in the AssumeRole response")
		require.Regexp(t, `^[AF]SIA`, m[1], "moto issues temporary keys starting with ASIA (or FSIA)")
		issued[m[1]] = true
		assumeRoles[r.AccessKey]++
	}
	t.Logf("AssumeRole calls by source key: %v; %d keys issued", assumeRoles, len(issued))
	require.GreaterOrEqual(t, assumeRoles[sourceKey], 2, "the role must be assumed again once the credentials are stale")
	require.GreaterOrEqual(t, assumeRoles[queueKey], 2, "the predefined queue's client must assume the role with its own keys, again once stale")
	require.Len(t, assumeRoles, 2, "AssumeRole signed with an unexpected key: %v", assumeRoles)

	used := map[string]int{}
	for _, r := range sqsProxy.requests() {
		require.Equal(t, http.StatusOK, r.Status, "%s failed", r.Op)
		require.True(t, issued[r.AccessKey], "%s signed with %q, not a key STS issued", r.Op, r.AccessKey)
		used[r.AccessKey]++
	}
	require.GreaterOrEqual(t, len(used), 3, "SQS requests must move on to refreshed credentials: %v", used)
}

func TestSTSTokenTimeoutValidation(t *testing.T) {
	cfg := kombu.Config{AccessKeyID: "AKIDX", SecretAccessKey: "x", StsRoleArn: "arn:aws:iam::123456789012:role/test", StsTokenTimeout: 899 * time.Second}
	_, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, nil)
	require.ErrorIs(t, err, kombu.ErrInvalidConfig)
	require.Contains(t, err.Error(), "StsTokenTimeout")
	require.Contains(t, err.Error(), "900")

	_, err = kombu.ParseTransportOptions(map[string]any{"sts_token_timeout": 899})
	require.ErrorIs(t, err, kombu.ErrInvalidConfig)
	require.Contains(t, err.Error(), "sts_token_timeout")
	require.Contains(t, err.Error(), "900")
}
