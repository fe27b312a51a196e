package main

import (
	"context"
	"fmt"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/internal/sim"
	"github.com/sysdesign-go/sysdesign/lb"
)

var lbHealthExperiment = lab.Experiment{
	Name: "lb-health", Group: "lb", Section: lbSection + "; Fault Tolerance → Failover",
	Title: "one backend starts failing mid-run: no checks, active checks, passive ejection, both",
	Guide: "Health Check Integration: Remove unhealthy servers from rotation ... Implementation: Regular health checks, automatic failover ... Metrics: Response time, error rate, availability",
	Run:   runLBHealth,
}

type lbHealthPoint struct {
	config            string
	errors            int
	errorRate         float64 // during the failure
	detect            time.Duration
	returnAfter       time.Duration // from recovery to the first request served by it
	p99               time.Duration
	errorsPerSecond   []float64
	probes, ejections int
}

const lbHealthBackends = 5

type lbHealthConfig struct {
	name            string
	active, passive bool
}

var lbHealthConfigs = []lbHealthConfig{
	{"no health checks", false, false},
	{"active checks (every 2 s, 3 strikes)", true, false},
	{"passive ejection (5 failures in a row)", false, true},
	{"active + passive", true, true},
}

func lbHealthRun(env *lab.Env, cfg lbHealthConfig, rate float64, failAt, recoverAt, end time.Duration) (lbHealthPoint, error) {
	var e sim.Engine
	opts := lb.Options{Rand: env.Rand(42)}
	if cfg.passive {
		opts.Outlier = &lb.OutlierOptions{ConsecutiveFailures: 5, BaseEjectionTime: 10 * time.Second}
	}
	servers, speeds := make([]int, lbHealthBackends), make([]float64, lbHealthBackends)
	for i := range servers {
		servers[i], speeds[i] = 4, 1
	}
	c, err := newLBCluster(&e, lbP2C, lbAddrs(lbHealthBackends), servers, speeds, opts)
	if err != nil {
		return lbHealthPoint{}, err
	}
	pt := lbHealthPoint{config: cfg.name, detect: -1, returnAfter: -1}
	if cfg.active {
		// The real HealthChecker's thresholds, driven on virtual time: a
		// probe fails while the backend is failing.
		h, err := lb.NewHealthChecker(c.bal, lb.HealthCheckOptions{Interval: 2 * time.Second, Timeout: time.Second, UnhealthyThreshold: 3, HealthyThreshold: 2,
			Probe: func(_ context.Context, b lb.Backend) error {
				if c.failing[c.index[b.Addr]] {
					return errLBBackend
				}
				return nil
			}})
		if err != nil {
			return lbHealthPoint{}, err
		}
		jitter := env.Rand(43)
		var probe func()
		probe = func() {
			h.CheckNow(lbBackgroundCx)
			pt.probes += lbHealthBackends
			if e.Now() < end {
				e.Schedule(2*time.Second+time.Duration(jitter.Int64N(int64(200*time.Millisecond))), probe)
			}
		}
		e.Schedule(time.Duration(jitter.Int64N(int64(2*time.Second))), probe)
	}
	e.At(failAt, func() { c.failing[0] = true })
	e.At(recoverAt, func() { c.failing[0] = false })
	arr, err := sim.NewPoisson(env.Rand(40), rate)
	if err != nil {
		return lbHealthPoint{}, err
	}
	work, err := sim.NewExponential(env.Rand(41), 20*time.Millisecond)
	if err != nil {
		return lbHealthPoint{}, err
	}
	n := int(rate * end.Seconds())
	rec := sim.NewRecorder()
	pt.errorsPerSecond = make([]float64, int(end/time.Second)+1)
	var during, duringErr int
	lastErrAt := time.Duration(-1)
	lbDrive(&e, arr, n, func(int) {
		sent := e.Now()
		c.send(lb.Request{}, work.Sample(), func(i int, lat time.Duration, err error) {
			in := sent >= failAt && sent < recoverAt
			if in {
				during++
			}
			if err != nil {
				pt.errors++
				pt.errorsPerSecond[min(int(sent/time.Second), len(pt.errorsPerSecond)-1)]++
				lastErrAt = sent
				if in {
					duringErr++
				}
				return
			}
			rec.Record(lat)
			if i == 0 && sent >= recoverAt && pt.returnAfter < 0 {
				pt.returnAfter = sent - recoverAt
			}
		})
	})
	if err := e.Run(sim.Forever); err != nil {
		return lbHealthPoint{}, err
	}
	if lastErrAt >= 0 && lastErrAt < recoverAt-time.Second {
		pt.detect = lastErrAt - failAt // errors stop when the backend leaves rotation for good
	}
	pt.errorRate = float64(duringErr) / float64(max(during, 1))
	pt.p99 = rec.Summary().P99
	for _, b := range c.bal.Stats().Backends {
		pt.ejections += b.Ejections
	}
	return pt, nil
}

