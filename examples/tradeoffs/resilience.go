package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sysdesign-go/sysdesign/internal/lab"
	"github.com/sysdesign-go/sysdesign/internal/sim"
	"github.com/sysdesign-go/sysdesign/resilience"
)

// The resilience experiments run on virtual time (internal/sim). Where a
// policy takes time they drive this package's real code with the engine's
// clock: the shared circuit breaker (MemoryBreakerStore, Allow/Done), the
// Backoff delays, the retry Budget, the LatencyTracker behind hedging, the
// Bulkhead and the LoadShedder. What is modelled instead — each note says
// so — is the waiting itself: a timeout is an engine event, not a context,
// and a hedge is a second latency sample, not a goroutine.
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
			Run:     runResilHedging,
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
	errResilTimeout  = errors.New("timeout")
	errResilRejected = errors.New("rejected: pool and queue full")
)

// resilPool is a service's thread pool with a bounded FIFO wait queue: a
// thread is held for the whole of a request, including the downstream
// calls it waits for.
type resilPool struct {
	e        *sim.Engine
	cap, max int
	busy     int
	queue    []func()
	peak     int
}

func (p *resilPool) acquire(run func()) bool {
	if p.busy < p.cap {
		p.busy++
		p.peak = max(p.peak, p.busy)
		run()
		return true
	}
	if len(p.queue) >= p.max {
		return false
	}
	p.queue = append(p.queue, run)
	return true
}

func (p *resilPool) release() {
	p.busy--
	if len(p.queue) > 0 {
		next := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		p.busy++
		p.peak = max(p.peak, p.busy)
		next()
	}
}

