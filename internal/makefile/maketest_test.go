// Package makefile_test checks the Makefile's own logic with stand-ins for
// the tools it drives, so that it needs no broker and runs in seconds.
package makefile_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// fakeGo records its arguments and fails `go vet`, standing in for a step
// that fails early in `make test`.
const fakeGo = `#!/usr/bin/env bash
printf '%s\n' "$*" >>"$FAKE_GO_LOG"
[[ $1 == vet ]] && { echo "fake go: vet fails" >&2; exit 1; }
exit 0
`

// TestMakeTestRunsEveryStep: a failing `go vet` does not hide the steps after it; `make test`
// runs them all, names the failed ones at the end and exits non-zero.
func TestMakeTestRunsEveryStep(t *testing.T) {
	for _, tool := range []string{"make", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			if testing.Short() {
				t.Skipf("%s not found; skipped under -short", tool)
			}
			t.Fatalf("%s not found: `make test` needs it", tool)
		}
	}
	root := testenv.RepoRoot(t)
	tmp := t.TempDir()
	goLog := filepath.Join(tmp, "go.log")
	fake := filepath.Join(tmp, "go")
	writeExec(t, fake, fakeGo)
	// A virtualenv that `make venv` takes as up to date.
	venv := filepath.Join(tmp, "venv")
	writeExec(t, filepath.Join(venv, "bin", "python"), "#!/bin/sh\nexit 0\n")
	reqs, err := os.ReadFile(filepath.Join(root, "interop", "requirements.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(venv, ".requirements.txt"), reqs, 0o644); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command("make", "-C", root, "test",
		"GO="+fake, "ELASTICMQ=true", "REDIS=true", "MOTO=true", "VENV="+venv, "EXAMPLES=")
	cmd.Env = append(cleanEnv(), "FAKE_GO_LOG="+goLog)
	out, err := cmd.CombinedOutput()
	t.Logf("make test with a failing go vet:\n%s", out)
	if err == nil {
		t.Fatal("make test exited 0 although go vet failed")
	}
	calls, _ := os.ReadFile(goLog)
	t.Logf("go was called with:\n%s", calls)
	for _, want := range []string{
		"test -race",     // the Go tests
		"-fuzz=",         // the fuzz run
		"run . -quick",   // bench-quick
		"-run ^TestDocs", // docs-check
	} {
		if !strings.Contains(string(calls), want) {
			t.Errorf("after go vet failed, make test did not run the step that calls go %q", want)
		}
	}
	summary := lineWith(string(out), "failed steps:")
	if !strings.Contains(summary, " vet") {
		t.Errorf("make test must end by naming the failed steps (vet), got %q", summary)
	}
	if strings.Contains(summary, "go-test") {
		t.Errorf("a step that passed is reported as failed: %q", summary)
	}
}

func writeExec(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

// cleanEnv is the test's environment without what an enclosing make passes to its children.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// lineWith returns the last line of s that contains sub, or "".
func lineWith(s, sub string) string {
	found := ""
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			found = line
		}
	}
	return found
}