// lbHealthSetup returns the request rate and the failure's timing.
func lbHealthSetup(env *lab.Env) (rate float64, failAt, recoverAt, end time.Duration) {
	if env.Quick {
		return 200, 5 * time.Second, 25 * time.Second, 40 * time.Second
	}
	return 500, 20 * time.Second, 60 * time.Second, 90 * time.Second
}

func lbHealthAll(ctx context.Context, env *lab.Env) ([]lbHealthPoint, time.Duration, time.Duration, error) {
	rate, failAt, recoverAt, end := lbHealthSetup(env)
	out, err := measureEach(ctx, lbHealthConfigs, func(c lbHealthConfig) string { return c.name }, func(c lbHealthConfig) (lbHealthPoint, error) {
		return lbHealthRun(env, c, rate, failAt, recoverAt, end)
	})
	return out, failAt, recoverAt, err
}

func runLBHealth(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	points, failAt, recoverAt, err := lbHealthAll(ctx, env)
	if err != nil {
		return nil, err
	}
	rate, _, _, _ := lbHealthSetup(env)
	t := lab.NewTable(fmt.Sprintf("P2C over 5 backends at %v req/s; backend 0 answers every request with a fast error from t=%v to t=%v", rate, failAt, recoverAt),
		"configuration", "failed requests", "error rate while failing", "errors stop after", "back in rotation after recovery", "p99 of successes", "probes sent", "ejections")
	chart := &lab.Chart{Title: "failed requests per second", XLabel: "time (s)", YLabel: "failed requests (per second)"}
	for _, p := range points {
		stop, back := "never", "—"
		if p.detect >= 0 {
			stop = lab.Format(p.detect)
		}
		if p.returnAfter >= 0 {
			back = lab.Format(p.returnAfter)
		}
		t.AddRow(p.config, p.errors, pct(p.errorRate), stop, back, p.p99, p.probes, p.ejections)
		s := lab.Series{Name: p.config}
		for sec, v := range p.errorsPerSecond {
			s.X, s.Y = append(s.X, float64(sec)), append(s.Y, v)
		}
		chart.Series = append(chart.Series, s)
	}
	none, active, passive, both := points[0], points[1], points[2], points[3]
	verdict, reason := lbHealthVerdict(none, both)
	return &lab.Result{Verdict: verdict, Reason: reason, Tables: []*lab.Table{t}, Charts: []*lab.Chart{chart}, Notes: []string{
		fmt.Sprintf("Without checks %s of requests fail for the whole failure. Active checks remove the failing backend after three failed probes (errors stop after %v) and need no user request to fail to notice; passive ejection reacts to the first five failed requests (%d failures in all, against %d with active checks) but puts the backend back on probation every ejection period (the ejection time grows: 10 s, 20 s, ...).",
			pct(none.errorRate), lab.Format(active.detect), passive.errors, active.errors),
		fmt.Sprintf("Both together fail the fewest requests (%d) and return the recovered backend as soon as two probes pass; passive ejection alone returns it only when its ejection expires.", both.errors),
		fmt.Sprintf("Without checks P2C %s: %s of requests fail while 1 of %d backends fails, whose fair share is %s. A backend that fails fast has few requests in flight, so least-request keeps choosing it — a known weakness of load-only balancing that outlier detection fixes.",
			choose(none.errorRate > 1.0/lbHealthBackends, "does not limit the damage, it adds to it", "keeps the failing backend to its share"), pct(none.errorRate), lbHealthBackends, pct(1.0/lbHealthBackends)),
	}}, nil
}

// lbHealthVerdict judges "remove unhealthy servers from rotation" by the
// failed requests with active and passive checks against none, and says
// what P2C alone did with the failing backend's share.
func lbHealthVerdict(none, both lbHealthPoint) (lab.Verdict, string) {
	share := 1.0 / lbHealthBackends
	alone := fmt.Sprintf("without checks P2C sent %s of requests to the failing backend, %s its %s share, because a backend that fails fast has few requests in flight",
		pct(none.errorRate), choose(none.errorRate > share, "more than", "no more than"), pct(share))
	return lab.Judge(2*both.errors <= none.errors,
		fmt.Sprintf("Taking the failing backend out of rotation (active checks and passive ejection) cuts failed requests from %d to %d; %s.", none.errors, both.errors, alone),
		lab.Refutes,
		fmt.Sprintf("Health checks cut failed requests only from %d to %d; %s.", none.errors, both.errors, alone))
}
