package gopool

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

func TestPoolReusesWorkers(t *testing.T) {
	p := New()
	defer p.Close()
	before := runtime.NumGoroutine()
	var ran atomic.Int64
	for i := 0; i < 1000; i++ {
		done := make(chan struct{})
		p.Go(func() { ran.Add(1); close(done) })
		<-done
		// Let the worker get back to waiting before the next call.
		for j := 0; j < 100 && runtime.NumGoroutine() > before+1; j++ {
			runtime.Gosched()
		}
	}
	if ran.Load() != 1000 {
		t.Fatalf("ran %d functions, want 1000", ran.Load())
	}
	if n := runtime.NumGoroutine() - before; n > 2 {
		t.Errorf("%d goroutines left for 1000 calls one after another, want 1", n)
	}
}

func TestPoolRunsConcurrently(t *testing.T) {
	p := New()
	defer p.Close()
	const n = 20
	var wg sync.WaitGroup
	wg.Add(n)
	release := make(chan struct{})
	for i := 0; i < n; i++ {
		p.Go(func() { wg.Done(); <-release })
	}
	// All n run at once: Go never waits for a busy worker.
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("functions did not all start")
	}
	close(release)
}

func TestPoolCloseStopsWorkers(t *testing.T) {
	before := runtime.NumGoroutine()
	p := New()
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		p.Go(wg.Done)
	}
	wg.Wait()
	p.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine() - before; n > 0 {
		t.Errorf("%d workers left after Close", n)
	}
	ran := make(chan struct{})
	p.Go(func() { close(ran) })
	<-ran
}

// deepCall uses some 40 KiB of stack, as an SDK call does.
//
//go:noinline
func deepCall(n int) byte {
	var frame [256]byte
	frame[n%256] = byte(n)
	if n == 0 {
		return frame[0]
	}
	return deepCall(n-1) + frame[n%256]
}

// A waiting worker of NewDeep keeps the stack its deep call grew through garbage collections,
// where one of New loses it: the collector shrinks the stack, moving it.
func TestDeepPoolKeepsStack(t *testing.T) {
	for _, c := range []struct {
		name string
		p    *Pool
		kept bool
	}{{"NewDeep", NewDeep(), true}, {"New", New(), false}} {
		// The first call grows the stack, then notes where its frame is; the second notes it
		// first: a stack shrunk meanwhile was copied elsewhere.
		var addrs []uintptr
		call := func(grow bool) {
			var local byte
			if grow {
				deepCall(40 << 10 / 300)
			}
			addrs = append(addrs, uintptr(unsafe.Pointer(&local)))
		}
		for _, grow := range []bool{true, false} {
			done := make(chan struct{})
			c.p.Go(func() { call(grow); close(done) })
			<-done
			time.Sleep(100 * time.Millisecond) // the worker is back waiting
			runtime.GC()
			runtime.GC()
		}
		if kept := addrs[0] == addrs[1]; kept != c.kept {
			t.Errorf("%s: stack kept between calls = %v, want %v", c.name, kept, c.kept)
		}
		c.p.Close()
	}
}
