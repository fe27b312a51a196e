package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/internal/sim"
	"github.com/sysdesign-go/sysdesign/resilience"
)

var resilienceBulkheadsExperiment = lab.Experiment{
	Name: "resilience-bulkheads", Group: "resilience",
	Title:   "one slow dependency: a shared thread pool versus a bulkhead per dependency",
	Section: "Throughput Optimization → Microservices",
	Guide:   "Microservices: Independent scaling ... Benefits: Targeted scaling, fault isolation",
	Run:     runResilBulkheads,
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
		r := sim.NewProcs(&e)
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
		shared, err := resilience.NewBulkhead(resilience.BulkheadOptions{MaxConcurrent: 40, Name: "shared", Now: e.Clock()})
		if err != nil {
			return nil, err
		}
		perDep, err := resilience.NewBulkheads(resilience.BulkheadOptions{MaxConcurrent: 20, Now: e.Clock()})
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
					err = sim.ErrStopped
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
			if !measured || errors.Is(err, sim.ErrStopped) {
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
		if err := r.Run(); err != nil {
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
	verdict, reason := resilBulkheadsVerdict(queued, isolated)
	return &lab.Result{Verdict: verdict, Reason: reason,
		Tables: []*lab.Table{t},
		Notes: []string{
			fmt.Sprintf("With one shared pool the slow dependency holds %d of the 40 threads and calls to the healthy dependency queue behind it — their p99 is %v. A shared Bulkhead that fails fast instead of queueing keeps their latency but rejects %.0f%% of them: the slow dependency holds %d of its 40 slots. With a Bulkhead per dependency the slow one can hold only its own 20 slots, %.0f%% of its calls are rejected at once, and the healthy dependency keeps a p99 of %v with %.1f%% rejected.",
				queued.slowThreads, queued.healthy.P99, 100*shared.healthyErrors, shared.slowThreads, 100*isolated.slowShed, isolated.healthy.P99, 100*isolated.healthyErrors),
			"The cost: the bulkheads split capacity, so a burst to one healthy dependency beyond its 20 slots is rejected even while the other pool idles.",
			"Run, not modelled: every request is a goroutine process on the engine's virtual time calling through resilience.Guarded over a resilience.Bulkhead (one shared of 40) or resilience.Bulkheads (20 per dependency), fail fast. Modelled: the queued shared pool, a 40-thread FIFO — a Bulkhead with a wait queue blocks on a channel and a real timer, which the virtual-time runtime cannot drive — and the dependencies, which are virtual sleeps.",
		},
	}, ctx.Err()
}

// resilBulkheadsVerdict judges "fault isolation" by the healthy
// dependency's calls while the other one is slow.
func resilBulkheadsVerdict(shared, isolated resilBulkheadResult) (lab.Verdict, string) {
	numbers := fmt.Sprintf("while one dependency is slow the healthy one's p99 is %v behind one shared pool and %v with a bulkhead per dependency, %.1f%% of its calls rejected",
		lab.Format(shared.healthy.P99), lab.Format(isolated.healthy.P99), 100*isolated.healthyErrors)
	return lab.Judge(10*isolated.healthy.P99 < shared.healthy.P99 && isolated.healthyErrors < 0.01,
		"Bulkheads isolate the fault: "+numbers+".", lab.Refutes, "Bulkheads did not isolate the fault: "+numbers+".")
}
