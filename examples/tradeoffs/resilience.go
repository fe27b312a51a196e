package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/internal/sim"
	"github.com/sysdesign-go/sysdesign/resilience"
)

// The resilience experiments run this package's policies themselves — the
// blocking Execute methods of Retry, SharedBreaker, Timeout, Fallback,
// Pipeline and Guarded bulkheads, and the LoadShedder's HTTP middleware —
// against simulated dependencies. Four of them run on the simulation kit's
// virtual time through resilProcs, which runs goroutines one at a time as
// processes of an internal/sim Engine: the policies get the engine's clock,
// a sleep and a context deadline on virtual time through their Now, Sleep
// and WithTimeout options, so a simulated minute runs in a fraction of a
// second and the same seed gives the same numbers. Hedge starts goroutines
// and waits on real timers, so the hedging experiment runs on real time
// against a fake service with short latencies. Each experiment's notes say
// what is modelled rather than run.
func resilienceExperiments() []lab.Experiment {
	return []lab.Experiment{
		{
			Name: "resilience-cascade", Group: "resilience",
			Title:   "a chain A → B → C where C becomes slow: no protection, timeouts, + circuit breaker, + fallback",
			Section: "Fault Tolerance → Circuit Breakers",
			Guide:   "Circuit Breakers: Prevent cascade failures — Open State: Fail fast, don't call failing service; Timeout Configuration: How long to wait; Fallback Mechanisms: Alternative responses",
			Run:     runResilCascade,
		},
		{
			Name: "resilience-retry-storm", Group: "resilience",
			Title:   "retry storms: exponential backoff with no, full, equal and decorrelated jitter (AWS setup), and a retry budget during an outage",
			Section: "Fault Tolerance → Failover",
			Guide:   "Failover: Automatic recovery from failures",
			Run:     runResilRetryStorm,
		},
		{
			Name: "resilience-hedging", Group: "resilience",
			Title:   "hedged requests on a long-tailed service, beside \"The Tail at Scale\"",
			Section: "Fault Tolerance → Redundancy; Performance Considerations → Latency Optimization",
			Guide:   "Redundancy: Multiple instances ... Active-Active: Multiple active instances",
			// Hedge.Execute runs goroutines on real timers.
			WallClock: true,
			Run:       runResilHedging,
		},
		{
			Name: "resilience-bulkheads", Group: "resilience",
			Title:   "one slow dependency: a shared thread pool versus a bulkhead per dependency",
			Section: "Throughput Optimization → Microservices",
			Guide:   "Microservices: Independent scaling ... Benefits: Targeted scaling, fault isolation",
			Run:     runResilBulkheads,
		},
		{
			Name: "resilience-shedding", Group: "resilience",
			Title:   "goodput and latency past saturation, with and without adaptive load shedding",
			Section: "Throughput Optimization",
			Guide:   "How would you handle 10,000 requests per second? ... Rate Limiting: Control request flow; Stress Testing: Find breaking points",
			Run:     runResilShedding,
		},
	}
}

var (
	errResilRejected = errors.New("rejected: pool and queue full")
	errResilConflict = errors.New("write conflict")
	errResilDown     = errors.New("backend down")
	errResilStopped  = errors.New("simulation stopped")
)

// resilProcs runs goroutines as processes on an engine's virtual time, so
// that code which blocks — a policy's Execute, a handler — runs unchanged
// in a simulation. A process may block only in the runtime's primitives
// (Sleep, wait, call, a resilCtx deadline), each of which parks it and
// hands control back to the engine; an event — a timer, another process —
// wakes it. Exactly one goroutine, the engine's or one process, runs at any
// moment, and every hand-over goes through a channel, so a run is race-free
// and as deterministic as the engine: the same seed gives the same events
// in the same order.
//
// It is not safe for concurrent use, and a process must never block on
// anything else (a channel, a real timer, a lock held by a parked process):
// the engine would wait for it forever.
type resilProcs struct {
	e     *sim.Engine
	clock func() time.Time
	// yield is how the running process hands control back to the engine:
	// it parked or finished.
	yield    chan struct{}
	parked   map[*resilProc]uint64 // parked processes, by park order
	seq      uint64
	stopping bool
	err      error
}

type resilProc struct {
	resume chan struct{}
	woken  bool
}

func newResilProcs(e *sim.Engine) *resilProcs {
	return &resilProcs{e: e, clock: e.Clock(), yield: make(chan struct{}), parked: map[*resilProc]uint64{}}
}

// Go starts fn as a new process at the current virtual instant, after the
// event or process that calls it has yielded.
func (r *resilProcs) Go(fn func()) {
	r.e.Schedule(0, func() {
		go func() {
			fn()
			r.yield <- struct{}{}
		}()
		<-r.yield
	})
}

// wait parks the calling process until the wake function handed to
// register is called — by an event or another process — or until ctx
// ends (context.Background: never). It returns false, at once, when the runtime is
// stopping. A wake after the process went on is ignored.
func (r *resilProcs) wait(ctx context.Context, register func(wake func())) bool {
	if r.stopping {
		return false
	}
	var vc *resilCtx
	if ctx.Done() != nil {
		c, ok := ctx.(*resilCtx)
		if !ok {
			r.fail(fmt.Errorf("a process waits on a %T, which does not end on virtual time", ctx))
			return false
		}
		if c.err != nil {
			return true
		}
		vc = c
	}
	p := &resilProc{resume: make(chan struct{})}
	wake := func() {
		if p.woken {
			return
		}
		p.woken = true
		r.e.Schedule(0, func() { r.run(p) })
	}
	register(wake)
	var stop func() bool
	if vc != nil {
		stop = vc.AfterFunc(wake)
	}
	r.seq++
	r.parked[p] = r.seq
	r.yield <- struct{}{}
	<-p.resume
	if stop != nil {
		stop()
	}
	return !r.stopping
}

// run resumes a parked process and waits until it yields again.
func (r *resilProcs) run(p *resilProc) {
	if _, ok := r.parked[p]; !ok {
		return
	}
	delete(r.parked, p)
	p.resume <- struct{}{}
	<-r.yield
}

// Sleep waits d of virtual time or until ctx ends: the Sleep option of
// resilience.Retry.
func (r *resilProcs) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !r.wait(ctx, func(wake func()) { r.e.Schedule(max(d, 0), wake) }) {
		return errResilStopped
	}
	return ctx.Err()
}

// call sends a request that serve answers in a process of its own, and
// waits for the answer or for ctx to end. The server is not told when its
// client gives up: like a real one it finishes the abandoned request.
func (r *resilProcs) call(ctx context.Context, serve func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var (
		answered bool
		answer   error
		notify   func()
	)
	r.Go(func() {
		answer = serve()
		answered = true
		if notify != nil {
			notify()
		}
	})
	if !r.wait(ctx, func(wake func()) { notify = wake }) {
		return errResilStopped
	}
	if answered {
		return answer
	}
	return ctx.Err()
}

