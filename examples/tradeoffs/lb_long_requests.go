package main

import (
	"context"
	"fmt"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/internal/sim"
	"github.com/sysdesign-go/sysdesign/lb"
)

var lbLongRequestsExperiment = lab.Experiment{
	Name: "lb-long-requests", Group: "lb", Section: lbSection,
	Title: "rare long requests (1% take 100× longer): least connections versus rotation",
	Guide: "Least Connections: Good for long-running requests ... Pros: Balances load based on current connections",
	Run:   runLBLongRequests,
}

type lbLongPoint struct {
	algo              string
	all, short        sim.Summary
	shortDelayedShare float64 // short requests that took over 100 ms
}

const (
	lbShortWork = 10 * time.Millisecond
	lbLongWork  = time.Second
	lbLongP     = 0.01
)

var lbLongAlgos = []lbAlgo{lbRoundRobin, lbRandom, lbLeastConn, lbP2C, lbPeakEWMA}

func lbLongRun(env *lab.Env, a lbAlgo, n int) (lbLongPoint, error) {
	var e sim.Engine
	const backends = 8
	servers, speeds := make([]int, backends), make([]float64, backends)
	for i := range servers {
		servers[i], speeds[i] = 1, 1
	}
	c, err := newLBCluster(&e, a, lbAddrs(backends), servers, speeds, lb.Options{Rand: env.Rand(22)})
	if err != nil {
		return lbLongPoint{}, err
	}
	mean := (1-lbLongP)*float64(lbShortWork) + lbLongP*float64(lbLongWork)
	lambda := 0.6 * backends / (mean / float64(time.Second))
	arr, err := sim.NewPoisson(env.Rand(20), lambda)
	if err != nil {
		return lbLongPoint{}, err
	}
	kind := env.Rand(21)
	all, short := sim.NewRecorder(), sim.NewRecorder()
	delayed, shorts := 0, 0
	lbDrive(&e, arr, n, func(int) {
		long := kind.Float64() < lbLongP
		w := lbShortWork
		if long {
			w = lbLongWork
		}
		c.send(lb.Request{}, w, func(_ int, lat time.Duration, err error) {
			if err != nil {
				return
			}
			all.Record(lat)
			if !long {
				short.Record(lat)
				shorts++
				if lat > 100*time.Millisecond {
					delayed++
				}
			}
		})
	})
	if err := e.Run(sim.Forever); err != nil {
		return lbLongPoint{}, err
	}
	return lbLongPoint{algo: a.name, all: all.Summary(), short: short.Summary(), shortDelayedShare: float64(delayed) / float64(max(shorts, 1))}, nil
}

func lbLongAll(ctx context.Context, env *lab.Env, n int) ([]lbLongPoint, error) {
	return measureEach(ctx, lbLongAlgos, lbAlgo.String, func(a lbAlgo) (lbLongPoint, error) { return lbLongRun(env, a, n) })
}

func runLBLongRequests(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	n := env.Scale(100_000, 5_000)
	points, err := lbLongAll(ctx, env, n)
	if err != nil {
		return nil, err
	}
	t := lab.NewTable(fmt.Sprintf("8 single-server backends at 60%% load; 99%% of requests take %v, 1%% take %v; %d requests", lbShortWork, lbLongWork, n),
		"algorithm", "p50 all", "p99 all", "p99.9 all", "p99 short", "short requests delayed > 100 ms")
	for _, p := range points {
		t.AddRow(p.algo, p.all.P50, p.all.P99, p.all.P999, p.short.P99, pct(p.shortDelayedShare))
	}
	rr, lc := points[0], points[2]
	verdict, reason := lbLongVerdict(rr, lc)
	return &lab.Result{Verdict: verdict, Reason: reason, Tables: []*lab.Table{t}, Notes: []string{
		fmt.Sprintf("With round robin a short request that lands behind a long one waits for it, so %s of short requests take over 100 ms (p99 of short requests %v); least connections sees the backend busy with the long request and sends elsewhere: %s delayed, p99 %v.",
			pct(rr.shortDelayedShare), lab.Format(rr.short.P99), pct(lc.shortDelayedShare), lab.Format(lc.short.P99)),
		"P2C gets most of least connections' benefit from two random choices; peak EWMA also sees the long request through its in-flight count and through the latency it reports.",
	}}, nil
}

// lbLongVerdict judges "least connections: good for long-running requests"
// by the short requests that wait behind a long one.
func lbLongVerdict(rr, lc lbLongPoint) (lab.Verdict, string) {
	return lab.Judge(lc.shortDelayedShare < rr.shortDelayedShare/2,
		fmt.Sprintf("Least connections sees a backend busy with a long request and sends elsewhere: %s of short requests wait over 100 ms, against %s with round robin.", pct(lc.shortDelayedShare), pct(rr.shortDelayedShare)),
		lab.Refutes,
		fmt.Sprintf("Least connections delays %s of short requests over 100 ms, not half of round robin's %s.", pct(lc.shortDelayedShare), pct(rr.shortDelayedShare)))
}
