package testenv

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
)

// ServiceScript describes one of the scripts that start and stop a local service
// (internal/redis/redis.sh, ...), for tests that run copies of it in other clones.
type ServiceScript struct {
	// Path is the script relative to the repository root; its directory is what
	// NewScriptCheckout copies.
	Path string
	// Name is what the script runs, as failure messages call it: "broker", "Redis".
	Name string
	// Env returns the variables that make the script serve on port: its port variables and
	// any other setting it needs.
	Env func(port int) []string
	// PidFile returns the path of the pid file of the server on port, relative to the root of
	// the checkout.
	PidFile func(port int) string
	// Healthy tells whether a server answers on port.
	Healthy func(port int) bool
	// Timeout bounds each Run.
	Timeout time.Duration
}

// HTTPHealthy is a ServiceScript.Healthy for servers that answer 200 to a GET of path on
// http://127.0.0.1:port.
func HTTPHealthy(path string) func(port int) bool {
	return func(port int) bool {
		c := http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
}

// ScriptCheckout is one clone of the repository (see CopyCheckout) with its own copy of a
// service script, run for a server on Port.
type ScriptCheckout struct {
	Root string
	Port int

	t      testing.TB
	script ServiceScript
	pid    int // the server StartHoldingFD started, for stopAtCleanup
}

// NewScriptCheckout copies the script's directory into a new clone whose script serves on
// port.
func NewScriptCheckout(t testing.TB, s ServiceScript, port int) *ScriptCheckout {
	t.Helper()
	root := CopyCheckout(t, filepath.Dir(s.Path))
	return &ScriptCheckout{Root: root, Port: port, t: t, script: s}
}

// onPort returns the same clone running its script for a server on another port.
func (c *ScriptCheckout) onPort(port int) *ScriptCheckout {
	return &ScriptCheckout{Root: c.Root, Port: port, t: c.t, script: c.script}
}

// Env is the script's environment: this process's plus the service's variables for Port.
func (c *ScriptCheckout) Env() []string { return append(os.Environ(), c.script.Env(c.Port)...) }

// Script is the path of this clone's copy of the script.
func (c *ScriptCheckout) Script() string { return filepath.Join(c.Root, c.script.Path) }

// pidFile is the path of this clone's pid file of the server on Port.
func (c *ScriptCheckout) pidFile() string { return filepath.Join(c.Root, c.script.PidFile(c.Port)) }

// Pid is the process named in the pid file, 0 if there is none.
func (c *ScriptCheckout) Pid() int {
	b, err := os.ReadFile(c.pidFile())
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// Run runs the script with args and logs its output; it returns that output and whether the
// script exited 0.
func (c *ScriptCheckout) Run(args ...string) (string, bool) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), c.script.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Script(), args...)
	cmd.Env = c.Env()
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	c.t.Logf("%s %s: %v\n%s", c.Root, strings.Join(args, " "), err, out)
	return string(out), err == nil
}

// StartHoldingFD runs "start target..." from a wrapper that holds an extra descriptor (see
// RunHoldingFD) and returns the server's pid. The test fails at once unless the start
// succeeds and the server answers, and fails if the server kept the caller's descriptors.
// When the test ends, "stop target..." runs and the server must be gone (it is killed if
// not).
func (c *ScriptCheckout) StartHoldingFD(target ...string) int {
	t := c.t
	t.Helper()
	c.stopAtCleanup(target...)
	res := RunHoldingFD(t, c.Env(), c.Script(), append([]string{"start"}, target...)...)
	t.Logf("start from a wrapper holding fd 3: %v\n%s", res.Err, res.Output)
	pid := c.Pid()
	c.pid = pid
	if res.Err != nil {
		t.Fatalf("start failed: %v", res.Err)
	}
	if pid == 0 || !c.script.Healthy(c.Port) {
		t.Fatalf("no healthy %s on port %d (pid %d)", c.script.Name, c.Port, pid)
	}
	if held := DescriptorsOn(pid, res.PipeInode); len(held) > 0 {
		t.Errorf("the %s (pid %d) inherited the caller's descriptor: %v", c.script.Name, pid, held)
	}
	if res.PipeHeld {
		t.Errorf("the caller's pipes stayed open after start returned: the %s inherited them", c.script.Name)
	}
	return pid
}

// CheckLeavesOthers checks that this clone neither adopts nor stops the server pid that
// another clone started on the same port: its start fails and names that process, its status
// fails and its stop succeeds without touching it. The test fails at once if that server is
// gone.
func (c *ScriptCheckout) CheckLeavesOthers(pid int, target ...string) {
	t, name := c.t, c.script.Name
	t.Helper()
	out, ok := c.Run(append([]string{"start"}, target...)...)
	if ok {
		t.Errorf("start on a port held by another clone's %s succeeded (adopted it)", name)
	}
	if !strings.Contains(out, "already in use") || !strings.Contains(out, strconv.Itoa(pid)) {
		t.Errorf("start must say the port is in use and by which process, got %q", out)
	}
	if _, ok := c.Run(append([]string{"status"}, target...)...); ok {
		t.Errorf("status reports a %s this clone did not start as its own", name)
	}
	if _, ok := c.Run(append([]string{"stop"}, target...)...); !ok {
		t.Error("stop with nothing of its own to stop must succeed")
	}
	if !Alive(pid) || !c.script.Healthy(c.Port) {
		t.Fatalf("the second clone's stop killed the first clone's %s", name)
	}
}

// CheckRefusesBusyPort checks that "start target..." fails clearly on a port held by a
// program other than the service.
func (c *ScriptCheckout) CheckRefusesBusyPort(target ...string) {
	t := c.t
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	other := c.onPort(l.Addr().(*net.TCPAddr).Port)
	if out, ok := other.Run(append([]string{"start"}, target...)...); ok || !strings.Contains(out, "already in use") {
		t.Errorf("start on a port held by another program must fail clearly, got ok=%v %q", ok, out)
	}
}

// CheckStopsWithoutPidFile deletes the pid file of the server pid this clone started, runs
// "stop target..." and checks that the server is gone within a few seconds: the script must
// recognise its own server without the file.
func (c *ScriptCheckout) CheckStopsWithoutPidFile(pid int, target ...string) {
	t := c.t
	t.Helper()
	if err := os.Remove(c.pidFile()); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Run(append([]string{"stop"}, target...)...); !ok {
		t.Error("stop failed")
	}
	deadline := time.Now().Add(10 * time.Second)
	for Alive(pid) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if Alive(pid) {
		t.Errorf("pid %d still alive after stop", pid)
	}
}

// stopAtCleanup runs "stop target..." when the test ends; the server this clone started
// must be gone then (it is killed if not).
func (c *ScriptCheckout) stopAtCleanup(target ...string) {
	c.t.Cleanup(func() {
		pid := c.Pid()
		if pid == 0 {
			pid = c.pid
		}
		c.Run(append([]string{"stop"}, target...)...)
		if pid > 0 && Alive(pid) {
			c.t.Errorf("pid %d still alive after stop", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}
