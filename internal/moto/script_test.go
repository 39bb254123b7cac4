// Package moto_test checks moto.sh, the script behind `make moto-up` and `make moto-down`.
package moto_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// motoScript is moto.sh running server, a moto_server.
func motoScript(server string) testenv.ServiceScript {
	return testenv.ServiceScript{
		Path: "internal/moto/moto.sh",
		Name: "moto",
		Env: func(port int) []string {
			return []string{"MOTO_PORT=" + strconv.Itoa(port), "MOTO_SERVER=" + server}
		},
		PidFile: func(port int) string { return filepath.Join(".cache", "run", "moto-"+strconv.Itoa(port)+".pid") },
		Healthy: testenv.HTTPHealthy("/moto-api/"),
		Timeout: 90 * time.Second,
	}
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
	script := motoScript(motoServer(t))
	port := testenv.FreePort(t)
	a := testenv.NewScriptCheckout(t, script, port)
	b := testenv.NewScriptCheckout(t, script, port)

	// The first clone starts its server from a wrapper that holds an extra descriptor.
	pid := a.StartHoldingFD()

	// The second clone neither adopts nor stops it.
	b.CheckLeavesOthers(pid)
	if _, ok := a.Run("status"); !ok {
		t.Error("status of the clone that started the server")
	}
	if out, ok := a.Run("start"); !ok || !strings.Contains(out, strconv.Itoa(pid)) {
		t.Errorf("a second start in the clone that started the server must find it, got ok=%v %q", ok, out)
	}

	// A port held by anything else is refused as well.
	b.CheckRefusesBusyPort()

	// The clone that started the server stops it, even when its pid file was deleted: the
	// server runs in that clone's directory.
	a.CheckStopsWithoutPidFile(pid)
}
