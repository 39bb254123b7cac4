// Package testenv gives tests the local services they run against: the
// ElasticMQ SQS brokers started by `make up`, the command that restarts
// the persistent one, and the Python interpreter of the interop
// virtualenv built by `make venv`.
//
// Every value can be overridden with an environment variable; `make test`
// sets them all:
//
//	KOMBU_TEST_SQS_ENDPOINT             in-memory broker (http://127.0.0.1:9324)
//	KOMBU_TEST_SQS_PERSISTENT_ENDPOINT  persistent broker (http://127.0.0.1:9325)
//	KOMBU_TEST_RESTART_COMMAND          restarts the persistent broker
//	                                    (internal/elasticmq/elasticmq.sh restart persistent)
//	KOMBU_TEST_PYTHON                   Python with Celery/Kombu (.cache/venv/bin/python)
//	KOMBU_TEST_REDIS_URL                Redis of the result backend tests (redis://127.0.0.1:6379/0)
//	KOMBU_TEST_MOTO_ENDPOINT            moto server, SQS and SNS (http://127.0.0.1:9400)
//	CI                                  "true": no test is skipped, not even under -short
//
// Under `go test -short` every test that needs a service is skipped, so that
// the unit tests run anywhere in seconds. Otherwise a missing service fails
// the test with a hint rather than skipping it, so that a run cannot pass
// without having run the tests; with CI=true nothing is ever skipped, not
// even under -short. Each service is probed once per test binary: when it
// is missing, every later test fails at once instead of waiting again.
package testenv

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Environment variables read by this package.
const (
	EnvSQSEndpoint           = "KOMBU_TEST_SQS_ENDPOINT"
	EnvPersistentSQSEndpoint = "KOMBU_TEST_SQS_PERSISTENT_ENDPOINT"
	EnvRestartCommand        = "KOMBU_TEST_RESTART_COMMAND"
	EnvPython                = "KOMBU_TEST_PYTHON"
)

// Defaults used when the environment variables are unset.
const (
	DefaultSQSEndpoint           = "http://127.0.0.1:9324"
	DefaultPersistentSQSEndpoint = "http://127.0.0.1:9325"

	// Region and credentials for the local brokers. ElasticMQ checks
	// neither, but the SDK needs static credentials so that it does not
	// look for real ones.
	Region          = "us-east-1"
	AccessKeyID     = "test"
	SecretAccessKey = "test"
)

const modulePath = "github.com/watermill-kombu/watermill-kombu"

const hint = "run `make up` (or `make test`)"

// EnvCI is the variable CI systems set to "true"; then no test is skipped.
const EnvCI = "CI"

// NeedsServices skips the test under -short (unless CI=true): call it first
// in a test that needs a broker, Redis or Python by other means than this
// package's accessors, which all call it.
func NeedsServices(t testing.TB) {
	t.Helper()
	if testing.Short() && os.Getenv(EnvCI) != "true" {
		t.Skip("needs the local services; skipped under -short")
	}
}

// SQSEndpoint returns the endpoint of the in-memory ElasticMQ broker and
// fails the test if it does not answer.
func SQSEndpoint(t testing.TB) string {
	t.Helper()
	return endpoint(t, EnvSQSEndpoint, DefaultSQSEndpoint)
}

// PersistentSQSEndpoint returns the endpoint of the ElasticMQ broker that
// keeps its queues and messages across restarts (see RestartCommand), and
// fails the test if it does not answer.
func PersistentSQSEndpoint(t testing.TB) string {
	t.Helper()
	return endpoint(t, EnvPersistentSQSEndpoint, DefaultPersistentSQSEndpoint)
}

// probes holds the outcome of the first health check of each endpoint: one
// that answered once is not checked again (so that a test running while the
// persistent broker is being restarted does not fail here), and one that
// did not answer is not waited for again.
var probes sync.Map // endpoint -> *probe

// probeTimeout is how long the first check of an endpoint waits for it to answer, which
// covers a broker still starting.
var probeTimeout = 10 * time.Second

