package testenv

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// recordingTB records the failures of a cleanup instead of failing the test.
type recordingTB struct {
	testing.TB
	errors   []string
	cleanups []func()
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.errors = append(r.errors, format)
}
func (r *recordingTB) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }
func (r *recordingTB) runCleanups() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

// TestReportedCommand: the wrapped command always exits 0; a failure, or a run still going
// when the test ends, is reported by the test's cleanup, not by the caller's goroutine.
func TestReportedCommand(t *testing.T) {
	for _, c := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"success", []string{"true"}, ""},
		{"failure", []string{"sh", "-c", "exit 3"}, "failed"},
		{"still running", []string{"sleep", "1"}, "still running"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := &recordingTB{TB: t}
			cmd := reportedCommand(rec, c.args, 300*time.Millisecond)
			run := exec.Command(cmd[0], cmd[1:]...)
			if c.name == "still running" {
				if err := run.Start(); err != nil {
					t.Fatal(err)
				}
				defer run.Wait() //nolint:errcheck
				time.Sleep(200 * time.Millisecond)
			} else if err := run.Run(); err != nil {
				t.Fatalf("the wrapper failed: %v", err)
			}
			rec.runCleanups()
			got := strings.Join(rec.errors, "; ")
			if c.wantErr == "" && got != "" || c.wantErr != "" && !strings.Contains(got, c.wantErr) {
				t.Fatalf("cleanup reported %q, want %q", got, c.wantErr)
			}
		})
	}
}
