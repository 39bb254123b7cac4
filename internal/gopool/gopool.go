// Package gopool runs short functions on goroutines that are kept for the next one.
//
// The SQS calls behind each receive, delete batch and send go deep into the AWS SDK, and a
// fresh goroutine grows its stack to that depth by copying it several times: a goroutine per
// call spent some 9 % of a subscriber's CPU in stack copies. A worker of the pool keeps its
// grown stack between calls (one of NewDeep also through garbage collections, which shrink
// the stacks of waiting goroutines) and, after IdleTimeout without work, exits.
package gopool

import (
	"sync"
	"time"
)

// IdleTimeout is how long a worker waits for another function before it exits.
const IdleTimeout = 10 * time.Second

// Pool hands functions to idle workers, starting a new worker when none is idle: Go never
// waits, and there are never more workers than functions running at once.
type Pool struct {
	work      chan func()
	done      chan struct{}
	closeOnce sync.Once
	deep      bool
}

// New returns an empty pool for short, shallow functions.
func New() *Pool {
	return &Pool{work: make(chan func()), done: make(chan struct{})}
}

// NewDeep returns an empty pool for functions that go deep, such as SDK calls: its idle
// workers keep their stacks grown.
//
// The garbage collector halves the stack of a goroutine that uses less than a quarter of it,
// so a worker waiting at the top of its stack would lose the stack it grew, and copy it back
// on its next call, frame by frame. A waiting worker of this pool keeps stackReserve bytes of
// its stack in use, which costs clearing them once per call.
func NewDeep() *Pool {
	p := New()
	p.deep = true
	return p
}

// stackReserve is the stack in use while a worker of NewDeep waits: a quarter of the 64 KiB
// that an SDK call's stack grows to.
const stackReserve = 16 << 10

// Go runs f on an idle worker, or on a new one.
func (p *Pool) Go(f func()) {
	select {
	case p.work <- f:
	default:
		go p.worker(f)
	}
}

func (p *Pool) worker(f func()) {
	idle := time.NewTimer(IdleTimeout)
	defer idle.Stop()
	for {
		f()
		idle.Reset(IdleTimeout)
		if p.deep {
			f = p.nextDeep(idle)
		} else {
			f = p.next(idle)
		}
		if f == nil {
			return
		}
	}
}

// next waits for the next function, nil when the worker is to exit.
func (p *Pool) next(idle *time.Timer) func() {
	select {
	case f := <-p.work:
		return f
	case <-idle.C:
		return nil
	case <-p.done:
		return nil
	}
}

// nextDeep is next with stackReserve bytes of the stack in use.
//
//go:noinline
func (p *Pool) nextDeep(idle *time.Timer) func() {
	var reserve [stackReserve]byte
	use(reserve[:])
	return p.next(idle)
}

// use keeps b in its caller's frame.
//
//go:noinline
func use(b []byte) { b[len(b)-1] = 0 }

// Close makes idle workers exit, and busy ones once their function returns. Go still works
// afterwards, each function on a goroutine of its own.
func (p *Pool) Close() {
	p.closeOnce.Do(func() { close(p.done) })
}
