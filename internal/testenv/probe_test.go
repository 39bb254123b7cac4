package testenv

import (
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
