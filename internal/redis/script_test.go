// Package redis_test checks redis.sh, the script behind `make redis-up` and `make redis-down`.
package redis_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

type checkout struct {
	t    *testing.T
	root string
	port int
}

func (c checkout) env() []string { return append(os.Environ(), "REDIS_PORT="+strconv.Itoa(c.port)) }

func (c checkout) script() string { return filepath.Join(c.root, "internal", "redis", "redis.sh") }

func (c checkout) run(args ...string) (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.script(), args...)
	cmd.Env = c.env()
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	c.t.Logf("%s %s: %v\n%s", c.root, strings.Join(args, " "), err, out)
	return string(out), err == nil
}

func (c checkout) pid() int {
	b, err := os.ReadFile(filepath.Join(c.root, ".cache", "redis", "redis-"+strconv.Itoa(c.port)+".pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func pong(port int) bool {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	buf := make([]byte, 16)
	n, _ := conn.Read(buf)
	return strings.HasPrefix(string(buf[:n]), "+PONG")
}

// TestScriptManagesOnlyItsOwnRedis: a second clone's `make redis-up` on the port of the
// first one's Redis fails instead of adopting it, its `make redis-down` leaves it running, a
// port held by any other process is refused, and the server does not keep the caller's
// descriptors open.
func TestScriptManagesOnlyItsOwnRedis(t *testing.T) {
	testenv.NeedsServices(t)
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server not found; run `make redis-up` (installs the Debian package)")
	}
	port := testenv.FreePort(t)
	a := checkout{t: t, root: testenv.CopyCheckout(t, "internal/redis"), port: port}
	b := checkout{t: t, root: testenv.CopyCheckout(t, "internal/redis"), port: port}
	t.Cleanup(func() {
		a.run("stop")
		if pid := a.pid(); pid > 0 && testenv.Alive(pid) {
			t.Errorf("pid %d still alive after stop", pid)
		}
	})

	res := testenv.RunHoldingFD(t, a.env(), a.script(), "start")
	t.Logf("start from a wrapper holding fd 3: %v\n%s", res.Err, res.Output)
	if res.Err != nil {
		t.Fatalf("start failed: %v", res.Err)
	}
	pid := a.pid()
	if pid == 0 || !pong(port) {
		t.Fatalf("no Redis answering on port %d (pid %d)", port, pid)
	}
	if held := testenv.DescriptorsOn(pid, res.PipeInode); len(held) > 0 {
		t.Errorf("redis-server (pid %d) inherited the caller's descriptor: %v", pid, held)
	}
	if res.PipeHeld {
		t.Error("the caller's pipes stayed open after start returned: the server inherited them")
	}

	out, ok := b.run("start")
	if ok {
		t.Error("start on a port held by another clone's Redis succeeded (adopted it)")
	}
	if !strings.Contains(out, "already in use") {
		t.Errorf("start must say the port is in use, got %q", out)
	}
	if _, ok := b.run("status"); ok {
		t.Error("status reports a server this clone did not start as its own")
	}
	if _, ok := b.run("stop"); !ok {
		t.Error("stop with nothing of its own to stop must succeed")
	}
	if !testenv.Alive(pid) || !pong(port) {
		t.Fatal("the second clone's stop killed the first clone's Redis")
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	other := checkout{t: t, root: b.root, port: l.Addr().(*net.TCPAddr).Port}
	if out, ok := other.run("start"); ok || !strings.Contains(out, "already in use") {
		t.Errorf("start on a port held by another program must fail clearly, got ok=%v %q", ok, out)
	}

	// Stopped by the clone that started it, even without its pid file: the server's working
	// directory is this clone's.
	if err := os.Remove(filepath.Join(a.root, ".cache", "redis", "redis-"+strconv.Itoa(port)+".pid")); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.run("stop"); !ok {
		t.Error("stop failed")
	}
	if testenv.Alive(pid) {
		t.Errorf("pid %d still alive after stop", pid)
	}
}

// TestScriptUnderFlock: a CI wrapper that runs `make redis-up` under flock(1) gets its lock
// back when the command returns, although the server it started keeps running.
func TestScriptUnderFlock(t *testing.T) {
	testenv.NeedsServices(t)
	for _, tool := range []string{"redis-server", "flock"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found", tool)
		}
	}
	c := checkout{t: t, root: testenv.CopyCheckout(t, "internal/redis"), port: testenv.FreePort(t)}
	t.Cleanup(func() { c.run("stop") })
	lock := filepath.Join(t.TempDir(), "ci.lock")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "flock", lock, c.script(), "start")
	cmd.Env = c.env()
	out, err := cmd.CombinedOutput()
	t.Logf("flock %s start: %v\n%s", lock, err, out)
	if err != nil {
		t.Fatal(err)
	}
	if !pong(c.port) {
		t.Fatal("no Redis answering after start")
	}
	if out, err := exec.Command("flock", "-n", lock, "true").CombinedOutput(); err != nil {
		t.Errorf("the lock is still held after start returned (the server inherited it): %v %s", err, out)
	}
}