// WithTimeout derives a context that ends with context.DeadlineExceeded
// after d of virtual time: the WithTimeout option of resilience.Timeout.
// parent must be a resilCtx or never end.
func (r *resilProcs) WithTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	c := &resilCtx{parent: parent, deadline: r.clock().Add(d), done: make(chan struct{})}
	var stopParent func() bool
	if parent.Done() != nil {
		pc, ok := parent.(*resilCtx)
		switch {
		case !ok:
			r.fail(fmt.Errorf("a virtual deadline under a %T, which does not end on virtual time", parent))
		case pc.err != nil:
			c.cancel(pc.err)
		default:
			c.deadline = minTime(c.deadline, pc.deadline)
			stopParent = pc.AfterFunc(func() { c.cancel(pc.err) })
		}
	}
	r.e.Schedule(d, func() { c.cancel(context.DeadlineExceeded) })
	return c, func() {
		c.cancel(context.Canceled)
		if stopParent != nil {
			stopParent()
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

func (r *resilProcs) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// runAll runs the engine until no event is left, then ends every process
// still parked (their waits return false) and reports the first misuse.
func (r *resilProcs) runAll() error {
	if err := r.e.Run(sim.Forever); err != nil {
		return err
	}
	r.stopping = true
	for len(r.parked) > 0 {
		var first *resilProc
		for p, seq := range r.parked {
			if first == nil || seq < r.parked[first] {
				first = p
			}
		}
		r.run(first)
	}
	return r.err
}

// resilCtx is a context that ends on virtual time. It implements
// AfterFunc, so contexts the standard library derives from it are
// cancelled synchronously, on the goroutine that runs, rather than by a
// goroutine of their own.
type resilCtx struct {
	parent   context.Context
	deadline time.Time
	done     chan struct{}
	err      error
	after    []*resilAfter
}

type resilAfter struct {
	f       func()
	stopped bool
}

func (c *resilCtx) Deadline() (time.Time, bool) { return c.deadline, true }
func (c *resilCtx) Done() <-chan struct{}       { return c.done }
func (c *resilCtx) Err() error                  { return c.err }
func (c *resilCtx) Value(key any) any           { return c.parent.Value(key) }

// AfterFunc arranges for f to run when c ends, on the goroutine that ends
// it; stop unregisters f and reports whether it had not run yet.
func (c *resilCtx) AfterFunc(f func()) (stop func() bool) {
	if c.err != nil {
		f()
		return func() bool { return false }
	}
	a := &resilAfter{f: f}
	c.after = append(c.after, a)
	return func() bool {
		was := !a.stopped
		a.stopped = true
		return was && c.err == nil
	}
}

func (c *resilCtx) cancel(err error) {
	if c.err != nil {
		return
	}
	c.err = err
	close(c.done)
	after := c.after
	c.after = nil
	for _, a := range after {
		if !a.stopped {
			a.stopped = true
			a.f()
		}
	}
}

// resilThreads is a service's thread pool with a bounded FIFO wait queue:
// a thread is held for the whole of a request, including the downstream
// calls it waits for. It is the service's own capacity, modelled; the
// resilience policies are what the experiments put around the calls.
type resilThreads struct {
	r             *resilProcs
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
	if !p.r.wait(context.Background(), func(wake func()) { p.queue = append(p.queue, func() { got = true; wake() }) }) {
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

// resilPipeline composes ps, or calls directly when there are none.
func resilPipeline[T any](ps ...resilience.Policy[T]) (resilience.Policy[T], error) {
	if len(ps) == 0 {
		return resilDirect[T]{}, nil
	}
	return resilience.NewPipeline(ps...)
}

type resilCascadeVariant struct {
	name                        string
	timeouts, breaker, fallback bool
}

var resilCascadeVariants = []resilCascadeVariant{
	{"no protection", false, false, false},
	{"timeouts", true, false, false},
	{"timeouts + breaker", true, true, false},
	{"timeouts + breaker + fallback", true, true, true},
}

// resilCascadeResult is what A's clients saw during C's slow phase.
type resilCascadeResult struct {
	variant            string
	latency            sim.Summary
	errorRate          float64
	peakA, peakB       int
	meanA, meanB       float64 // mean threads busy, sampled every 100 ms
	callsToC           int     // requests that reached C during the slow phase
	requests, fallback int
	timeoutsBC         uint64 // B → C calls cut by B's Timeout policy
	rejectedAB         uint64 // A → B calls refused by A's open breaker
	rejectedBC         uint64 // B → C calls refused by B's open breaker
	threadsA           lab.Series
}

const (
	resilCascadeRate     = 100.0 // requests/s to A
	resilCascadeThreads  = 50    // threads of A and of B
	resilCascadeCThreads = 20
	resilCascadeQueue    = 200
	resilCascadeSlowWork = 5 * time.Second
	resilCascadeTimeoutB = time.Second            // A → B
	resilCascadeTimeoutC = 300 * time.Millisecond // B → C
)

type resilUnit = struct{}

// resilCascade runs the chain: every request is a process; A and B call
// downstream through a resilience.Pipeline of the variant's policies —
// Fallback → SharedBreaker → Timeout — on the engine's virtual time.
func resilCascade(env *lab.Env, v resilCascadeVariant, total, slowFrom, slowTo time.Duration) (resilCascadeResult, error) {
	var e sim.Engine
	r := newResilProcs(&e)
	arrivals, err := sim.NewPoisson(env.Rand(1), resilCascadeRate)
	if err != nil {
		return resilCascadeResult{}, err
	}
	work, err := sim.NewExponential(env.Rand(2), 20*time.Millisecond)
	if err != nil {
		return resilCascadeResult{}, err
	}
	a := &resilThreads{r: r, cap: resilCascadeThreads, maxQueue: resilCascadeQueue}
	b := &resilThreads{r: r, cap: resilCascadeThreads, maxQueue: resilCascadeQueue}
	c := &resilThreads{r: r, cap: resilCascadeCThreads, maxQueue: 1000}
	inSlow := func() bool { return e.Now() >= slowFrom && e.Now() < slowTo }
	res := resilCascadeResult{variant: v.name, threadsA: lab.Series{Name: v.name}}

	// The client side of each hop: A → B and B → C.
	var ab, bc []resilience.Policy[resilUnit]
	var toBC *resilience.Timeout[resilUnit]
	var brAB, brBC *resilience.SharedBreaker[resilUnit]
	if v.fallback {
		fb, err := resilience.NewFallbackFunc(func(context.Context, error) (resilUnit, error) {
			if inSlow() {
				res.fallback++
			}
			return resilUnit{}, nil // B answers with a default or cached value
		}, nil)
		if err != nil {
			return res, err
		}
		bc = append(bc, fb)
	}
	if v.breaker {
		newBreaker := func(name string) (*resilience.SharedBreaker[resilUnit], error) {
			return resilience.NewSharedBreaker[resilUnit](resilience.NewMemoryBreakerStore(), resilience.SharedBreakerOptions{
				Name:  name,
				Rules: resilience.BreakerRules{Window: 10 * time.Second, MinRequests: 20, FailureRate: 0.5, Timeout: 2 * time.Second},
				Now:   r.clock,
			})
		}
		if brAB, err = newBreaker("a-b"); err != nil {
			return res, err
		}
		if brBC, err = newBreaker("b-c"); err != nil {
			return res, err
		}
		ab, bc = append(ab, brAB), append(bc, brBC)
	}
	if v.timeouts {
		toAB, err := resilience.NewTimeoutWith[resilUnit](resilCascadeTimeoutB, resilience.TimeoutOptions{Name: "a-b", WithTimeout: r.WithTimeout})
		if err != nil {
			return res, err
		}
		if toBC, err = resilience.NewTimeoutWith[resilUnit](resilCascadeTimeoutC, resilience.TimeoutOptions{Name: "b-c", WithTimeout: r.WithTimeout}); err != nil {
			return res, err
		}
		ab, bc = append(ab, toAB), append(bc, toBC)
	}
	pipeAB, err := resilPipeline(ab...)
	if err != nil {
		return res, err
	}
	pipeBC, err := resilPipeline(bc...)
	if err != nil {
		return res, err
	}

	bg := context.Background() // servers do not see their clients' deadlines
	serveC := func() error {
		if inSlow() {
			res.callsToC++
		}
		if !c.acquire() {
			return errResilRejected
		}
		d := work.Sample()
		if inSlow() {
			d = resilCascadeSlowWork
		}
		err := r.Sleep(bg, d)
		c.release()
		return err
	}
	serveB := func() error {
		if !b.acquire() {
			return errResilRejected
		}
		_ = r.Sleep(bg, time.Millisecond)
		_, err := pipeBC.Execute(bg, func(ctx context.Context) (resilUnit, error) { return resilUnit{}, r.call(ctx, serveC) })
		b.release()
		return err
	}
	rec := sim.NewRecorder()
	errs := 0
	request := func() {
		start := e.Now()
		measured := inSlow()
		var err error
		if a.acquire() {
			_ = r.Sleep(bg, time.Millisecond)
			_, err = pipeAB.Execute(bg, func(ctx context.Context) (resilUnit, error) { return resilUnit{}, r.call(ctx, serveB) })
			a.release()
		} else {
			err = errResilRejected
		}
		if measured && !errors.Is(err, errResilStopped) {
			rec.Record(e.Now() - start)
			res.requests++
			if err != nil {
				errs++
			}
		}
	}
	var arrive func()
	arrive = func() {
		r.Go(request)
		if next := e.Now() + arrivals.Next(); next < total {
			e.At(next, arrive)
		}
	}
	var samples, sumA, sumB int
	var sample func()
	sample = func() {
		if inSlow() {
			samples++
			sumA += a.busy
			sumB += b.busy
		}
		res.threadsA.X = append(res.threadsA.X, e.Now().Seconds())
		res.threadsA.Y = append(res.threadsA.Y, float64(a.busy))
		if e.Now()+100*time.Millisecond < total {
			e.Schedule(100*time.Millisecond, sample)
		}
	}
	e.Schedule(0, arrive)
	e.Schedule(0, sample)
	if err := r.runAll(); err != nil {
		return res, err
	}
	res.latency = rec.Summary()
	if res.requests > 0 {
		res.errorRate = float64(errs) / float64(res.requests)
	}
	res.peakA, res.peakB = a.peak, b.peak
	if samples > 0 {
		res.meanA, res.meanB = float64(sumA)/float64(samples), float64(sumB)/float64(samples)
	}
	if toBC != nil {
		res.timeoutsBC = toBC.Stats().Timeouts
	}
	if brBC != nil {
		res.rejectedAB, res.rejectedBC = brAB.Stats().Rejected, brBC.Stats().Rejected
	}
	return res, nil
}

func resilCascadeTimes(env *lab.Env) (total, from, to time.Duration) {
	if env.Quick {
		return 20 * time.Second, 4 * time.Second, 14 * time.Second
	}
	return 60 * time.Second, 10 * time.Second, 40 * time.Second
}

func resilCascadeAll(env *lab.Env) ([]resilCascadeResult, error) {
	total, from, to := resilCascadeTimes(env)
	var out []resilCascadeResult
	for _, v := range resilCascadeVariants {
		r, err := resilCascade(env, v, total, from, to)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func runResilCascade(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	results, err := resilCascadeAll(env)
	if err != nil {
		return nil, err
	}
	total, from, to := resilCascadeTimes(env)
	t := lab.NewTable(fmt.Sprintf("A's clients while C is slow (%v–%v of %v): %.0f req/s, A and B %d threads + %d queued, C %d threads, C's work 20 ms → %v; timeouts A→B %v, B→C %v",
		from, to, total, resilCascadeRate, resilCascadeThreads, resilCascadeQueue, resilCascadeCThreads, resilCascadeSlowWork, resilCascadeTimeoutB, resilCascadeTimeoutC),
		"protection", "A p50", "A p99", "error rate", "A threads peak", "A threads mean", "B threads peak", "B threads mean", "calls reaching C", "B→C timeouts", "short-circuited A→B / B→C", "answered by fallback")
	chart := &lab.Chart{Title: "threads busy in A over time (C slow between the bounds in the table's title)", XLabel: "time (s)", YLabel: "threads busy in A (count)"}
	for _, r := range results {
		t.AddRow(r.variant, r.latency.P50, r.latency.P99, fmt.Sprintf("%.1f%%", 100*r.errorRate), r.peakA, fmt.Sprintf("%.1f", r.meanA),
			r.peakB, fmt.Sprintf("%.1f", r.meanB), r.callsToC, r.timeoutsBC, fmt.Sprintf("%d / %d", r.rejectedAB, r.rejectedBC), r.fallback)
		chart.Series = append(chart.Series, r.threadsA)
	}
	none, to1, br, fb := results[0], results[1], results[2], results[3]
	return &lab.Result{
		Tables: []*lab.Table{t},
		Charts: []*lab.Chart{chart},
		Notes: []string{
			fmt.Sprintf("Agrees with the guide: with no protection the slowness of C climbs the chain — B's threads (peak %d of %d) and then A's (peak %d) are all held waiting, A's p99 reaches %v and %.0f%% of A's requests fail (A's queue overflows, so most are refused at once: hence A's p50 of about zero) although A and B themselves are healthy. That is the cascade failure.",
				none.peakB, resilCascadeThreads, none.peakA, none.latency.P99, 100*none.errorRate),
			fmt.Sprintf("Timeouts alone (resilience.Timeout, %d B→C calls cut) bound the wait (A p99 %v) and free B's threads after %v, but every call still goes to C: %d calls reached C during the slow phase, which only deepens its backlog; %.0f%% of requests fail.",
				to1.timeoutsBC, to1.latency.P99, resilCascadeTimeoutC, to1.callsToC, 100*to1.errorRate),
			fmt.Sprintf("A circuit breaker (resilience.SharedBreaker on a MemoryBreakerStore, opening at ≥50%% failures over ≥20 calls in 10 s, 2 s open) fails fast: A's breaker short-circuits %d calls to B (B's own breaker %d: with A's open, B hardly gets calls), calls reaching C drop from %d to %d, B's mean busy threads from %.1f to %.1f, A's p50 to %v. Errors stay (%.0f%%): the breaker protects the system, not the request. With B's fallback answering, A's breaker stays closed and B's short-circuits %d calls to C.",
				br.rejectedAB, br.rejectedBC, to1.callsToC, br.callsToC, to1.meanB, br.meanB, br.latency.P50, 100*br.errorRate, fb.rejectedBC),
			fmt.Sprintf("With a fallback at B (resilience.Fallback outermost in B's pipeline) the user sees %.1f%% errors and a p99 of %v: \"Fallback Mechanisms: Alternative responses\" turn the fast failures into degraded answers (%d of them).",
				100*fb.errorRate, fb.latency.P99, fb.fallback),
			"Run, not modelled: every request is a goroutine process on the engine's virtual time, and each hop calls downstream through a resilience.Pipeline of the variant's policies — Fallback → SharedBreaker → Timeout — whose Execute methods run unchanged (the Timeout's deadline is a virtual-time context, given through TimeoutOptions.WithTimeout; the breaker reads the engine's clock). Modelled: the services — threads are counted slots with a FIFO queue (A and B 50 + 200 queued, C 20 + 1000), work is a virtual sleep, and a server finishes requests its client abandoned. The breaker is the store-backed SharedBreaker rather than the gobreaker-based CircuitBreaker because gobreaker's open timeout reads time.Now, which virtual time cannot move; both apply the closed / open / half-open rules.",
		},
	}, ctx.Err()
}

// resilContention is the AWS "Exponential Backoff and Jitter" setup:
// clients all want one write to a resource under optimistic concurrency
// at the same moment; a write succeeds if no other write committed in the
// last resilWriteTime, else the client's resilience.Retry backs off and
// tries again. It returns the calls made and when the last client
// finished.
func resilContention(jitter resilience.Jitter, clients int, rnd *rand.Rand) (calls int, done time.Duration, err error) {
	var e sim.Engine
	r := newResilProcs(&e)
	retry, err := resilience.NewRetry[resilUnit](resilience.RetryOptions{
		Name:        "write",
		MaxAttempts: resilStormMaxAttempts,
		Backoff:     resilience.Backoff{Base: 5 * time.Millisecond, Max: 2 * time.Second, Jitter: jitter},
		Sleep:       r.Sleep, Now: r.clock, Rand: rnd.Float64,
	})
	if err != nil {
		return 0, 0, err
	}
	lockedUntil := time.Duration(-1)
	remaining := clients
	write := func(context.Context) (resilUnit, error) {
		calls++
		if e.Now() < lockedUntil {
			return resilUnit{}, errResilConflict
		}
		lockedUntil = e.Now() + resilWriteTime
		remaining--
		if remaining == 0 {
			done = e.Now() + resilWriteTime
		}
		return resilUnit{}, nil
	}
	failed := 0
	for range clients {
		r.Go(func() {
			if _, err := retry.Execute(context.Background(), write); err != nil {
				failed++
			}
		})
	}
	if err := r.runAll(); err != nil {
		return 0, 0, err
	}
	if failed > 0 {
		return calls, done, fmt.Errorf("%d of %d clients gave up after %d attempts", failed, clients, resilStormMaxAttempts)
	}
	return calls, done, nil
}

const (
	resilWriteTime = time.Millisecond
	// resilStormMaxAttempts is "until it succeeds", as in the AWS post.
	resilStormMaxAttempts = 10_000
)

var resilJitters = []resilience.Jitter{resilience.JitterNone, resilience.JitterFull, resilience.JitterEqual, resilience.JitterDecorrelated}

type resilStormPoint struct {
	jitter  resilience.Jitter
	clients int
	calls   float64
	done    time.Duration
}

func resilStorm(env *lab.Env, clientCounts []int, runs int) ([]resilStormPoint, error) {
	var out []resilStormPoint
	for ji, j := range resilJitters {
		for _, n := range clientCounts {
			rnd := env.Rand(uint64(100 + ji))
			var calls int
			var done time.Duration
			for range runs {
				c, d, err := resilContention(j, n, rnd)
				if err != nil {
					return nil, err
				}
				calls += c
				done += d
			}
			out = append(out, resilStormPoint{j, n, float64(calls) / float64(runs), done / time.Duration(runs)})
		}
	}
	return out, nil
}

// resilOutageResult is what a fleet's retries did during an outage.
type resilOutageResult struct {
	// amplification is backend attempts per request during the outage.
	amplification float64
	stats         resilience.RetryStats
}

// resilOutage sends rate requests/s for total to a backend that fails
// every call between from and to; each request goes through one shared
// resilience.Retry (3 attempts, full jitter), with or without a shared
// resilience.Budget (10% + 10 per window).
func resilOutage(env *lab.Env, withBudget bool, rate float64, total, from, to time.Duration) (resilOutageResult, error) {
	var e sim.Engine
	r := newResilProcs(&e)
	arrivals, err := sim.NewPoisson(env.Rand(200), rate)
	if err != nil {
		return resilOutageResult{}, err
	}
	var budget *resilience.Budget
	if withBudget {
		if budget, err = resilience.NewBudget(0.1, resilience.BudgetOptions{Now: r.clock}); err != nil {
			return resilOutageResult{}, err
		}
	}
	retry, err := resilience.NewRetry[resilUnit](resilience.RetryOptions{
		Name: "backend", MaxAttempts: 3, Budget: budget,
		Backoff: resilience.Backoff{Base: 10 * time.Millisecond, Max: time.Second},
		Sleep:   r.Sleep, Now: r.clock, Rand: env.Rand(201).Float64,
	})
	if err != nil {
		return resilOutageResult{}, err
	}
	down := func() bool { return e.Now() >= from && e.Now() < to }
	var requests, attempts int
	call := func(ctx context.Context) (resilUnit, error) {
		if down() {
			attempts++
		}
		if err := r.Sleep(ctx, 5*time.Millisecond); err != nil { // the backend's answer
			return resilUnit{}, err
		}
		if down() {
			return resilUnit{}, errResilDown
		}
		return resilUnit{}, nil
	}
	var arrive func()
	arrive = func() {
		if down() {
			requests++
		}
		r.Go(func() { _, _ = retry.Execute(context.Background(), call) })
		if next := e.Now() + arrivals.Next(); next < total {
			e.At(next, arrive)
		}
	}
	e.Schedule(0, arrive)
	if err := r.runAll(); err != nil {
		return resilOutageResult{}, err
	}
	return resilOutageResult{amplification: float64(attempts) / float64(max(requests, 1)), stats: retry.Stats()}, nil
}

func runResilRetryStorm(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	counts := []int{5, 10, 25, 50, 100}
	runs := env.Scale(10, 3)
	if env.Quick {
		counts = []int{10, 50, 100}
	}
	points, err := resilStorm(env, counts, runs)
	if err != nil {
		return nil, err
	}
	t := lab.NewTable(fmt.Sprintf("Clients contending for one resource, each retrying with resilience.Retry until it succeeds (base 5 ms, cap 2 s, write %v, mean of %d runs)", resilWriteTime, runs),
		"jitter", "clients", "total calls", "completion time", "calls vs no jitter")
	noJitter := map[int]float64{}
	callsChart := &lab.Chart{Title: "total calls vs contending clients", XLabel: "contending clients (count)", YLabel: "total calls (count)", LogY: true}
	timeChart := &lab.Chart{Title: "completion time vs contending clients", XLabel: "contending clients (count)", YLabel: "completion time (s)", LogY: true}
	byJitter := map[resilience.Jitter]*[2]lab.Series{}
	for _, p := range points {
		if p.jitter == resilience.JitterNone {
			noJitter[p.clients] = p.calls
		}
		s := byJitter[p.jitter]
		if s == nil {
			s = &[2]lab.Series{{Name: p.jitter.String()}, {Name: p.jitter.String()}}
			byJitter[p.jitter] = s
		}
		s[0].X, s[0].Y = append(s[0].X, float64(p.clients)), append(s[0].Y, p.calls)
		s[1].X, s[1].Y = append(s[1].X, float64(p.clients)), append(s[1].Y, p.done.Seconds())
	}
	for _, p := range points {
		t.AddRow(p.jitter.String(), p.clients, fmt.Sprintf("%.0f", p.calls), p.done, fmt.Sprintf("%.2f×", p.calls/noJitter[p.clients]))
	}
	for _, j := range resilJitters {
		callsChart.Series = append(callsChart.Series, byJitter[j][0])
		timeChart.Series = append(timeChart.Series, byJitter[j][1])
	}
	rate := float64(env.Scale(1000, 200))
	total, from, to := 30*time.Second, 10*time.Second, 20*time.Second
	without, err := resilOutage(env, false, rate, total, from, to)
	if err != nil {
		return nil, err
	}
	with, err := resilOutage(env, true, rate, total, from, to)
	if err != nil {
		return nil, err
	}
	bt := lab.NewTable(fmt.Sprintf("A 10 s outage in %v: %.0f requests/s through resilience.Retry, up to 3 attempts each, full jitter", total, rate),
		"retries", "backend attempts per request during the outage", "retries made", "retries refused by the budget", "calls that ran out of attempts")
	bt.AddRow("3 attempts, no budget", fmt.Sprintf("%.2f", without.amplification), without.stats.Retries, without.stats.BudgetDenied, without.stats.Exhausted)
	bt.AddRow("3 attempts, budget 10% of requests + 10 per 10 s", fmt.Sprintf("%.2f", with.amplification), with.stats.Retries, with.stats.BudgetDenied, with.stats.Exhausted)

	top := counts[len(counts)-1]
	find := func(j resilience.Jitter) resilStormPoint {
		for _, p := range points {
			if p.jitter == j && p.clients == top {
				return p
			}
		}
		return resilStormPoint{}
	}
	none, full, equal, dec := find(resilience.JitterNone), find(resilience.JitterFull), find(resilience.JitterEqual), find(resilience.JitterDecorrelated)
	return &lab.Result{
		Tables: []*lab.Table{t, bt},
		Charts: []*lab.Chart{callsChart, timeChart},
		Notes: []string{
			fmt.Sprintf("Published (AWS Architecture Blog, \"Exponential Backoff and Jitter\", 2015): without jitter, contending clients retry in lock step and most calls collide; full and decorrelated jitter cut the calls by more than half, equal jitter a little less, and no-jitter also takes longer. Here, with %d clients: no jitter %.0f calls, full %.0f (%.0f%% fewer), equal %.0f (%.0f%% fewer), decorrelated %.0f (%.0f%% fewer) — %s",
				top, none.calls, full.calls, 100*(1-full.calls/none.calls), equal.calls, 100*(1-equal.calls/none.calls), dec.calls, 100*(1-dec.calls/none.calls),
				resilAgree(full.calls < none.calls/2 && dec.calls < none.calls/2, "agreeing that full and decorrelated jitter more than halve the work.", "which does not reproduce the published halving.")),
			fmt.Sprintf("The post also ranks the jittered strategies: equal jitter does slightly more work than full jitter and takes much longer (here %.0f vs %.0f calls, %v vs %v: %s); full jitter does less work than decorrelated but takes slightly more time (here %.0f vs %.0f calls, %v vs %v: %s). Our contention model is a %v exclusive write (the first attempt wins, overlapping ones fail), not the post's simulator, so only the shape is comparable. No jitter completes last by far (%v): clients that collide once retry in lock step and collide again.",
				equal.calls, full.calls, equal.done, full.done,
				resilAgree(equal.done > full.done, "agrees on time", "disagrees on time"),
				full.calls, dec.calls, full.done, dec.done,
				resilAgree(full.calls < dec.calls, "agrees", "disagrees: decorrelated jitter wins on both counts in this model"),
				resilWriteTime, none.done),
			fmt.Sprintf("Retry budget: without it every failed request makes 3 attempts during the outage (%.2f per request: the fleet triples the load on a dependency that is already down); with a budget of 10%% the load stays at %.2f per request, the budget refusing %d retries. The cost is that during the outage almost no request is retried — which is right when the whole dependency is down.",
				without.amplification, with.amplification, with.stats.BudgetDenied),
			"Run, not modelled: every client and every request is a goroutine process running resilience.Retry.Execute — its backoff and jitter, its attempt limit and its Budget — with Sleep, Now and Rand on the engine's virtual time and a seeded stream. Modelled: the contended resource (an exclusive write of 1 ms) and the backend (it answers after 5 ms, with an error during the outage).",
		},
	}, ctx.Err()
}

func resilAgree(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}

type resilHedgeResult struct {
	name     string
	lat      sim.Summary
	extra    float64 // hedges sent per request
	wins     uint64  // requests answered by the hedge
	requests int
	slow     int // requests slower than resilHedgeCut
}

// The hedging service: 99% of requests are log-normal with median 4 ms,
// 1% with median 500 ms — a tail short enough that the slowest request of
// a run ends within about two seconds of real time.
const (
	resilHedgeFast     = 4 * time.Millisecond
	resilHedgeSlow     = 500 * time.Millisecond
	resilHedgeSlowProb = 0.01
	resilHedgeFixed    = 10 * time.Millisecond // the paper's delay
	// resilHedgeCut separates the modes: a fast request ends far below it
	// (its p99.99 is about 21 ms), a slow one far above (its p1 is about
	// 150 ms).
	resilHedgeCut = 100 * time.Millisecond
)

// resilHedgeService is a fake replica on real time: it sleeps a latency
// drawn from the long-tailed distribution, or until its caller cancels.
type resilHedgeService struct {
	mu   sync.Mutex
	dist sim.Dist // guarded by mu
}

func newResilHedgeService(env *lab.Env) (*resilHedgeService, error) {
	rnd := env.Rand(300)
	fast, err := sim.NewLogNormal(rnd, resilHedgeFast, 0.45)
	if err != nil {
		return nil, err
	}
	slow, err := sim.NewLogNormal(rnd, resilHedgeSlow, 0.5)
	if err != nil {
		return nil, err
	}
	dist, err := sim.NewBimodal(rnd, fast, slow, resilHedgeSlowProb)
	if err != nil {
		return nil, err
	}
	return &resilHedgeService{dist: dist}, nil
}

func (s *resilHedgeService) call(ctx context.Context) (int, error) {
	s.mu.Lock()
	d := s.dist.Sample()
	s.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return 1, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// resilHedging sends n requests at rate/s (Poisson arrivals, open loop)
// through each hedging policy — resilience.Hedge.Execute itself, on real
// time — to the fake service, one policy after the other.
func resilHedging(ctx context.Context, env *lab.Env, n int, rate float64) ([]resilHedgeResult, error) {
	svc, err := newResilHedgeService(env)
	if err != nil {
		return nil, err
	}
	unlimited := func() (*resilience.Budget, error) { return resilience.NewBudget(1, resilience.BudgetOptions{}) }
	type policy struct {
		name string
		opts func() (resilience.HedgeOptions, error)
	}
	policies := []policy{
		{"no hedging", nil},
		{fmt.Sprintf("hedge after %v (the paper's delay)", resilHedgeFixed), func() (resilience.HedgeOptions, error) {
			b, err := unlimited()
			return resilience.HedgeOptions{Delay: resilHedgeFixed, Budget: b}, err
		}},
		{"hedge after observed p95", func() (resilience.HedgeOptions, error) {
			b, err := unlimited()
			return resilience.HedgeOptions{Budget: b}, err
		}},
		{"hedge after observed p95, budget 5% (the default)", func() (resilience.HedgeOptions, error) { return resilience.HedgeOptions{}, nil }},
	}
	var out []resilHedgeResult
	for i, p := range policies {
		call := svc.call
		var h *resilience.Hedge[int]
		if p.opts != nil {
			o, err := p.opts()
			if err != nil {
				return nil, err
			}
			if h, err = resilience.NewHedge[int](o); err != nil {
				return nil, err
			}
			call = func(ctx context.Context) (int, error) { return h.Execute(ctx, svc.call) }
		}
		arrivals, err := sim.NewPoisson(env.Rand(uint64(310+i)), rate)
		if err != nil {
			return nil, err
		}
		var (
			mu   sync.Mutex
			rec  = sim.NewRecorder() // guarded by mu
			slow int                 // guarded by mu
			wg   sync.WaitGroup
		)
		start := time.Now()
		var at time.Duration
		sent := 0
		for range n {
			at += arrivals.Next()
			if d := at - time.Since(start); d > 0 {
				time.Sleep(d)
			}
			if ctx.Err() != nil {
				break
			}
			sent++
			wg.Go(func() {
				t0 := time.Now()
				_, _ = call(ctx)
				took := time.Since(t0)
				mu.Lock()
				rec.Record(took)
				if took > resilHedgeCut {
					slow++
				}
				mu.Unlock()
			})
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r := resilHedgeResult{name: p.name, lat: rec.Summary(), requests: sent, slow: slow}
		if h != nil {
			st := h.Stats()
			r.extra, r.wins = float64(st.Hedges)/float64(max(sent, 1)), st.HedgeWins
		}
		out = append(out, r)
	}
	return out, nil
}

func runResilHedging(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	n, rate := env.Scale(6000, 1000), 2000.0
	results, err := resilHedging(ctx, env, n, rate)
	if err != nil {
		return nil, err
	}
	t := lab.NewTable(fmt.Sprintf("%d requests per policy at %.0f/s on real time; service: %.0f%% log-normal (median %v, σ 0.45), %.0f%% log-normal (median %v, σ 0.5)",
		n, rate, 100*(1-resilHedgeSlowProb), resilHedgeFast, 100*resilHedgeSlowProb, resilHedgeSlow),
		"policy", "p50", "p99", "p99.9", fmt.Sprintf("slower than %v", resilHedgeCut), "extra requests", "answered by the hedge")
	for _, r := range results {
		t.AddRow(r.name, r.lat.P50, r.lat.P99, r.lat.P999, r.slow, fmt.Sprintf("%.1f%%", 100*r.extra), r.wins)
	}
	none, fixed, p95, budget := results[0], results[1], results[2], results[3]
	return &lab.Result{
		Tables: []*lab.Table{t},
		Notes: []string{
			fmt.Sprintf("Published (Dean and Barroso, \"The Tail at Scale\", CACM 2013): in a BigTable benchmark, hedging after 10 ms cut the 99.9th-percentile latency of reading 1,000 keys from 1,800 ms to 74 ms while sending just 2%% more requests. Here, on a service whose p99.9 is %v without hedging, a hedge after %v gives p99.9 %v with %.1f%% more requests; at the observed p95 (this package's default), p99.9 %v and p99 %v with %.1f%% more — %s",
				none.lat.P999, resilHedgeFixed, fixed.lat.P999, 100*fixed.extra, p95.lat.P999, p95.lat.P99, 100*p95.extra,
				resilAgree(fixed.lat.P999*10 < none.lat.P999 && fixed.extra < 0.1, "the same order of cut (>10×) for a few percent of extra load (under 10%), agreeing with the paper.", "which does not reproduce the paper's cut of more than 10× for a few percent of load.")),
			fmt.Sprintf("The default hedge budget (5%% of requests + 10 per 10 s) caps the extra load at %.1f%% with p99.9 %v (%v without the budget). The p95 rule alone spends about 5%% plus whatever the machine's scheduling adds to the fast mode, so the budget can bind, and when it refuses it refuses the hedges of slow requests as well as of fast ones: %s",
				100*budget.extra, budget.lat.P999, p95.lat.P999,
				resilAgree(budget.lat.P999 > 2*p95.lat.P999, "here it did, and the p99.9 paid for the cap.", "here the cap cost nothing at p99.9.")),
			"Run on real time, not modelled: resilience.Hedge.Execute — its goroutines, timers, LatencyTracker and Budget — calls a fake replica that sleeps a sampled latency and stops when cancelled, so the loser of each race is cancelled as in production. Hedge cannot run on the simulator's virtual time because it starts goroutines and waits on real timers, so the slow mode is shortened to a median of 500 ms (so that each policy takes a few seconds), and the numbers vary between runs: the scheduler of a shared machine adds to the fast mode. Modelled: each replica is independent and not queued (the extra few percent of load do not slow it), and requests are single calls rather than the paper's 1,000-key fan-out.",
		},
	}, ctx.Err()
}

type resilBulkheadResult struct {
	name                     string
	healthy                  sim.Summary
	healthyErrors, slowShed  float64
	peakThreads, slowThreads int
}

// resilBulkheadVariants: the caller's threads for its two dependencies.
var resilBulkheadVariants = []string{
	"shared pool of 40 threads, queued",
	"one shared Bulkhead of 40, fail fast",
	"a Bulkhead of 20 per dependency, fail fast",
}

// resilBulkheads: a caller at 200 req/s, half to a healthy dependency
// (10 ms), half to one that turns slow (1 s) at 2 s. Every request is a
// process; the calls go through resilience.Bulkhead (Guarded) for the
// second and third variants, through a modelled queued pool for the first.
func resilBulkheads(env *lab.Env, total time.Duration) ([]resilBulkheadResult, error) {
	var out []resilBulkheadResult
	for variant, name := range resilBulkheadVariants {
		var e sim.Engine
		r := newResilProcs(&e)
		arrivals, err := sim.NewPoisson(env.Rand(400), 200)
		if err != nil {
			return nil, err
		}
		pick := env.Rand(401)
		work, err := sim.NewExponential(env.Rand(402), 10*time.Millisecond)
		if err != nil {
			return nil, err
		}
		const slowFrom = 2 * time.Second
		pool := &resilThreads{r: r, cap: 40, maxQueue: 1 << 30}
		shared, err := resilience.NewBulkhead(40, resilience.BulkheadOptions{Name: "shared", Now: r.clock})
		if err != nil {
			return nil, err
		}
		perDep, err := resilience.NewBulkheads(20, resilience.BulkheadOptions{Now: r.clock})
		if err != nil {
			return nil, err
		}
		rec := sim.NewRecorder()
		var healthyReq, healthyErr, slowReq, slowShed, busy, peak, slowBusy, slowPeak int
		request := func() {
			start := e.Now()
			toSlow := pick.IntN(2) == 0
			measured := start >= slowFrom
			latency := work.Sample()
			if toSlow && start >= slowFrom {
				latency = time.Second
			}
			call := func(ctx context.Context) (resilUnit, error) {
				busy++
				peak = max(peak, busy)
				if toSlow {
					slowBusy++
					slowPeak = max(slowPeak, slowBusy)
				}
				err := r.Sleep(ctx, latency)
				busy--
				if toSlow {
					slowBusy--
				}
				return resilUnit{}, err
			}
			var err error
			switch variant {
			case 0:
				if pool.acquire() {
					_, err = call(context.Background())
					pool.release()
				} else {
					err = errResilStopped
				}
			case 1:
				_, err = resilience.Guarded[resilUnit](shared).Execute(context.Background(), call)
			default:
				dep := "healthy"
				if toSlow {
					dep = "slow"
				}
				_, err = resilience.Guarded[resilUnit](perDep.For(dep)).Execute(context.Background(), call)
			}
			if !measured || errors.Is(err, errResilStopped) {
				return
			}
			if toSlow {
				slowReq++
				if err != nil {
					slowShed++
				}
				return
			}
			healthyReq++
			if err != nil {
				healthyErr++
				return
			}
			rec.Record(e.Now() - start)
		}
		var arrive func()
		arrive = func() {
			r.Go(request)
			if next := e.Now() + arrivals.Next(); next < total {
				e.At(next, arrive)
			}
		}
		e.Schedule(0, arrive)
		if err := r.runAll(); err != nil {
			return nil, err
		}
		out = append(out, resilBulkheadResult{
			name: name, healthy: rec.Summary(),
			healthyErrors: float64(healthyErr) / float64(max(healthyReq, 1)), slowShed: float64(slowShed) / float64(max(slowReq, 1)),
			peakThreads: peak, slowThreads: slowPeak,
		})
	}
	return out, nil
}

func runResilBulkheads(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	total := time.Duration(env.Scale(30, 10)) * time.Second
	results, err := resilBulkheads(env, total)
	if err != nil {
		return nil, err
	}
	t := lab.NewTable(fmt.Sprintf("200 req/s for %v, half to a healthy dependency (10 ms), half to one that takes 1 s from t=2 s", total),
		"threads", "healthy p50", "healthy p99", "healthy calls rejected", "slow calls rejected", "threads held by the slow dependency (peak)")
	for _, r := range results {
		t.AddRow(r.name, r.healthy.P50, r.healthy.P99, fmt.Sprintf("%.1f%%", 100*r.healthyErrors), fmt.Sprintf("%.1f%%", 100*r.slowShed), r.slowThreads)
	}
	queued, shared, isolated := results[0], results[1], results[2]
	return &lab.Result{
		Tables: []*lab.Table{t},
		Notes: []string{
			fmt.Sprintf("Agrees with the guide's \"fault isolation\": with one shared pool the slow dependency holds %d of the 40 threads and calls to the healthy dependency queue behind it — their p99 is %v. A shared Bulkhead that fails fast instead of queueing keeps their latency but rejects %.0f%% of them: the slow dependency holds %d of its 40 slots. With a Bulkhead per dependency the slow one can hold only its own 20 slots, %.0f%% of its calls are rejected at once, and the healthy dependency keeps a p99 of %v with %.1f%% rejected.",
				queued.slowThreads, queued.healthy.P99, 100*shared.healthyErrors, shared.slowThreads, 100*isolated.slowShed, isolated.healthy.P99, 100*isolated.healthyErrors),
			"The cost: the bulkheads split capacity, so a burst to one healthy dependency beyond its 20 slots is rejected even while the other pool idles.",
			"Run, not modelled: every request is a goroutine process on the engine's virtual time calling through resilience.Guarded over a resilience.Bulkhead (one shared of 40) or resilience.Bulkheads (20 per dependency), fail fast. Modelled: the queued shared pool, a 40-thread FIFO — a Bulkhead with a wait queue blocks on a channel and a real timer, which the virtual-time runtime cannot drive — and the dependencies, which are virtual sleeps.",
		},
	}, ctx.Err()
}

type resilShedPoint struct {
	load               float64
	variant            int     // index in resilShedVariants
	goodput            float64 // answers within the client timeout per second
	p99                time.Duration
	rejected, timedOut float64
	retryAfter         bool // every 503 carried a Retry-After header
	limit              int
}

// resilShedVariants: no shedding, then this package's LoadShedder with
// each algorithm.
var resilShedVariants = []string{"none", "AIMD, target 50 ms", "gradient"}

const (
	resilShedServers = 8
	resilShedWork    = 10 * time.Millisecond
	resilShedTimeout = 500 * time.Millisecond
)

// resilShed offers load × capacity to an 8-server station (capacity 800/s)
// whose clients give up after 500 ms, with or without this package's
// LoadShedder.Middleware in front of the handler. With a shedder every
// request is a process that calls the middleware's ServeHTTP; without one
// the station is driven by callbacks (there is no policy to run, and a
// process per queued request would pile up without bound).
func resilShed(env *lab.Env, load float64, variant int, total time.Duration) (resilShedPoint, error) {
	var e sim.Engine
	r := newResilProcs(&e)
	capacity := resilShedServers / resilShedWork.Seconds()
	st, err := sim.NewStation(&e, resilShedServers, 1)
	if err != nil {
		return resilShedPoint{}, err
	}
	arrivals, err := sim.NewPoisson(env.Rand(500), load*capacity)
	if err != nil {
		return resilShedPoint{}, err
	}
	work, err := sim.NewExponential(env.Rand(501), resilShedWork)
	if err != nil {
		return resilShedPoint{}, err
	}
	warm := total / 5
	rec := sim.NewRecorder()
	var offered, good, rejected, late, withRetryAfter int
	answered := func(measured bool, took time.Duration) {
		if !measured {
			return
		}
		if took > resilShedTimeout {
			late++
			return
		}
		good++
		rec.Record(took)
	}
	var shed *resilience.LoadShedder
	var serve func(measured bool)
	if variant == 0 {
		serve = func(measured bool) {
			st.Submit(work.Sample(), func(_, took time.Duration) { answered(measured, took) })
		}
	} else {
		algo := resilience.ShedAIMD
		if variant == 2 {
			algo = resilience.ShedGradient
		}
		if shed, err = resilience.NewLoadShedder(resilience.ShedderOptions{Algorithm: algo, InitialLimit: 20, MaxLimit: 400, LatencyTarget: 50 * time.Millisecond, Now: r.clock}); err != nil {
			return resilShedPoint{}, err
		}
		h := shed.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if !r.wait(context.Background(), func(wake func()) { st.Submit(work.Sample(), func(_, _ time.Duration) { wake() }) }) {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusOK)
		}))
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		serve = func(measured bool) {
			r.Go(func() {
				start := e.Now()
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if r.stopping {
					return
				}
				if w.Code == http.StatusServiceUnavailable {
					if measured {
						rejected++
						if w.Header().Get("Retry-After") != "" {
							withRetryAfter++
						}
					}
					return
				}
				answered(measured, e.Now()-start)
			})
		}
	}
	var arrive func()
	arrive = func() {
		measured := e.Now() >= warm
		if measured {
			offered++
		}
		serve(measured)
		if next := e.Now() + arrivals.Next(); next < total {
			e.At(next, arrive)
		}
	}
	e.Schedule(0, arrive)
	if err := r.runAll(); err != nil {
		return resilShedPoint{}, err
	}
	p := resilShedPoint{load: load, variant: variant, goodput: float64(good) / (total - warm).Seconds(), p99: rec.Summary().P99,
		rejected: float64(rejected) / float64(max(offered, 1)), timedOut: float64(late) / float64(max(offered, 1)),
		retryAfter: withRetryAfter == rejected}
	if shed != nil {
		p.limit = shed.Stats().Limit
	}
	return p, nil
}

func resilShedAll(env *lab.Env, loads []float64, total time.Duration) ([]resilShedPoint, error) {
	var out []resilShedPoint
	for variant := range resilShedVariants {
		for _, l := range loads {
			p, err := resilShed(env, l, variant, total)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
	}
	return out, nil
}

func runResilShedding(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	loads := []float64{0.5, 0.8, 1.0, 1.2, 1.5, 2.0}
	if env.Quick {
		loads = []float64{0.8, 1.5, 2.0}
	}
	total := time.Duration(env.Scale(20, 4)) * time.Second
	points, err := resilShedAll(env, loads, total)
	if err != nil {
		return nil, err
	}
	capacity := resilShedServers / resilShedWork.Seconds()
	t := lab.NewTable(fmt.Sprintf("%d servers × %v mean work (capacity %.0f/s), clients give up after %v, %v per point", resilShedServers, resilShedWork, capacity, resilShedTimeout, total),
		"shedding", "offered load", "goodput/s", "goodput / capacity", "p99 of good answers", "rejected (503)", "answered too late", "final limit")
	chart := &lab.Chart{Title: "goodput vs offered load", XLabel: "offered load (× capacity)", YLabel: "answers within the timeout (per second)"}
	series := make([]lab.Series, len(resilShedVariants))
	for i, name := range resilShedVariants {
		series[i].Name = name
	}
	allRetryAfter := true
	for _, p := range points {
		t.AddRow(resilShedVariants[p.variant], fmt.Sprintf("%.1f×", p.load), fmt.Sprintf("%.0f", p.goodput), fmt.Sprintf("%.2f", p.goodput/capacity), p.p99,
			fmt.Sprintf("%.1f%%", 100*p.rejected), fmt.Sprintf("%.1f%%", 100*p.timedOut), p.limit)
		s := &series[p.variant]
		s.X, s.Y = append(s.X, p.load), append(s.Y, p.goodput)
		allRetryAfter = allRetryAfter && p.retryAfter
	}
	chart.Series = series
	top := loads[len(loads)-1]
	var at [3]resilShedPoint
	for _, p := range points {
		if p.load == top {
			at[p.variant] = p
		}
	}
	none, with, grad := at[0], at[1], at[2]
	var at80 [3]resilShedPoint // the highest load below capacity
	for _, p := range points {
		if p.load < 1 && p.load >= at80[p.variant].load {
			at80[p.variant] = p
		}
	}
	return &lab.Result{
		Tables: []*lab.Table{t},
		Charts: []*lab.Chart{chart},
		Notes: []string{
			fmt.Sprintf("Past saturation an unprotected server queues everything: at %.1f× capacity its goodput falls to %.0f/s (%.0f%% of capacity) because it spends its time on requests whose clients already gave up (%.0f%% answered too late). With this package's LoadShedder (AIMD concurrency limit, 50 ms latency target) it refuses %.0f%% at once with a 503 and keeps a goodput of %.0f/s (%.0f%% of capacity) with a p99 of %v.",
				top, none.goodput, 100*none.goodput/capacity, 100*none.timedOut, 100*with.rejected, with.goodput, 100*with.goodput/capacity, with.p99),
			fmt.Sprintf("The gradient algorithm (no latency target: it compares each latency with its own long-run average) keeps %.0f/s (%.0f%% of capacity) at %.1f× with a p99 of %v, refusing %.0f%%. Its cost shows below saturation: with exponential service times single latencies vary widely around the average, its limit stays near the server count, and it refuses %.0f%% of requests at %.1f× load, where AIMD refuses %.0f%%.",
				grad.goodput, 100*grad.goodput/capacity, top, grad.p99, 100*grad.rejected, 100*at80[2].rejected, at80[2].load, 100*at80[1].rejected),
			"The p99 of admitted requests sits above the 50 ms target: AIMD keeps probing upwards until a slow answer cuts the limit, so the queue oscillates around the knee. This is the guide's \"find breaking points\": the breaking point of a queueing server is a cliff, not a plateau, unless it sheds.",
			fmt.Sprintf("Run, not modelled: every request to a shedding server is a goroutine process calling resilience.LoadShedder.Middleware's ServeHTTP on the engine's virtual time — the middleware admits or answers 503 (%s), and measures each admitted request's latency on the engine's clock. Modelled: the server behind it is an internal/sim Station (FIFO, no cancellation of abandoned requests) and clients that give up after %v.",
				resilAgree(allRetryAfter, "every 503 carried its Retry-After header", "some 503s lacked a Retry-After header"), resilShedTimeout),
		},
	}, ctx.Err()
}
