package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/internal/sim"
	"github.com/sysdesign-go/sysdesign/resilience"
	"github.com/sysdesign-go/sysdesign/resilience/sharedbreaker"
)

var resilienceCascadeExperiment = lab.Experiment{
	Name: "resilience-cascade", Group: "resilience",
	Title:   "a chain A → B → C where C becomes slow: no protection, timeouts, + circuit breaker, + fallback",
	Section: "Fault Tolerance → Circuit Breakers",
	Guide:   "Circuit Breakers: Prevent cascade failures — Open State: Fail fast, don't call failing service; Timeout Configuration: How long to wait; Fallback Mechanisms: Alternative responses",
	Run:     runResilCascade,
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

// resilCascade runs the chain: every request is a process; A and B call
// downstream through a resilience.Pipeline of the variant's policies —
// Fallback → sharedbreaker.Breaker → Timeout — on the engine's virtual time.
func resilCascade(env *lab.Env, v resilCascadeVariant, total, slowFrom, slowTo time.Duration) (resilCascadeResult, error) {
	var e sim.Engine
	r := sim.NewProcs(&e)
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
	var toBC *resilTimeout
	var brAB, brBC *sharedbreaker.Breaker[resilUnit]
	if v.fallback {
		fb, err := resilience.NewFallback(resilience.FallbackOptions[resilUnit]{Func: func(context.Context, error) (resilUnit, error) {
			if inSlow() {
				res.fallback++
			}
			return resilUnit{}, nil // B answers with a default or cached value
		}})
		if err != nil {
			return res, err
		}
		bc = append(bc, fb)
	}
	if v.breaker {
		newBreaker := func(name string) (*sharedbreaker.Breaker[resilUnit], error) {
			return sharedbreaker.New[resilUnit](sharedbreaker.Options{
				Store: sharedbreaker.NewMemoryStore(),
				Name:  name,
				Rules: sharedbreaker.Rules{Window: 10 * time.Second, MinRequests: 20, FailureRate: 0.5, Timeout: 2 * time.Second},
				Now:   e.Clock(),
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
		toBC = &resilTimeout{r: r, name: "b-c", d: resilCascadeTimeoutC}
		ab, bc = append(ab, &resilTimeout{r: r, name: "a-b", d: resilCascadeTimeoutB}), append(bc, toBC)
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
		_, err := pipeBC.Execute(bg, func(ctx context.Context) (resilUnit, error) { return resilUnit{}, r.Call(ctx, serveC) })
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
			_, err = pipeAB.Execute(bg, func(ctx context.Context) (resilUnit, error) { return resilUnit{}, r.Call(ctx, serveB) })
			a.release()
		} else {
			err = errResilRejected
		}
		if measured && !errors.Is(err, sim.ErrStopped) {
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
	if err := r.Run(); err != nil {
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
		res.timeoutsBC = toBC.timeouts
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
	verdict, reason := resilCascadeVerdict(none, to1, br, fb)
	return &lab.Result{Verdict: verdict, Reason: reason,
		Tables: []*lab.Table{t},
		Charts: []*lab.Chart{chart},
		Notes: []string{
			fmt.Sprintf("With no protection the slowness of C climbs the chain — B's threads (peak %d of %d) and then A's (peak %d) are all held waiting, A's p99 reaches %v and %.0f%% of A's requests fail (A's queue overflows, so most are refused at once: hence A's p50 of about zero) although A and B themselves are healthy. That is the cascade failure.",
				none.peakB, resilCascadeThreads, none.peakA, none.latency.P99, 100*none.errorRate),
			fmt.Sprintf("Timeouts alone (resilience.Timeout, %d B→C calls cut) bound the wait (A p99 %v) and free B's threads after %v, but every call still goes to C: %d calls reached C during the slow phase, which only deepens its backlog; %.0f%% of requests fail.",
				to1.timeoutsBC, to1.latency.P99, resilCascadeTimeoutC, to1.callsToC, 100*to1.errorRate),
			fmt.Sprintf("A circuit breaker (sharedbreaker.Breaker on a MemoryStore, opening at ≥50%% failures over ≥20 calls in 10 s, 2 s open) fails fast: A's breaker short-circuits %d calls to B (B's own breaker %d: with A's open, B hardly gets calls), calls reaching C drop from %d to %d, B's mean busy threads from %.1f to %.1f, A's p50 to %v. Errors stay (%.0f%%): the breaker protects the system, not the request. With B's fallback answering, A's breaker stays closed and B's short-circuits %d calls to C.",
				br.rejectedAB, br.rejectedBC, to1.callsToC, br.callsToC, to1.meanB, br.meanB, br.latency.P50, 100*br.errorRate, fb.rejectedBC),
			fmt.Sprintf("With a fallback at B (resilience.Fallback outermost in B's pipeline) the user sees %.1f%% errors and a p99 of %v: \"Fallback Mechanisms: Alternative responses\" turn the fast failures into degraded answers (%d of them).",
				100*fb.errorRate, fb.latency.P99, fb.fallback),
			"Run, not modelled: every request is a goroutine process on the engine's virtual time, and each hop calls downstream through a resilience.Pipeline of the variant's policies — Fallback → sharedbreaker.Breaker → Timeout — whose Execute methods run unchanged, but for the Timeout, whose deadline is a virtual-time context (the breaker reads the engine's clock). Modelled: the services — threads are counted slots with a FIFO queue (A and B 50 + 200 queued, C 20 + 1000), work is a virtual sleep, and a server finishes requests its client abandoned. The breaker is the store-backed sharedbreaker.Breaker rather than the gobreaker-based CircuitBreaker because gobreaker's open timeout reads time.Now, which virtual time cannot move; both apply the closed / open / half-open rules.",
		},
	}, ctx.Err()
}

// resilCascadeVerdict judges "circuit breakers: prevent cascade failures ...
// fail fast ... fallback" by A's users while C is slow.
func resilCascadeVerdict(none, timeouts, breaker, fallback resilCascadeResult) (lab.Verdict, string) {
	numbers := fmt.Sprintf("unprotected, C's slowness reaches A's users (%.0f%% errors, p99 %v); the breaker fails fast and cuts the calls reaching the slow service from %d (timeouts alone) to %d, and a fallback brings errors to %.1f%%",
		100*none.errorRate, lab.Format(none.latency.P99), timeouts.callsToC, breaker.callsToC, 100*fallback.errorRate)
	return lab.Judge(none.errorRate > 0.5 && 2*breaker.callsToC < timeouts.callsToC && fallback.errorRate < 0.01,
		"The cascade happens and each protection does its part: "+numbers+".", lab.Nuance, "Not every protection did its part: "+numbers+".")
}