type probe struct {
	once sync.Once
	err  error
}

func endpoint(t testing.TB, env, def string) string {
	t.Helper()
	NeedsServices(t)
	ep := strings.TrimRight(os.Getenv(env), "/")
	if ep == "" {
		ep = def
	}
	p, _ := probes.LoadOrStore(ep, &probe{})
	pr := p.(*probe)
	pr.once.Do(func() { pr.err = waitHealthy(ep, probeTimeout) })
	if pr.err != nil {
		t.Fatalf("testenv: SQS endpoint %s (%s) is not reachable: %v; %s", ep, env, pr.err, hint)
	}
	return ep
}

// waitHealthy polls GET <endpoint>/health until it returns 200 or the
// timeout passes, which covers a restart of the broker in progress.
func waitHealthy(ep string, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		err := checkHealth(client, ep)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func checkHealth(client *http.Client, ep string) error {
	resp, err := client.Get(ep + "/health")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /health: %s", resp.Status)
	}
	return nil
}

// AWSConfig returns an AWS configuration for a local broker: region
// us-east-1, static credentials test/test, BaseEndpoint set to endpoint
// and the SDK's default retryer. It reads nothing from the environment or
// ~/.aws, so a developer's own AWS settings cannot leak into tests.
func AWSConfig(t testing.TB, endpoint string) aws.Config {
	t.Helper()
	if endpoint == "" {
		t.Fatalf("testenv: AWSConfig: empty endpoint")
	}
	return aws.Config{
		Region: Region,
		Credentials: aws.NewCredentialsCache(
			credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		),
		BaseEndpoint: aws.String(endpoint),
	}
}

// SQSClient returns an SQS client for a local broker (see AWSConfig).
func SQSClient(t testing.TB, endpoint string) *sqs.Client {
	t.Helper()
	return sqs.NewFromConfig(AWSConfig(t, endpoint))
}

// RestartCommand returns the command that restarts the persistent broker
// and returns once it serves again, for Watermill's
// Features.RestartServiceCommand: KOMBU_TEST_RESTART_COMMAND split like a
// shell would (quotes are honoured), else
// <repo>/internal/elasticmq/elasticmq.sh restart persistent. It returns
// nil when neither is available.
func RestartCommand() []string {
	if s := strings.TrimSpace(os.Getenv(EnvRestartCommand)); s != "" {
		args, err := SplitCommand(s)
		if err == nil && len(args) > 0 {
			return args
		}
		return strings.Fields(s)
	}
	root, err := findRepoRoot()
	if err != nil {
		return nil
	}
	return []string{filepath.Join(root, "internal", "elasticmq", "elasticmq.sh"), "restart", "persistent"}
}

