package docscheck_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/watermill-kombu/watermill-kombu/internal/docscheck"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// TestDocsGoBlocksCompile: every Go block of README.md and docs/*.md compiles as a reader
// copies it (see docscheck.Program for how a block of statements is completed) and passes
// go vet (but for unreachable code: a block may end with a return).
func TestDocsGoBlocksCompile(t *testing.T) {
	testenv.NeedsServices(t)
	root := testenv.RepoRoot(t)
	files, err := docscheck.Files(root)
	if err != nil {
		t.Fatal(err)
	}
	// Inside the module, so that the blocks build against this checkout and its go.sum;
	// .cache is ignored by ./... patterns and by git.
	if err := os.MkdirAll(filepath.Join(root, ".cache"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(filepath.Join(root, ".cache"), "docscheck-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var pkgs []string
	names := map[string]docscheck.Block{}
	for _, file := range files {
		blocks, err := docscheck.Blocks(root, file)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			if b.Lang != "go" {
				continue
			}
			src, err := docscheck.Program(b.Code)
			if err != nil {
				t.Errorf("%s: %v\n%s", b.Name(), err, b.Code)
				continue
			}
			pkg := fmt.Sprintf("b%d", len(pkgs))
			if err := os.MkdirAll(filepath.Join(dir, pkg), 0o755); err != nil {
				t.Fatal(err)
			}
			src = "// Go block of " + b.Name() + "\n\n" + src
			if err := os.WriteFile(filepath.Join(dir, pkg, "main.go"), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(root, filepath.Join(dir, pkg))
			pkgs = append(pkgs, "./"+rel)
			names[rel] = b
		}
	}
	if len(pkgs) == 0 {
		t.Fatal("no Go block found in the documentation")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool(), append([]string{"vet", "-unreachable=false"}, pkgs...)...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Logf("%d Go blocks compile and pass go vet", len(pkgs))
		return
	}
	// Name the blocks in the errors.
	msg := string(out)
	for rel, b := range names {
		msg = strings.ReplaceAll(msg, rel+"/main.go", b.Name()+" (generated)")
		msg = strings.ReplaceAll(msg, rel, b.Name())
	}
	t.Errorf("go vet of the documentation's Go blocks: %v\n%s", err, msg)
	for rel, b := range names {
		if strings.Contains(msg, b.Name()) {
			src, _ := os.ReadFile(filepath.Join(root, rel, "main.go"))
			t.Logf("generated from %s:\n%s", b.Name(), numbered(string(src)))
		}
	}
}

// TestDocsBrokerURLs: every local broker URL of the documentation (sqs://...@127.0.0.1:9324)
// works in Kombu as written, on a machine without AWS credentials: a message goes through a
// fresh queue of the local ElasticMQ.
func TestDocsBrokerURLs(t *testing.T) {
	testenv.NeedsServices(t)
	root := testenv.RepoRoot(t)
	ep, err := url.Parse(testenv.SQSEndpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	python := testenv.Python(t)
	files, err := docscheck.Files(root)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, file := range files {
		urls, err := docscheck.LocalBrokerURLs(root, file)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range urls {
			n++
			// The documentation names the default port; the tests' broker may listen elsewhere.
			local := strings.Replace(u, "@127.0.0.1:9324", "@"+ep.Host, 1)
			local = strings.Replace(local, "@localhost:9324", "@"+ep.Host, 1)
			t.Run(file+" "+u, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, python, "-c", kombuRoundTrip, local, testenv.UniqueName("docs-url"))
				cmd.Env = withoutAWSCredentials(t)
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Errorf("%s (as %s) does not work in Kombu: %v\n%s", u, local, err, out)
				}
			})
		}
	}
	if n == 0 {
		t.Fatal("no local broker URL found in the documentation")
	}
}

// kombuRoundTrip sends a message through a new queue with the broker URL argv[1], as a Celery
// app given that broker_url would, and deletes the queue.
const kombuRoundTrip = `
import sys
from kombu import Connection

broker, name = sys.argv[1], sys.argv[2]
with Connection(broker) as conn:
    q = conn.SimpleQueue(name)
    try:
        q.put({"docs": name})
        msg = q.get(block=True, timeout=30)
        assert msg.payload == {"docs": name}, msg.payload
        msg.ack()
    finally:
        q.close()
        conn.default_channel.queue_delete(name)
print("ok", broker.split("@")[-1])
`

// withoutAWSCredentials is the environment without any AWS credentials or configuration, as
// on a developer's machine that never used AWS.
func withoutAWSCredentials(t *testing.T) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "BOTO_") {
			continue
		}
		env = append(env, kv)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return append(env,
		"AWS_CONFIG_FILE="+empty,
		"AWS_SHARED_CREDENTIALS_FILE="+empty,
		"AWS_EC2_METADATA_DISABLED=true", // fail at once instead of waiting for an instance role
		"HOME="+t.TempDir(),
	)
}

func goTool() string {
	if goroot := os.Getenv("GOROOT"); goroot != "" {
		if p := filepath.Join(goroot, "bin", "go"); fileExists(p) {
			return p
		}
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func numbered(src string) string {
	var b strings.Builder
	for i, line := range strings.Split(src, "\n") {
		fmt.Fprintf(&b, "%4d  %s\n", i+1, line)
	}
	return b.String()
}
