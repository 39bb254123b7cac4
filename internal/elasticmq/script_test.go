// Package elasticmq_test checks elasticmq.sh, the script behind `make up` and `make down`.
package elasticmq_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// checkout is one clone of the repository with its own copy of the script.
type checkout struct {
	t    *testing.T
	root string
	port int
}

func (c checkout) env() []string {
	return append(os.Environ(),
		"ELASTICMQ_STANDARD_PORT="+strconv.Itoa(c.port),
		"ELASTICMQ_PERSISTENT_PORT="+strconv.Itoa(c.port+1))
}

func (c checkout) script() string {
	return filepath.Join(c.root, "internal", "elasticmq", "elasticmq.sh")
}

// run runs the script; it returns its output and whether it exited 0.
func (c checkout) run(args ...string) (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.script(), args...)
	cmd.Env = c.env()
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	c.t.Logf("%s %s: %v\n%s", c.root, strings.Join(args, " "), err, out)
	return string(out), err == nil
}

func (c checkout) pid() int {
	b, err := os.ReadFile(filepath.Join(c.root, ".cache", "run", "elasticmq-standard.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// newCheckout copies the script and its configuration into a temporary clone that uses the
// ElasticMQ jars this repository fetched.
func newCheckout(t *testing.T, lib string, port int) checkout {
	root := testenv.CopyCheckout(t, "internal/elasticmq")
	if err := os.MkdirAll(filepath.Join(root, ".cache", "elasticmq"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(lib, filepath.Join(root, ".cache", "elasticmq", "lib")); err != nil {
		t.Fatal(err)
	}
	return checkout{t: t, root: root, port: port}
}

func healthy(port int) bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
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
	t.Cleanup(func() {
		a.run("stop", "standard")
		if pid := a.pid(); pid > 0 && testenv.Alive(pid) {
			t.Errorf("pid %d still alive after stop", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})

	// The first clone starts its broker from a wrapper that holds an extra descriptor.
	res := testenv.RunHoldingFD(t, a.env(), a.script(), "start", "standard")
	t.Logf("start from a wrapper holding fd 3: %v\n%s", res.Err, res.Output)
	if res.Err != nil {
		t.Fatalf("start failed: %v", res.Err)
	}
	pid := a.pid()
	if pid == 0 || !healthy(port) {
		t.Fatalf("no healthy broker on port %d (pid %d)", port, pid)
	}
	if held := testenv.DescriptorsOn(pid, res.PipeInode); len(held) > 0 {
		t.Errorf("the broker (pid %d) inherited the caller's descriptor: %v", pid, held)
	}
	if res.PipeHeld {
		t.Error("the caller's pipes stayed open after start returned: the broker inherited them")
	}

	// The second clone neither adopts nor stops it.
	out, ok := b.run("start", "standard")
	if ok {
		t.Error("start on a port held by another clone's broker succeeded (adopted it)")
	}
	if !strings.Contains(out, "already in use") || !strings.Contains(out, strconv.Itoa(pid)) {
		t.Errorf("start must say the port is in use and by which process, got %q", out)
	}
	if _, ok := b.run("status", "standard"); ok {
		t.Error("status reports a broker this clone did not start as its own")
	}
	if _, ok := b.run("stop", "standard"); !ok {
		t.Error("stop with nothing of its own to stop must succeed")
	}
	if !testenv.Alive(pid) || !healthy(port) {
		t.Fatal("the second clone's stop killed the first clone's broker")
	}
	if _, ok := a.run("status", "standard"); !ok {
		t.Error("status of the clone that started the broker")
	}

	// A port held by anything else is refused as well.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	other := checkout{t: t, root: b.root, port: l.Addr().(*net.TCPAddr).Port}
	if out, ok := other.run("start", "standard"); ok || !strings.Contains(out, "already in use") {
		t.Errorf("start on a port held by another program must fail clearly, got ok=%v %q", ok, out)
	}

	// The clone that started the broker stops it, even when its pid file was deleted: the
	// broker's command line names this clone's configuration.
	if err := os.Remove(filepath.Join(a.root, ".cache", "run", "elasticmq-standard.pid")); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.run("stop", "standard"); !ok {
		t.Error("stop failed")
	}
	deadline := time.Now().Add(10 * time.Second)
	for testenv.Alive(pid) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if testenv.Alive(pid) {
		t.Errorf("pid %d still alive after stop", pid)
	}
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
	c := newCheckout(t, lib, testenv.FreePort(t))
	port := c.port + 1
	t.Cleanup(func() { c.run("stop", "persistent") })
	if _, ok := c.run("start", "persistent"); !ok {
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
	if _, ok := c.run("stop", "persistent"); !ok {
		t.Fatal("stop failed")
	}
	// As if "gone" had been deleted after stop listed the queues.
	list := filepath.Join(c.root, ".cache", "elasticmq", "data", "persistent.queues")
	f, err := os.OpenFile(list, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "gone")
	f.Close()

	const timeout = 45
	started := time.Now()
	cmd := exec.Command(c.script(), "start", "persistent")
	cmd.Env = append(c.env(), "ELASTICMQ_START_TIMEOUT="+strconv.Itoa(timeout))
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
