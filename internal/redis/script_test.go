// Package redis_test checks redis.sh, the script behind `make redis-up` and `make redis-down`.
package redis_test

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// script is redis.sh.
var script = testenv.ServiceScript{
	Path:    "internal/redis/redis.sh",
	Name:    "Redis",
	Env:     func(port int) []string { return []string{"REDIS_PORT=" + strconv.Itoa(port)} },
	PidFile: func(port int) string { return filepath.Join(".cache", "redis", "redis-"+strconv.Itoa(port)+".pid") },
	Healthy: pong,
	Timeout: 30 * time.Second,
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
	a := testenv.NewScriptCheckout(t, script, port)
	b := testenv.NewScriptCheckout(t, script, port)

	pid := a.StartHoldingFD()
	b.CheckLeavesOthers(pid)
	b.CheckRefusesBusyPort()

	// Stopped by the clone that started it, even without its pid file: the server's working
	// directory is this clone's.
	a.CheckStopsWithoutPidFile(pid)
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
	c := testenv.NewScriptCheckout(t, script, testenv.FreePort(t))
	t.Cleanup(func() { c.Run("stop") })
	lock := filepath.Join(t.TempDir(), "ci.lock")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "flock", lock, c.Script(), "start")
	cmd.Env = c.Env()
	out, err := cmd.CombinedOutput()
	t.Logf("flock %s start: %v\n%s", lock, err, out)
	if err != nil {
		t.Fatal(err)
	}
	if !pong(c.Port) {
		t.Fatal("no Redis answering after start")
	}
	if out, err := exec.Command("flock", "-n", lock, "true").CombinedOutput(); err != nil {
		t.Errorf("the lock is still held after start returned (the server inherited it): %v %s", err, out)
	}
}
