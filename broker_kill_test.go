package kombu_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/require"

	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// relBroker is an ElasticMQ with H2 storage of its own (port, data directory), run by the test
// so that it can be killed without disturbing the shared brokers.
type relBroker struct {
	t    *testing.T
	port int
	data string
	cmd  *exec.Cmd
}

func (b *relBroker) url() string { return fmt.Sprintf("http://127.0.0.1:%d", b.port) }

// start runs the broker and waits until it answers.
func (b *relBroker) start() {
	t := b.t
	t.Helper()
	root := testenv.RepoRoot(t)
	dir := filepath.Join(root, "internal", "elasticmq")
	logFile, err := os.OpenFile(filepath.Join(b.data, "elasticmq.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	defer logFile.Close()
	b.cmd = exec.Command("java", "-Xmx256m", "-XX:TieredStopAtLevel=1",
		"-Dconfig.file="+filepath.Join(dir, "elasticmq-persistent.conf"),
		"-Dlogback.configurationFile="+filepath.Join(dir, "logback.xml"),
		fmt.Sprintf("-Drest-sqs.bind-port=%d", b.port), fmt.Sprintf("-Dnode-address.port=%d", b.port),
		"-Dmessages-storage.uri=jdbc:h2:"+filepath.Join(b.data, "db")+";WRITE_DELAY=0;DB_CLOSE_ON_EXIT=FALSE",
		"-cp", filepath.Join(root, ".cache", "elasticmq", "lib", "*"), "org.elasticmq.server.Main")
	b.cmd.Stdout, b.cmd.Stderr = logFile, logFile
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, b.cmd.Start(), "starting ElasticMQ (run `make up` once to fetch it)")
	started := time.Now()
	hc := &http.Client{Timeout: time.Second}
	for {
		resp, err := hc.Get(b.url() + "/?Action=ListQueues")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Logf("own ElasticMQ ready on port %d after %s", b.port, time.Since(started).Round(time.Millisecond))
				return
			}
		}
		if time.Since(started) > 60*time.Second {
			log, _ := os.ReadFile(filepath.Join(b.data, "elasticmq.log"))
			t.Fatalf("own ElasticMQ not ready after 60 s:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to end.
func (b *relBroker) kill() {
	_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
	_ = b.cmd.Wait()
}

func relStartBroker(t *testing.T) *relBroker {
	testenv.NeedsServices(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	b := &relBroker{t: t, port: port, data: t.TempDir()}
	b.start()
	t.Cleanup(b.kill)
	return b
}

// TestBrokerKilledMidStream kills the broker (SIGKILL) while 5000 messages are being published
// and consumed, and starts it again on the same data: no published message is lost.
func TestBrokerKilledMidStream(t *testing.T) {
	t.Parallel()
	broker := relStartBroker(t)
	const n = 5000
	topic := testenv.UniqueName("rel-broker")
	cfg := semConfig(broker.url(), 5*time.Second)
	cfg.SQSOptions = []func(*sqs.Options){relFastRetries(3)}
	pub := semPublisher(t, cfg)
	scfg := semSubConfig(cfg)
	scfg.ReconnectRetrySleep = 100 * time.Millisecond
	scfg.PrefetchCount = 20
	sub := semSubscriber(t, scfg)
	require.NoError(t, sub.SubscribeInitialize(topic))

	var mu sync.Mutex
	handled, published := map[string]int{}, map[string]bool{}
	publishErrs := 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)
	var handledCount atomic.Int64
	go func() {
		for m := range msgs {
			mu.Lock()
			handled[m.UUID]++
			mu.Unlock()
			handledCount.Add(1)
			m.Ack()
		}
	}()
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for i := 0; i < n/50; i++ {
			// Keep publishing while consuming, so that the kill hits both.
			for {
				mu.Lock()
				ahead := len(published) - int(handledCount.Load())
				mu.Unlock()
				if ahead < 300 || ctx.Err() != nil {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			var batch []*message.Message
			for j := 0; j < 50; j++ {
				batch = append(batch, message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprint(i, j))))
			}
			for attempt := 0; ; attempt++ {
				err := pub.Publish(topic, batch...)
				if err == nil {
					break
				}
				mu.Lock()
				publishErrs++
				mu.Unlock()
				if attempt > 200 {
					t.Errorf("publish keeps failing: %v", err)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
			mu.Lock()
			for _, m := range batch {
				published[m.UUID] = true
			}
			mu.Unlock()
		}
	}()

	require.Eventually(t, func() bool { return handledCount.Load() >= n/4 }, 60*time.Second, 10*time.Millisecond)
	broker.kill()
	killedAt := handledCount.Load()
	down := time.Now()
	broker.start()
	t.Logf("broker killed after %d messages handled; back after %s", killedAt, time.Since(down).Round(time.Millisecond))

	select {
	case <-pubDone:
	case <-time.After(90 * time.Second):
		t.Fatal("publishing did not finish")
	}
	lost := n
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		lost = 0
		for id := range published {
			if handled[id] == 0 {
				lost++
			}
		}
		mu.Unlock()
		if lost == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	dups := 0
	for _, c := range handled {
		dups += c - 1
	}
	t.Logf("published %d (%d failed Publish calls repeated), handled %d distinct, duplicates %d, lost %d; subscriber %d failed acks",
		len(published), publishErrs, len(handled), dups, lost, sub.FailedAcks())
	mu.Unlock()
	require.Len(t, published, n)
	require.Zero(t, lost)
}
