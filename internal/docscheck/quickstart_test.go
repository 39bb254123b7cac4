package docscheck_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/watermill-kombu/watermill-kombu/internal/docscheck"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// TestDocsQuickStartRuns: the README's quick start, built as it is written and run on a
// machine without AWS credentials, runs the task that a Celery app sends with the README's
// local broker URL.
func TestDocsQuickStartRuns(t *testing.T) {
	testenv.NeedsServices(t)
	root := testenv.RepoRoot(t)
	ep := testenv.SQSEndpoint(t)
	python := testenv.Python(t)
	blocks, err := docscheck.Blocks(root, "README.md")
	if err != nil {
		t.Fatal(err)
	}
	var quick *docscheck.Block
	for i, b := range blocks {
		if b.Lang == "go" && strings.HasPrefix(strings.TrimSpace(b.Code), "package main") {
			quick = &blocks[i]
			break
		}
	}
	if quick == nil {
		t.Fatal("README.md has no Go block that is a whole program (the quick start)")
	}
	const docEndpoint = "http://127.0.0.1:9324"
	if !strings.Contains(quick.Code, docEndpoint) {
		t.Fatalf("%s: the quick start does not use the local ElasticMQ (%s)", quick.Name(), docEndpoint)
	}
	// The tests' broker may listen on another port than the documented one.
	src := strings.ReplaceAll(quick.Code, docEndpoint, ep)

	dir, err := os.MkdirTemp(filepath.Join(root, ".cache"), "docscheck-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "quickstart")
	build := exec.Command(goTool(), "build", "-o", bin, "./"+mustRel(t, root, dir))
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", quick.Name(), err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	prog := exec.CommandContext(ctx, bin)
	prog.Env = withoutAWSCredentials(t)
	var stderr lockedBuffer
	prog.Stderr = &stderr
	stdout, err := prog.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := prog.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = prog.Process.Kill()
		_ = prog.Wait()
	}()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()

	// The README's Python side: a Celery app with the local broker URL sends the task.
	a := int(time.Now().UnixNano()%100000) + 1
	send := exec.CommandContext(ctx, python, "-c", celerySend, "sqs://test:test@"+strings.TrimPrefix(ep, "http://"), fmt.Sprint(a))
	send.Env = withoutAWSCredentials(t)
	if out, err := send.CombinedOutput(); err != nil {
		t.Fatalf("Celery could not send the task: %v\n%s", err, out)
	}
	want := fmt.Sprintf("proj.tasks.add(%d, 3) = %d", a, a+3)
	timeout := time.After(45 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the quick start exited before running the task; it wrote:\n%s", stderr.String())
			}
			if line == want {
				time.Sleep(500 * time.Millisecond) // let the batched delete go out
				if s := stderr.String(); strings.Contains(s, "level=ERROR") {
					t.Errorf("the quick start logged errors:\n%s", s)
				}
				return
			}
		case <-timeout:
			t.Fatalf("the quick start did not print %q within 45 s; it wrote:\n%s", want, stderr.String())
		}
	}
}

// celerySend sends proj.tasks.add(argv[2], 3) to the queue "celery", as the README's Python
// side does.
const celerySend = `
import sys
from celery import Celery

app = Celery("docs", broker=sys.argv[1])
app.send_task("proj.tasks.add", args=(int(sys.argv[2]), 3), queue="celery")
`

func mustRel(t *testing.T, base, target string) string {
	rel, err := filepath.Rel(base, target)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