// RestartPersistent runs RestartCommand and fails the test if it fails.
func RestartPersistent(t testing.TB) {
	t.Helper()
	NeedsServices(t)
	args := RestartCommand()
	if len(args) == 0 {
		t.Fatalf("testenv: no restart command (set %s)", EnvRestartCommand)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := execCommand(ctx, args)
	if err != nil {
		t.Fatalf("testenv: %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Python returns the Python interpreter of the interop virtualenv:
// KOMBU_TEST_PYTHON, else <repo>/.cache/venv/bin/python. It fails the test
// if the file is missing.
func Python(t testing.TB) string {
	t.Helper()
	NeedsServices(t)
	p := os.Getenv(EnvPython)
	if p == "" {
		p = filepath.Join(RepoRoot(t), ".cache", "venv", "bin", "python")
	}
	info, err := os.Stat(p)
	if err != nil {
		t.Fatalf("testenv: Python interpreter %s (%s): %v; run `make venv` (or `make test`)", p, EnvPython, err)
	}
	if info.IsDir() || info.Mode()&0o111 == 0 {
		t.Fatalf("testenv: Python interpreter %s (%s) is not an executable file; run `make venv`", p, EnvPython)
	}
	return p
}

// RepoRoot returns the root of this repository: the nearest directory at
// or above the working directory whose go.mod declares this module.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := findRepoRoot()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return root
}

var (
	repoRootOnce sync.Once
	repoRoot     string
	repoRootErr  error
)

func findRepoRoot() (string, error) {
	repoRootOnce.Do(func() {
		repoRoot, repoRootErr = searchRepoRoot()
	})
	return repoRoot, repoRootErr
}

func searchRepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	firstModule := ""
	for dir := wd; ; dir = filepath.Dir(dir) {
		mod, err := moduleOf(filepath.Join(dir, "go.mod"))
		if err == nil {
			if mod == modulePath {
				return dir, nil
			}
			if firstModule == "" {
				firstModule = dir
			}
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	if firstModule != "" {
		return firstModule, nil
	}
	return "", fmt.Errorf("no go.mod found at or above %s", wd)
}

// moduleOf returns the module path declared in a go.mod file.
func moduleOf(gomod string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			return strings.Trim(strings.TrimSpace(rest), `"`), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("no module line")
}

// MaxUniqueNameLen is the longest name UniqueName returns. It leaves room
// for a ".fifo" suffix within SQS's 80-character limit on queue names.
const MaxUniqueNameLen = 75

var (
	uniqueCounter atomic.Uint64
	uniqueRun     = randomHex(3)
)

// UniqueName returns a fresh SQS-safe queue name that starts with prefix:
// characters other than ASCII letters, digits, '-' and '_' become '-', and
// the prefix is shortened so that the name is at most MaxUniqueNameLen
// characters. Append ".fifo" for a FIFO queue.
func UniqueName(prefix string) string {
	var b strings.Builder
	for _, r := range prefix {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	suffix := uniqueRun + strconv.FormatUint(uniqueCounter.Add(1), 36) + "-" + randomHex(4)
	p := strings.Trim(b.String(), "-")
	if limit := MaxUniqueNameLen - len(suffix) - 1; len(p) > limit {
		p = strings.TrimRight(p[:limit], "-")
	}
	if p == "" {
		p = "q"
	}
	return p + "-" + suffix
}

func randomHex(n int) string {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		panic(err)
	}
	return hex.EncodeToString(buf)
}

// ReportedRestartCommand wraps RestartCommand for Watermill's
// Features.RestartServiceCommand. Watermill's TestReconnect runs that command
// in a goroutine it does not wait for, and calls t.Error from there when the
// command fails: a restart still running when the test ends then panics the
// whole test binary ("Fail in goroutine after TestReconnect has completed").
// The wrapper always exits 0 and records each run's exit status instead;
// when t ends, its cleanup waits (up to 3 minutes) for the restarts under way
// and fails t, from the test's own goroutine, for each one that failed. It
// returns nil, so that TestReconnect skips, when there is no restart command.
func ReportedRestartCommand(t testing.TB) []string {
	t.Helper()
	args := RestartCommand()
	if len(args) == 0 {
		return nil
	}
	return reportedCommand(t, args, 3*time.Minute)
}

func reportedCommand(t testing.TB, args []string, wait time.Duration) []string {
	t.Helper()
	status := filepath.Join(t.TempDir(), "restarts.log")
	if err := os.WriteFile(status, nil, 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(wait)
		for {
			b, err := os.ReadFile(status)
			if err != nil {
				t.Errorf("testenv: reading the restart log: %v", err)
				return
			}
			started, done := 0, 0
			for _, line := range strings.Split(string(b), "\n") {
				switch {
				case line == "start":
					started++
				case strings.HasPrefix(line, "exit "):
					done++
					if line != "exit 0" {
						t.Errorf("testenv: %s failed (%s)", strings.Join(args, " "), line)
					}
				}
			}
			if done >= started {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("testenv: %d of %d runs of %s still running after %s", started-done, started, strings.Join(args, " "), wait)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	const script = `echo start >>"$0"; "$@"; echo "exit $?" >>"$0"; exit 0`
	return append([]string{"/bin/sh", "-c", script, status}, args...)
}
