package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/internal/sim"
	"github.com/sysdesign-go/sysdesign/resilience"
)

var resilienceRetryStormExperiment = lab.Experiment{
	Name: "resilience-retry-storm", Group: "resilience",
	Title:   "retry storms: exponential backoff with no, full, equal and decorrelated jitter (AWS setup), and a retry budget during an outage",
	Section: "Fault Tolerance → Failover",
	Guide:   "Failover: Automatic recovery from failures",
	Run:     runResilRetryStorm,
}

// resilContention is the AWS "Exponential Backoff and Jitter" setup:
// clients all want one write to a resource under optimistic concurrency
// at the same moment; a write succeeds if no other write committed in the
// last resilWriteTime, else the client's resilience.Retry backs off and
// tries again. It returns the calls made and when the last client
// finished.
func resilContention(jitter resilience.Jitter, clients int, rnd *rand.Rand) (calls int, done time.Duration, err error) {
	var e sim.Engine
	r := sim.NewProcs(&e)
	retry, err := resilience.NewRetry[resilUnit](resilience.RetryOptions{
		Name:        "write",
		MaxAttempts: resilStormMaxAttempts,
		Backoff:     resilience.Backoff{Base: 5 * time.Millisecond, Max: 2 * time.Second, Jitter: jitter},
		Sleep:       r.Sleep, Now: e.Clock(), Rand: rnd.Float64,
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
	if err := r.Run(); err != nil {
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
	r := sim.NewProcs(&e)
	arrivals, err := sim.NewPoisson(env.Rand(200), rate)
	if err != nil {
		return resilOutageResult{}, err
	}
	var budget *resilience.Budget
	if withBudget {
		if budget, err = resilience.NewBudget(resilience.BudgetOptions{Ratio: 0.1, Now: e.Clock()}); err != nil {
			return resilOutageResult{}, err
		}
	}
	retry, err := resilience.NewRetry[resilUnit](resilience.RetryOptions{
		Name: "backend", MaxAttempts: 3, Budget: budget,
		Backoff: resilience.Backoff{Base: 10 * time.Millisecond, Max: time.Second},
		Sleep:   r.Sleep, Now: e.Clock(), Rand: env.Rand(201).Float64,
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
	if err := r.Run(); err != nil {
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
	at := func(j resilience.Jitter) resilStormPoint {
		return find(points, func(p resilStormPoint) bool { return p.jitter == j && p.clients == top })
	}
	none, full, equal, dec := at(resilience.JitterNone), at(resilience.JitterFull), at(resilience.JitterEqual), at(resilience.JitterDecorrelated)
	verdict, reason := resilRetryStormVerdict(top, none, full, without, with)
	return &lab.Result{Verdict: verdict, Reason: reason,
		Tables: []*lab.Table{t, bt},
		Charts: []*lab.Chart{callsChart, timeChart},
		Notes: []string{
			fmt.Sprintf("Published (AWS Architecture Blog, \"Exponential Backoff and Jitter\", 2015): without jitter, contending clients retry in lock step and most calls collide; full and decorrelated jitter cut the calls by more than half, equal jitter a little less, and no-jitter also takes longer. Here, with %d clients: no jitter %.0f calls, full %.0f (%.0f%% fewer), equal %.0f (%.0f%% fewer), decorrelated %.0f (%.0f%% fewer) — %s",
				top, none.calls, full.calls, 100*(1-full.calls/none.calls), equal.calls, 100*(1-equal.calls/none.calls), dec.calls, 100*(1-dec.calls/none.calls),
				choose(full.calls < none.calls/2 && dec.calls < none.calls/2, "agreeing that full and decorrelated jitter more than halve the work.", "which does not reproduce the published halving.")),
			fmt.Sprintf("The post also ranks the jittered strategies: equal jitter does slightly more work than full jitter and takes much longer (here %.0f vs %.0f calls, %v vs %v: %s); full jitter does less work than decorrelated but takes slightly more time (here %.0f vs %.0f calls, %v vs %v: %s). Our contention model is a %v exclusive write (the first attempt wins, overlapping ones fail), not the post's simulator, so only the shape is comparable. No jitter completes last by far (%v): clients that collide once retry in lock step and collide again.",
				equal.calls, full.calls, equal.done, full.done,
				choose(equal.done > full.done, "agrees on time", "disagrees on time"),
				full.calls, dec.calls, full.done, dec.done,
				choose(full.calls < dec.calls, "agrees", "disagrees: decorrelated jitter wins on both counts in this model"),
				resilWriteTime, none.done),
			fmt.Sprintf("Retry budget: without it every failed request makes 3 attempts during the outage (%.2f per request: the fleet triples the load on a dependency that is already down); with a budget of 10%% the load stays at %.2f per request, the budget refusing %d retries. The cost is that during the outage almost no request is retried — which is right when the whole dependency is down.",
				without.amplification, with.amplification, with.stats.BudgetDenied),
			"Run, not modelled: every client and every request is a goroutine process running resilience.Retry.Execute — its backoff and jitter, its attempt limit and its Budget — with Sleep, Now and Rand on the engine's virtual time and a seeded stream. Modelled: the contended resource (an exclusive write of 1 ms) and the backend (it answers after 5 ms, with an error during the outage).",
		},
	}, ctx.Err()
}

// resilRetryStormVerdict judges "failover: automatic recovery from
// failures" when the recovery is retrying: it recovers, but unless retries
// are jittered and budgeted they multiply the load on what is failing.
func resilRetryStormVerdict(clients int, none, full resilStormPoint, without, with resilOutageResult) (lab.Verdict, string) {
	numbers := fmt.Sprintf("%d contending clients make %.0f calls retrying without jitter against %.0f with full jitter, and during an outage every request makes %.2f attempts without a retry budget, %.2f with one",
		clients, none.calls, full.calls, without.amplification, with.amplification)
	return lab.Judge(none.calls <= 2*full.calls && without.amplification <= 2,
		"Retrying recovers without multiplying the load: "+numbers+".",
		lab.Nuance, "Automatic recovery by retrying needs jitter and a budget: "+numbers+".")
}