// resilCallTimeout sends a request and answers cb once: with the response,
// or with errResilTimeout after timeout (0: wait forever). The callee is
// not told: like a real server it keeps working on abandoned requests.
func resilCallTimeout(e *sim.Engine, timeout time.Duration, send func(cb func(error)), cb func(error)) {
	finished := false
	if timeout > 0 {
		e.Schedule(timeout, func() {
			if !finished {
				finished = true
				cb(errResilTimeout)
			}
		})
	}
	send(func(err error) {
		if !finished {
			finished = true
			cb(err)
		}
	})
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

func resilCascade(env *lab.Env, v resilCascadeVariant, total, slowFrom, slowTo time.Duration) (resilCascadeResult, error) {
	var e sim.Engine
	arrivals, err := sim.NewPoisson(env.Rand(1), resilCascadeRate)
	if err != nil {
		return resilCascadeResult{}, err
	}
	work, err := sim.NewExponential(env.Rand(2), 20*time.Millisecond)
	if err != nil {
		return resilCascadeResult{}, err
	}
	a := &resilPool{e: &e, cap: resilCascadeThreads, max: resilCascadeQueue}
	b := &resilPool{e: &e, cap: resilCascadeThreads, max: resilCascadeQueue}
	c := &resilPool{e: &e, cap: resilCascadeCThreads, max: 1000}
	newBreaker := func(name string) (*resilience.SharedBreaker[struct{}], error) {
		return resilience.NewSharedBreaker[struct{}](resilience.NewMemoryBreakerStore(), resilience.SharedBreakerOptions{
			Name:  name,
			Rules: resilience.BreakerRules{Window: 10 * time.Second, MinRequests: 20, FailureRate: 0.5, Timeout: 2 * time.Second},
			Now:   e.Clock(),
		})
	}
	var brAB, brBC *resilience.SharedBreaker[struct{}]
	if v.breaker {
		if brAB, err = newBreaker("a-b"); err != nil {
			return resilCascadeResult{}, err
		}
		if brBC, err = newBreaker("b-c"); err != nil {
			return resilCascadeResult{}, err
		}
	}
	ctx := context.Background()
	inSlow := func() bool { return e.Now() >= slowFrom && e.Now() < slowTo }
	res := resilCascadeResult{variant: v.name, threadsA: lab.Series{Name: v.name}}
	rec := sim.NewRecorder()
	errs := 0

	// protected calls target through br (if any) with the hop's timeout.
	protected := func(br *resilience.SharedBreaker[struct{}], timeout time.Duration, target func(cb func(error)), cb func(error)) {
		if !v.timeouts {
			timeout = 0
		}
		if br == nil {
			resilCallTimeout(&e, timeout, target, cb)
			return
		}
		gen, err := br.Allow(ctx)
		if err != nil {
			cb(err)
			return
		}
		start := e.Now()
		resilCallTimeout(&e, timeout, target, func(err error) {
			br.Done(ctx, gen, e.Now()-start, err)
			cb(err)
		})
	}
	serveC := func(cb func(error)) {
		if inSlow() {
			res.callsToC++
		}
		if !c.acquire(func() {
			d := work.Sample()
			if inSlow() {
				d = resilCascadeSlowWork
			}
			e.Schedule(d, func() { c.release(); cb(nil) })
		}) {
			cb(errResilRejected)
		}
	}
	serveB := func(cb func(error)) {
		if !b.acquire(func() {
			e.Schedule(time.Millisecond, func() {
				protected(brBC, resilCascadeTimeoutC, serveC, func(err error) {
					if err != nil && v.fallback {
						err = nil // B answers with its fallback (a default, a cached value)
						if inSlow() {
							res.fallback++
						}
					}
					b.release()
					cb(err)
				})
			})
		}) {
			cb(errResilRejected)
		}
	}
	var arrive func()
	arrive = func() {
		start := e.Now()
		measured := inSlow()
		done := func(err error) {
			if measured {
				rec.Record(e.Now() - start)
				res.requests++
				if err != nil {
					errs++
				}
			}
		}
		if !a.acquire(func() {
			e.Schedule(time.Millisecond, func() {
				protected(brAB, resilCascadeTimeoutB, serveB, func(err error) {
					a.release()
					done(err)
				})
			})
		}) {
			done(errResilRejected)
		}
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
	if err := e.Run(sim.Forever); err != nil {
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
		"protection", "A p50", "A p99", "error rate", "A threads peak", "A threads mean", "B threads peak", "B threads mean", "calls reaching C", "answered by fallback")
	chart := &lab.Chart{Title: "threads busy in A over time (C slow between the dashed bounds of the table)", XLabel: "time (s)", YLabel: "threads busy in A"}
	for _, r := range results {
		t.AddRow(r.variant, r.latency.P50, r.latency.P99, fmt.Sprintf("%.1f%%", 100*r.errorRate), r.peakA, fmt.Sprintf("%.1f", r.meanA),
			r.peakB, fmt.Sprintf("%.1f", r.meanB), r.callsToC, r.fallback)
		chart.Series = append(chart.Series, r.threadsA)
	}
	none, to1, br, fb := results[0], results[1], results[2], results[3]
	return &lab.Result{
		Tables: []*lab.Table{t},
		Charts: []*lab.Chart{chart},
		Notes: []string{
			fmt.Sprintf("Agrees with the guide: with no protection the slowness of C climbs the chain — B's threads (peak %d of %d) and then A's (peak %d) are all held waiting, A's p99 reaches %v and %.0f%% of A's requests fail (A's queue overflows, so most are refused at once: hence A's p50 of about zero) although A and B themselves are healthy. That is the cascade failure.",
				none.peakB, resilCascadeThreads, none.peakA, none.latency.P99, 100*none.errorRate),
			fmt.Sprintf("Timeouts alone bound the wait (A p99 %v) and free B's threads after %v, but every call still goes to C: %d calls reached C during the slow phase, which only deepens its backlog; %.0f%% of requests fail.",
				to1.latency.P99, resilCascadeTimeoutC, to1.callsToC, 100*to1.errorRate),
			fmt.Sprintf("A circuit breaker (this package's SharedBreaker on a MemoryBreakerStore, opening at ≥50%% failures over ≥20 calls in 10 s, 2 s open, on the engine's clock) fails fast: calls reaching C drop from %d to %d, B's mean busy threads from %.1f to %.1f, A's p50 to %v. Errors stay (%.0f%%): the breaker protects the system, not the request.",
				to1.callsToC, br.callsToC, to1.meanB, br.meanB, br.latency.P50, 100*br.errorRate),
			fmt.Sprintf("With a fallback at B the user sees %.1f%% errors and a p99 of %v: \"Fallback Mechanisms: Alternative responses\" turn the fast failures into degraded answers (%d of them).",
				100*fb.errorRate, fb.latency.P99, fb.fallback),
			"Modelled, not run: timeouts are engine events (the callee keeps working on abandoned requests, as a real server does), threads are counted slots with a FIFO queue of 200. The breaker is the real policy; gobreaker's own breaker reads time.Now and cannot run on virtual time, so the experiment uses the package's store-backed breaker, whose rules are the same on Redis.",
		},
	}, ctx.Err()
}

// resilContention is the AWS "Exponential Backoff and Jitter" setup:
// clients all want one write to a resource under optimistic concurrency
// at the same moment; a write succeeds if no other write committed in the
// last resilWriteTime, else the client backs off and retries. It returns
// the calls made and when the last client finished.
func resilContention(jitter resilience.Jitter, clients int, r *rand.Rand) (calls int, done time.Duration, err error) {
	bo := resilience.Backoff{Base: 5 * time.Millisecond, Max: 2 * time.Second, Jitter: jitter}
	if err := bo.Validate(); err != nil {
		return 0, 0, err
	}
	var e sim.Engine
	lockedUntil := time.Duration(-1)
	remaining := clients
	var attempt func(retry int, prev time.Duration)
	attempt = func(retry int, prev time.Duration) {
		calls++
		if e.Now() >= lockedUntil {
			lockedUntil = e.Now() + resilWriteTime
			remaining--
			if remaining == 0 {
				done = e.Now() + resilWriteTime
			}
			return
		}
		d := bo.Delay(retry, prev, r.Float64())
		e.Schedule(d, func() { attempt(retry+1, d) })
	}
	for range clients {
		e.Schedule(0, func() { attempt(1, 0) })
	}
	return calls, done, e.Run(sim.Forever)
}

const resilWriteTime = time.Millisecond

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
			r := env.Rand(uint64(100 + ji))
			var calls int
			var done time.Duration
			for range runs {
				c, d, err := resilContention(j, n, r)
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

// resilOutage sends rate requests/s for total to a backend that fails
// every call between from and to; each request retries up to 3 attempts
// with full jitter, with or without a shared Budget (10% + 10/window). It
// returns backend attempts per request during the outage.
func resilOutage(env *lab.Env, withBudget bool, rate float64, total, from, to time.Duration) (amplification float64, err error) {
	var e sim.Engine
	arrivals, err := sim.NewPoisson(env.Rand(200), rate)
	if err != nil {
		return 0, err
	}
	jit := env.Rand(201)
	bo := resilience.Backoff{Base: 10 * time.Millisecond, Max: time.Second}
	var budget *resilience.Budget
	if withBudget {
		if budget, err = resilience.NewBudget(resilience.BudgetOptions{Ratio: 0.1, Now: e.Clock()}); err != nil {
			return 0, err
		}
	}
	clock := e.Clock()
	var requests, attempts int
	down := func() bool { return e.Now() >= from && e.Now() < to }
	var try func(attempt int, prev time.Duration)
	try = func(attempt int, prev time.Duration) {
		if down() {
			attempts++
		}
		e.Schedule(5*time.Millisecond, func() { // the backend's answer
			if !down() || attempt >= 3 {
				return
			}
			if budget != nil && !budget.TryExtraAt(clock()) {
				return
			}
			d := bo.Delay(attempt, prev, jit.Float64())
			e.Schedule(d, func() { try(attempt+1, d) })
		})
	}
	var arrive func()
	arrive = func() {
		if down() {
			requests++
		}
		if budget != nil {
			budget.RecordRequestAt(clock())
		}
		try(1, 0)
		if next := e.Now() + arrivals.Next(); next < total {
			e.At(next, arrive)
		}
	}
	e.Schedule(0, arrive)
	if err := e.Run(sim.Forever); err != nil {
		return 0, err
	}
	return float64(attempts) / float64(max(requests, 1)), nil
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
	t := lab.NewTable(fmt.Sprintf("Clients contending for one resource (base 5 ms, cap 2 s, write %v, mean of %d runs)", resilWriteTime, runs),
		"jitter", "clients", "total calls", "completion time", "calls vs no jitter")
	noJitter := map[int]float64{}
	callsChart := &lab.Chart{Title: "total calls vs contending clients", XLabel: "clients", YLabel: "calls"}
	timeChart := &lab.Chart{Title: "completion time vs contending clients", XLabel: "clients", YLabel: "time (s)"}
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
	bt := lab.NewTable(fmt.Sprintf("A 10 s outage: %.0f requests/s, up to 3 attempts each, full jitter", rate),
		"retries", "backend attempts per request during the outage")
	bt.AddRow("3 attempts, no budget", fmt.Sprintf("%.2f", without))
	bt.AddRow("3 attempts, budget 10% of requests + 10 per 10 s", fmt.Sprintf("%.2f", with))

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
			fmt.Sprintf("Retry budget: without it every failed request makes 3 attempts during the outage (%.2f per request: the fleet triples the load on a dependency that is already down); with a budget of 10%% the load stays at %.2f per request. The cost is that during the outage almost no request is retried — which is right when the whole dependency is down.", without, with),
			"Real code: resilience.Backoff.Delay computes every delay and resilience.Budget (on the engine's clock) grants every budgeted retry; the attempt loop itself is modelled on the engine because Retry.Execute sleeps on real timers.",
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
	name  string
	lat   sim.Summary
	extra float64 // hedges per request
}

// resilHedging draws n request latencies from a long-tailed service and
// applies each hedging policy to the same primaries.
func resilHedging(env *lab.Env, n int) ([]resilHedgeResult, error) {
	r := env.Rand(300)
	fast, err := sim.NewLogNormal(r, 4*time.Millisecond, 0.45)
	if err != nil {
		return nil, err
	}
	slow, err := sim.NewLogNormal(r, time.Second, 0.5)
	if err != nil {
		return nil, err
	}
	svc, err := sim.NewBimodal(r, fast, slow, 0.01)
	if err != nil {
		return nil, err
	}
	arrivals, err := sim.NewPoisson(env.Rand(301), 1000)
	if err != nil {
		return nil, err
	}
	primaries := make([]time.Duration, n)
	hedges := make([]time.Duration, n)
	at := make([]time.Duration, n)
	var t time.Duration
	for i := range n {
		primaries[i], hedges[i] = svc.Sample(), svc.Sample()
		t += arrivals.Next()
		at[i] = t
	}
	type policy struct {
		name     string
		fixed    time.Duration
		quantile float64
		budget   float64
	}
	policies := []policy{
		{"no hedging", 0, 0, 0},
		{"hedge after 10 ms (the paper's delay)", 10 * time.Millisecond, 0, 0},
		{"hedge after observed p95", 0, 0.95, 0},
		{"hedge after observed p95, budget 5%", 0, 0.95, 0.05},
	}
	var out []resilHedgeResult
	for _, p := range policies {
		rec := sim.NewRecorder()
		var tracker *resilience.LatencyTracker
		if p.quantile > 0 {
			if tracker, err = resilience.NewLatencyTracker(p.quantile, 1000); err != nil {
				return nil, err
			}
		}
		var budget *resilience.Budget
		if p.budget > 0 {
			if budget, err = resilience.NewBudget(resilience.BudgetOptions{Ratio: p.budget, MinPerWindow: 10}); err != nil {
				return nil, err
			}
		}
		sent := 0
		for i := range n {
			now := sim.Epoch.Add(at[i])
			if budget != nil {
				budget.RecordRequestAt(now)
			}
			lat := primaries[i]
			delay := time.Duration(-1)
			switch {
			case p.fixed > 0:
				delay = p.fixed
			case tracker != nil:
				if q, samples := tracker.Quantile(); samples >= 20 {
					delay = q
				} else {
					delay = 10 * time.Millisecond
				}
			}
			if delay >= 0 && lat > delay && (budget == nil || budget.TryExtraAt(now.Add(delay))) {
				sent++
				lat = min(lat, delay+hedges[i])
			}
			if tracker != nil {
				tracker.Record(lat)
			}
			rec.Record(lat)
		}
		out = append(out, resilHedgeResult{p.name, rec.Summary(), float64(sent) / float64(n)})
	}
	return out, nil
}

func runResilHedging(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	n := env.Scale(400_000, 20_000)
	results, err := resilHedging(env, n)
	if err != nil {
		return nil, err
	}
	t := lab.NewTable(fmt.Sprintf("%d requests; service: 99%% log-normal (median 4 ms, σ 0.45), 1%% log-normal (median 1 s, σ 0.5)", n),
		"policy", "p50", "p99", "p99.9", "extra requests")
	for _, r := range results {
		t.AddRow(r.name, r.lat.P50, r.lat.P99, r.lat.P999, fmt.Sprintf("%.1f%%", 100*r.extra))
	}
	none, fixed, p95, budget := results[0], results[1], results[2], results[3]
	return &lab.Result{
		Tables: []*lab.Table{t},
		Notes: []string{
			fmt.Sprintf("Published (Dean and Barroso, \"The Tail at Scale\", CACM 2013): in a BigTable benchmark, hedging after 10 ms cut the 99.9th-percentile latency of reading 1,000 keys from 1,800 ms to 74 ms while sending just 2%% more requests. Here, on a service whose p99.9 is %v without hedging, a hedge after 10 ms gives p99.9 %v with %.1f%% more requests; at the observed p95 (this package's default), p99.9 %v and p99 %v with %.1f%% more — %s",
				none.lat.P999, fixed.lat.P999, 100*fixed.extra, p95.lat.P999, p95.lat.P99, 100*p95.extra,
				resilAgree(fixed.lat.P999*10 < none.lat.P999 && fixed.extra < 0.05, "the same order of cut (>10×) for a few percent of load, agreeing with the paper.", "which does not reproduce the paper's cut.")),
			fmt.Sprintf("A hedge budget of 5%% caps the extra load at %.1f%% with p99.9 %v; the p95 rule alone already spends about 5%% plus the slow mode.", 100*budget.extra, budget.lat.P999),
			"Modelled: each hedge is an independent second latency sample, servers are not queued (the extra few percent of load do not slow them), and requests are single calls rather than the paper's 1,000-key fan-out. The p95 estimate is this package's LatencyTracker and the budget its Budget on the arrivals' virtual clock; Hedge.Execute itself runs goroutines and timers and is tested separately.",
		},
	}, ctx.Err()
}

type resilBulkheadResult struct {
	name                     string
	healthy                  sim.Summary
	healthyErrors, slowShed  float64
	peakThreads, slowThreads int
}

// resilBulkheads: a caller at 200 req/s, half to a healthy dependency
// (10 ms), half to one that turns slow (1 s) at 2 s. Shared: one pool of 40
// threads with a queue. Bulkheads: this package's Bulkhead of 20 per
// dependency, no queue (fail fast).
func resilBulkheads(env *lab.Env, total time.Duration) ([]resilBulkheadResult, error) {
	var out []resilBulkheadResult
	for _, isolated := range []bool{false, true} {
		var e sim.Engine
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
		shared := &resilPool{e: &e, cap: 40, max: 1 << 30}
		var heads [2]*resilience.Bulkhead
		for i := range heads {
			if heads[i], err = resilience.NewBulkhead(20, resilience.BulkheadOptions{Name: fmt.Sprintf("dep-%d", i)}); err != nil {
				return nil, err
			}
		}
		rec := sim.NewRecorder()
		var healthyReq, healthyErr, slowReq, slowShed, peak, slowPeak, slowBusy int
		var arrive func()
		arrive = func() {
			start := e.Now()
			toSlow := pick.IntN(2) == 0
			measured := start >= slowFrom
			latency := work.Sample()
			if toSlow && start >= slowFrom {
				latency = time.Second
			}
			finish := func(ok bool) {
				if !measured {
					return
				}
				if toSlow {
					slowReq++
					if !ok {
						slowShed++
					}
					return
				}
				healthyReq++
				if !ok {
					healthyErr++
					return
				}
				rec.Record(e.Now() - start)
			}
			if isolated {
				bh := heads[0]
				if toSlow {
					bh = heads[1]
				}
				if !bh.TryAcquire() {
					finish(false)
				} else {
					if toSlow {
						slowBusy++
						slowPeak = max(slowPeak, slowBusy)
					}
					peak = max(peak, heads[0].Stats().InUse+heads[1].Stats().InUse)
					e.Schedule(latency, func() {
						bh.Release()
						if toSlow {
							slowBusy--
						}
						finish(true)
					})
				}
			} else {
				shared.acquire(func() {
					if toSlow {
						slowBusy++
						slowPeak = max(slowPeak, slowBusy)
					}
					e.Schedule(latency, func() {
						if toSlow {
							slowBusy--
						}
						shared.release()
						finish(true)
					})
				})
				peak = shared.peak
			}
			if next := e.Now() + arrivals.Next(); next < total {
				e.At(next, arrive)
			}
		}
		e.Schedule(0, arrive)
		if err := e.Run(sim.Forever); err != nil {
			return nil, err
		}
		name := "shared pool of 40 threads, queued"
		if isolated {
			name = "bulkhead of 20 per dependency, fail fast"
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
		"threads", "healthy p50", "healthy p99", "healthy errors", "slow calls rejected", "threads held by the slow dependency (peak)")
	for _, r := range results {
		t.AddRow(r.name, r.healthy.P50, r.healthy.P99, fmt.Sprintf("%.1f%%", 100*r.healthyErrors), fmt.Sprintf("%.1f%%", 100*r.slowShed), r.slowThreads)
	}
	sh, bh := results[0], results[1]
	return &lab.Result{
		Tables: []*lab.Table{t},
		Notes: []string{
			fmt.Sprintf("Agrees with the guide's \"fault isolation\": with one shared pool the slow dependency holds %d of the 40 threads and calls to the healthy dependency queue behind it — their p99 is %v. With a bulkhead per dependency the slow one can hold only its own 20 threads, %.0f%% of its calls are rejected at once, and the healthy dependency keeps a p99 of %v.",
				sh.slowThreads, sh.healthy.P99, 100*bh.slowShed, bh.healthy.P99),
			"The cost: the bulkheads split capacity, so a burst to one healthy dependency beyond its 20 threads is rejected even while the other pool idles. Real code: resilience.Bulkhead (TryAcquire/Release) is the isolated pool; the shared pool is a modelled 40-thread FIFO.",
		},
	}, ctx.Err()
}

type resilShedPoint struct {
	load               float64
	variant            int     // index in resilShedVariants
	goodput            float64 // answers within the client timeout per second
	p99                time.Duration
	rejected, timedOut float64
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
// LoadShedder (AIMD, latency target 50 ms) in front.
func resilShed(env *lab.Env, load float64, variant int, total time.Duration) (resilShedPoint, error) {
	var e sim.Engine
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
	var shed *resilience.LoadShedder
	if variant > 0 {
		algo := resilience.ShedAIMD
		if variant == 2 {
			algo = resilience.ShedGradient
		}
		if shed, err = resilience.NewLoadShedder(resilience.ShedderOptions{Algorithm: algo, InitialLimit: 20, MaxLimit: 400, LatencyTarget: 50 * time.Millisecond, Now: e.Clock()}); err != nil {
			return resilShedPoint{}, err
		}
	}
	warm := total / 5
	rec := sim.NewRecorder()
	var offered, good, rejected, late int
	var arrive func()
	arrive = func() {
		measured := e.Now() >= warm
		if measured {
			offered++
		}
		if shed != nil && !shed.TryAcquire() {
			if measured {
				rejected++
			}
		} else {
			st.Submit(work.Sample(), func(_, took time.Duration) {
				if shed != nil {
					shed.Release(took, false)
				}
				if !measured {
					return
				}
				if took > resilShedTimeout {
					late++
					return
				}
				good++
				rec.Record(took)
			})
		}
		if next := e.Now() + arrivals.Next(); next < total {
			e.At(next, arrive)
		}
	}
	e.Schedule(0, arrive)
	if err := e.Run(sim.Forever); err != nil {
		return resilShedPoint{}, err
	}
	p := resilShedPoint{load: load, variant: variant, goodput: float64(good) / (total - warm).Seconds(), p99: rec.Summary().P99,
		rejected: float64(rejected) / float64(max(offered, 1)), timedOut: float64(late) / float64(max(offered, 1))}
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
	chart := &lab.Chart{Title: "goodput vs offered load", XLabel: "offered load (× capacity)", YLabel: "answers within the timeout per second"}
	series := make([]lab.Series, len(resilShedVariants))
	for i, name := range resilShedVariants {
		series[i].Name = name
	}
	for _, p := range points {
		t.AddRow(resilShedVariants[p.variant], fmt.Sprintf("%.1f×", p.load), fmt.Sprintf("%.0f", p.goodput), fmt.Sprintf("%.2f", p.goodput/capacity), p.p99,
			fmt.Sprintf("%.1f%%", 100*p.rejected), fmt.Sprintf("%.1f%%", 100*p.timedOut), p.limit)
		s := &series[p.variant]
		s.X, s.Y = append(s.X, p.load), append(s.Y, p.goodput)
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
			fmt.Sprintf("Past saturation an unprotected server queues everything: at %.1f× capacity its goodput falls to %.0f/s (%.0f%% of capacity) because it spends its time on requests whose clients already gave up (%.0f%% answered too late). With this package's LoadShedder (AIMD concurrency limit, 50 ms latency target, on the engine's clock via TryAcquire/Release) it refuses %.0f%% at once with a 503 and keeps a goodput of %.0f/s (%.0f%% of capacity) with a p99 of %v.",
				top, none.goodput, 100*none.goodput/capacity, 100*none.timedOut, 100*with.rejected, with.goodput, 100*with.goodput/capacity, with.p99),
			fmt.Sprintf("The gradient algorithm (no latency target: it compares each latency with its own long-run average) keeps %.0f/s (%.0f%% of capacity) at %.1f× with a tighter p99 of %v, refusing %.0f%%. Its cost shows below saturation: with exponential service times single latencies vary widely around the average, its limit stays near the server count, and it refuses %.0f%% of requests at %.1f× load, where AIMD refuses %.0f%%.",
				grad.goodput, 100*grad.goodput/capacity, top, grad.p99, 100*grad.rejected, 100*at80[2].rejected, at80[2].load, 100*at80[1].rejected),
			"The p99 of admitted requests sits above the 50 ms target: AIMD keeps probing upwards until a slow answer cuts the limit, so the queue oscillates around the knee. This is the guide's \"find breaking points\": the breaking point of a queueing server is a cliff, not a plateau, unless it sheds. Modelled: the server is an internal/sim Station (FIFO, no cancellation of abandoned requests); the admission decisions are the real LoadShedder's.",
		},
	}, ctx.Err()
}
