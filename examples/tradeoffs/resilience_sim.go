package main

import (
	"context"
	"errors"
	"time"

	"github.com/sysdesign-go/sysdesign/internal/sim"
	"github.com/sysdesign-go/sysdesign/resilience"
)

// The resilience experiments run this package's policies themselves — the
// blocking Execute methods of Retry, sharedbreaker.Breaker, Fallback,
// Pipeline and Guarded bulkheads, and the LoadShedder's HTTP middleware —
// against simulated dependencies. Four of them run on the simulation kit's
// virtual time through sim.Procs, which runs goroutines one at a time as
// processes of an internal/sim Engine: the policies get the engine's clock
// and a sleep on virtual time through their Now and Sleep options, and
// resilTimeout is resilience.Timeout on a virtual-time deadline, so a
// simulated minute runs in a fraction of a
// second and the same seed gives the same numbers. Hedge starts goroutines
// and waits on real timers, so the hedging experiment runs on real time
// against a fake service with short latencies. Each experiment's notes say
// what is modelled rather than run.

var (
	errResilRejected = errors.New("rejected: pool and queue full")
	errResilConflict = errors.New("write conflict")
	errResilDown     = errors.New("backend down")
)

// resilThreads is a service's thread pool with a bounded FIFO wait queue:
// a thread is held for the whole of a request, including the downstream
// calls it waits for. It is the service's own capacity, modelled; the
// resilience policies are what the experiments put around the calls.
type resilThreads struct {
	r             *sim.Procs
	cap, maxQueue int
	busy, peak    int
	queue         []func()
}

// acquire takes a thread, waiting in line for one; it reports false if the
// queue is full.
func (p *resilThreads) acquire() bool {
	if p.busy < p.cap {
		p.busy++
		p.peak = max(p.peak, p.busy)
		return true
	}
	if len(p.queue) >= p.maxQueue {
		return false
	}
	got := false
	if !p.r.Wait(context.Background(), func(wake func()) { p.queue = append(p.queue, func() { got = true; wake() }) }) {
		return false
	}
	return got
}

// release hands the thread to the first waiter, or frees it.
func (p *resilThreads) release() {
	if len(p.queue) > 0 {
		next := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		next()
		return
	}
	p.busy--
}

// resilDirect calls fn with no policy: the unprotected variants.
type resilDirect[T any] struct{}

func (resilDirect[T]) Execute(ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	return fn(ctx)
}

// resilTimeout is resilience.Timeout on the engine's virtual time: the call
// runs under a context that sim.Procs ends after d of virtual time, and a
// call cut by it fails, as resilience.Timeout's does, with a
// *resilience.PolicyError wrapping resilience.ErrTimeout and the call's
// error.
type resilTimeout struct {
	r        *sim.Procs
	name     string
	d        time.Duration
	timeouts uint64 // calls cut short; processes run one at a time
}

func (t *resilTimeout) Execute(ctx context.Context, fn func(context.Context) (resilUnit, error)) (resilUnit, error) {
	cctx, cancel := t.r.WithTimeout(ctx, t.d)
	v, err := fn(cctx)
	timedOut := cctx.Err() != nil && ctx.Err() == nil
	cancel()
	if err != nil && timedOut {
		t.timeouts++
		return v, &resilience.PolicyError{Policy: "timeout", Name: t.name, Kind: resilience.ErrTimeout, Cause: err}
	}
	return v, err
}

// resilPipeline composes ps, or calls directly when there are none.
func resilPipeline[T any](ps ...resilience.Policy[T]) (resilience.Policy[T], error) {
	if len(ps) == 0 {
		return resilDirect[T]{}, nil
	}
	return resilience.NewPipeline(ps...)
}

type resilUnit = struct{}
