package testenv

import (
	"flag"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// fatalRecorder records Fatalf and ends the calling goroutine as testing.T does, and ignores
// Skip, so that the probe runs under -short too.
type fatalRecorder struct {
	testing.TB
	mu     sync.Mutex
	fatals []string
}

func (r *fatalRecorder) Helper()     {}
func (r *fatalRecorder) Skip(...any) {}
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.fatals = append(r.fatals, fmt.Sprintf(format, args...))
	r.mu.Unlock()
	runtime.Goexit()
}

// TestMissingEndpointProbedOnce: an SQS endpoint that does not answer is waited for once;
// every later test that needs it fails at once.
func TestMissingEndpointProbedOnce(t *testing.T) {
	defer func(d time.Duration) { probeTimeout = d }(probeTimeout)
	probeTimeout = 500 * time.Millisecond
	const env = "KOMBU_TEST_PROBE_ONCE_ENDPOINT"
	t.Setenv(env, "http://127.0.0.1:1") // nothing listens on port 1
	rec := &fatalRecorder{TB: t}
	call := func() time.Duration {
		start := time.Now()
		done := make(chan struct{})
		go func() {
			defer close(done)
			endpoint(rec, env, "")
		}()
		<-done
		return time.Since(start)
	}
	first, second := call(), call()
	if len(rec.fatals) != 2 {
		t.Fatalf("got %d failures, want 2: %q", len(rec.fatals), rec.fatals)
	}
	if first < probeTimeout {
		t.Errorf("the first check took %s, less than its %s wait", first, probeTimeout)
	}
	if second > probeTimeout/2 {
		t.Errorf("the second check took %s: the missing endpoint was waited for again", second)
	}
}

// skipRecorder records whether Skip was called.
type skipRecorder struct {
	testing.TB
	skipped bool
}

func (r *skipRecorder) Helper()     {}
func (r *skipRecorder) Skip(...any) { r.skipped = true }

// TestNeedsServices: under -short a test that needs services is skipped, unless CI=true,
// where nothing is skipped.
func TestNeedsServices(t *testing.T) {
	short := flag.Lookup("test.short")
	defer func(v string) { _ = short.Value.Set(v) }(short.Value.String())
	for _, c := range []struct {
		short, ci string
		skipped   bool
	}{
		{"true", "", true},
		{"true", "true", false},
		{"false", "", false},
		{"false", "true", false},
	} {
		if err := short.Value.Set(c.short); err != nil {
			t.Fatal(err)
		}
		t.Setenv(EnvCI, c.ci)
		rec := &skipRecorder{TB: t}
		NeedsServices(rec)
		if rec.skipped != c.skipped {
			t.Errorf("-short=%s CI=%q: skipped %v, want %v", c.short, c.ci, rec.skipped, c.skipped)
		}
	}
}
