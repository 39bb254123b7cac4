// Package gopool runs short functions on goroutines that are kept for the next one.
//
// The SQS calls behind each receive, delete batch and send go deep into the AWS SDK, and a
// fresh goroutine grows its stack to that depth by copying it several times: a goroutine per
// call spent some 9 % of a subscriber's CPU in stack copies. A worker of the pool keeps its
// grown stack between calls and, after IdleTimeout without work, exits.
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
}

// New returns an empty pool.
func New() *Pool {
	return &Pool{work: make(chan func()), done: make(chan struct{})}
}

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
		select {
		case f = <-p.work:
		case <-idle.C:
			return
		case <-p.done:
			return
		}
	}
}

// Close makes idle workers exit, and busy ones once their function returns. Go still works
// afterwards, each function on a goroutine of its own.
func (p *Pool) Close() {
	p.closeOnce.Do(func() { close(p.done) })
}
