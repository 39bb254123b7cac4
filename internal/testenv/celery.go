package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// CeleryWorker is a `celery worker` process started by StartCeleryWorker.
type CeleryWorker struct {
	// Exited is closed once the process has exited.
	Exited <-chan struct{}
	// LogPath is the file holding the worker's output.
	LogPath string
}

// StartCeleryWorker starts `python -m celery -A app worker -Q queues` with the solo pool and
// without gossip, mingle or heartbeat, from the repository root, with env added to the
// environment, in its own process group. The worker is stopped when the test ends (SIGTERM,
// SIGKILL after 5 s), and its log is printed if the test failed.
func StartCeleryWorker(t testing.TB, app string, queues []string, env ...string) *CeleryWorker {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "celery-worker.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("creating the Celery worker log: %v", err)
	}
	cmd := exec.Command(Python(t), "-m", "celery", "-A", app, "worker",
		"-Q", strings.Join(queues, ","), "--pool", "solo", "-c", "1", "--without-gossip", "--without-mingle",
		"--without-heartbeat", "-l", "info")
	cmd.Dir = RepoRoot(t)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the Celery worker: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		_ = logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("celery worker log:\n%s", b)
		}
	})
	return &CeleryWorker{Exited: exited, LogPath: logPath}
}
