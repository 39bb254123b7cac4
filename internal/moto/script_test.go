// Package moto_test checks moto.sh, the script behind `make moto-up` and `make moto-down`.
package moto_test

import (
	"context"
	"fmt"
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
	t      *testing.T
	root   string
	port   int
	server string // the moto_server to run
}

func (c checkout) env() []string {
	return append(os.Environ(), "MOTO_PORT="+strconv.Itoa(c.port), "MOTO_SERVER="+c.server)
}

func (c checkout) script() string { return filepath.Join(c.root, "internal", "moto", "moto.sh") }

// run runs the script; it returns its output and whether it exited 0.
func (c checkout) run(args ...string) (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.script(), args...)
	cmd.Env = c.env()
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	c.t.Logf("%s %s: %v\n%s", c.root, strings.Join(args, " "), err, out)
	return string(out), err == nil
}

func (c checkout) pidFile() string {
	return filepath.Join(c.root, ".cache", "run", "moto-"+strconv.Itoa(c.port)+".pid")
}

func (c checkout) pid() int {
	b, err := os.ReadFile(c.pidFile())
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// motoServer is the moto_server of this repository's virtualenv, or MOTO_SERVER.
func motoServer(t *testing.T) string {
	server := os.Getenv("MOTO_SERVER")
	if server == "" {
		server = filepath.Join(testenv.RepoRoot(t), ".cache", "venv", "bin", "moto_server")
	}
	if _, err := os.Stat(server); err != nil {
		t.Fatalf("no moto_server (%v); run `make venv` or set MOTO_SERVER", err)
	}
	return server
}

func healthy(port int) bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/moto-api/", port))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestScriptManagesOnlyItsOwnMoto: a second clone's `make moto-up` on the port of the first
// one's moto fails instead of adopting it, its status does not claim it, its `make moto-down`
// leaves it running; a port held by any other process is refused; and the server does not keep
// the caller's descriptors open.
func TestScriptManagesOnlyItsOwnMoto(t *testing.T) {
	testenv.NeedsServices(t)
	for _, tool := range []string{"curl", "ss", "setsid", "flock"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: moto.sh needs it", tool)
		}
	}
	server := motoServer(t)
	port := testenv.FreePort(t)
	a := checkout{t: t, root: testenv.CopyCheckout(t, "internal/moto"), port: port, server: server}
	b := checkout{t: t, root: testenv.CopyCheckout(t, "internal/moto"), port: port, server: server}
	var pid int
	t.Cleanup(func() {
		a.run("stop")
		if pid > 0 && testenv.Alive(pid) {
			t.Errorf("pid %d still alive after stop", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})

	// The first clone starts its server from a wrapper that holds an extra descriptor.
	res := testenv.RunHoldingFD(t, a.env(), a.script(), "start")
	t.Logf("start from a wrapper holding fd 3: %v\n%s", res.Err, res.Output)
	pid = a.pid()
	if res.Err != nil {
		t.Fatalf("start failed: %v", res.Err)
	}
	if pid == 0 || !healthy(port) {
		t.Fatalf("no healthy moto on port %d (pid %d)", port, pid)
	}
	if held := testenv.DescriptorsOn(pid, res.PipeInode); len(held) > 0 {
		t.Errorf("moto_server (pid %d) inherited the caller's descriptor: %v", pid, held)
	}
	if res.PipeHeld {
		t.Error("the caller's pipes stayed open after start returned: the server inherited them")
	}

	// The second clone neither adopts nor stops it.
	out, ok := b.run("start")
	if ok {
		t.Error("start on a port held by another clone's moto succeeded (adopted it)")
	}
	if !strings.Contains(out, "already in use") || !strings.Contains(out, strconv.Itoa(pid)) {
		t.Errorf("start must say the port is in use and by which process, got %q", out)
	}
	if _, ok := b.run("status"); ok {
		t.Error("status reports a server this clone did not start as its own")
	}
	if _, ok := b.run("stop"); !ok {
		t.Error("stop with nothing of its own to stop must succeed")
	}
	if !testenv.Alive(pid) || !healthy(port) {
		t.Fatal("the second clone's stop killed the first clone's moto")
	}
	if _, ok := a.run("status"); !ok {
		t.Error("status of the clone that started the server")
	}
	if out, ok := a.run("start"); !ok || !strings.Contains(out, strconv.Itoa(pid)) {
		t.Errorf("a second start in the clone that started the server must find it, got ok=%v %q", ok, out)
	}

	// A port held by anything else is refused as well.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	other := checkout{t: t, root: b.root, port: l.Addr().(*net.TCPAddr).Port, server: server}
	if out, ok := other.run("start"); ok || !strings.Contains(out, "already in use") {
		t.Errorf("start on a port held by another program must fail clearly, got ok=%v %q", ok, out)
	}

	// The clone that started the server stops it, even when its pid file was deleted: the
	// server runs in that clone's directory.
	if err := os.Remove(a.pidFile()); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.run("stop"); !ok {
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
