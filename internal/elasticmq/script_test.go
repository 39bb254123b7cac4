// Package elasticmq_test checks elasticmq.sh, the script behind `make up` and `make down`.
package elasticmq_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// script is elasticmq.sh; a checkout's port is its standard broker's, the persistent one's is
// the next.
var script = testenv.ServiceScript{
	Path: "internal/elasticmq/elasticmq.sh",
	Name: "broker",
	Env: func(port int) []string {
		return []string{
			"ELASTICMQ_STANDARD_PORT=" + strconv.Itoa(port),
			"ELASTICMQ_PERSISTENT_PORT=" + strconv.Itoa(port+1),
		}
	},
	PidFile: func(int) string { return filepath.Join(".cache", "run", "elasticmq-standard.pid") },
	Healthy: testenv.HTTPHealthy("/health"),
	Timeout: 120 * time.Second,
}

// persistentScript is elasticmq.sh run for its persistent broker alone, on the checkout's port.
var persistentScript = testenv.ServiceScript{
	Path:    script.Path,
	Name:    "persistent broker",
	Env:     func(port int) []string { return []string{"ELASTICMQ_PERSISTENT_PORT=" + strconv.Itoa(port)} },
	PidFile: func(int) string { return filepath.Join(".cache", "run", "elasticmq-persistent.pid") },
	Healthy: script.Healthy,
	Timeout: script.Timeout,
}

// newCheckout copies the script and its configuration into a temporary clone that uses the
// ElasticMQ jars this repository fetched.
func newCheckout(t *testing.T, lib string, port int) *testenv.ScriptCheckout {
	return newCheckoutOf(t, script, lib, port)
}

func newCheckoutOf(t *testing.T, s testenv.ServiceScript, lib string, port int) *testenv.ScriptCheckout {
	c := testenv.NewScriptCheckout(t, s, port)
	if err := os.MkdirAll(filepath.Join(c.Root, ".cache", "elasticmq"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(lib, filepath.Join(c.Root, ".cache", "elasticmq", "lib")); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestScriptManagesOnlyItsOwnBroker: two clones on one machine. The second one's `make up` on
// the port of the first one's broker fails instead of adopting it, its `make down` leaves it
// running; a port held by any other process is refused too; and the broker does not keep the
// caller's descriptors open (a CI wrapper holding a lock or reading a pipe is not held up).
func TestScriptManagesOnlyItsOwnBroker(t *testing.T) {
	testenv.NeedsServices(t)
	lib := filepath.Join(testenv.RepoRoot(t), ".cache", "elasticmq", "lib")
	if _, err := os.Stat(filepath.Join(lib, ".pom.xml")); err != nil {
		t.Fatalf("ElasticMQ is not fetched (%v); run `make elasticmq-fetch` (or `make up`)", err)
	}
	if _, err := exec.LookPath("java"); err != nil && os.Getenv("JAVA") == "" && os.Getenv("JAVA_HOME") == "" {
		t.Fatal("java not found; ElasticMQ needs Java 17+")
	}
	port := testenv.FreePort(t)
	a := newCheckout(t, lib, port)
	b := newCheckout(t, lib, port)

	// The first clone starts its broker from a wrapper that holds an extra descriptor.
	pid := a.StartHoldingFD("standard")

	// The second clone neither adopts nor stops it.
	b.CheckLeavesOthers(pid, "standard")
	if _, ok := a.Run("status", "standard"); !ok {
		t.Error("status of the clone that started the broker")
	}

	// A port held by anything else is refused as well.
	b.CheckRefusesBusyPort("standard")

	// The clone that started the broker stops it, even when its pid file was deleted: the
	// broker's command line names this clone's configuration.
	a.CheckStopsWithoutPidFile(pid, "standard")
}

// TestScriptRestartAfterQueueDeletedAtStop: the persistent broker's stop lists its queues so
// that the next start waits for their restore; a queue deleted between that list and the stop
// is never restored. The start must still succeed once the broker has restored all it lists,
// not wait out its whole timeout and fail.
func TestScriptRestartAfterQueueDeletedAtStop(t *testing.T) {
	testenv.NeedsServices(t)
	lib := filepath.Join(testenv.RepoRoot(t), ".cache", "elasticmq", "lib")
	if _, err := os.Stat(filepath.Join(lib, ".pom.xml")); err != nil {
		t.Fatalf("ElasticMQ is not fetched (%v); run `make elasticmq-fetch` (or `make up`)", err)
	}
	// A port of its own: the one after a free port may be taken.
	c := newCheckoutOf(t, persistentScript, lib, testenv.FreePort(t))
	port := c.Port
	t.Cleanup(func() { c.Run("stop", "persistent") })
	if _, ok := c.Run("start", "persistent"); !ok {
		t.Fatal("start failed")
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for _, q := range []string{
		"/?Action=CreateQueue&QueueName=kept",
		"/queue/kept?Action=SendMessage&MessageBody=hello",
	} {
		resp, err := http.Get(base + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s", q, resp.Status)
		}
	}
	if _, ok := c.Run("stop", "persistent"); !ok {
		t.Fatal("stop failed")
	}
	// As if "gone" had been deleted after stop listed the queues.
	list := filepath.Join(c.Root, ".cache", "elasticmq", "data", "persistent.queues")
	f, err := os.OpenFile(list, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "gone")
	f.Close()

	const timeout = 45
	started := time.Now()
	cmd := exec.Command(c.Script(), "start", "persistent")
	cmd.Env = append(c.Env(), "ELASTICMQ_START_TIMEOUT="+strconv.Itoa(timeout))
	out, err := cmd.CombinedOutput()
	took := time.Since(started)
	t.Logf("start after the deletion: %v in %v\n%s", err, took.Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("start waited for a queue that no longer exists: %v", err)
	}
	if took > (timeout-10)*time.Second {
		t.Errorf("start took %v, close to its %d s timeout", took, timeout)
	}
	resp, err := http.Get(base + "/queue/kept?Action=ReceiveMessage")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body strings.Builder
	_, _ = io.Copy(&body, resp.Body)
	if !strings.Contains(body.String(), "hello") {
		t.Errorf("the kept queue's message was not restored: %s", body.String())
	}
}
