package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/internal/sim"
	"github.com/sysdesign-go/sysdesign/resilience"
)

var resilienceSheddingExperiment = lab.Experiment{
	Name: "resilience-shedding", Group: "resilience",
	Title:   "goodput and latency past saturation, with and without adaptive load shedding",
	Section: "Throughput Optimization",
	Guide:   "How would you handle 10,000 requests per second? ... Rate Limiting: Control request flow; Stress Testing: Find breaking points",
	Run:     runResilShedding,
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
	r := sim.NewProcs(&e)
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
		if shed, err = resilience.NewLoadShedder(resilience.ShedderOptions{Algorithm: algo, InitialLimit: 20, MaxLimit: 400, LatencyTarget: 50 * time.Millisecond, Now: e.Clock()}); err != nil {
			return resilShedPoint{}, err
		}
		h := shed.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if !r.Wait(context.Background(), func(wake func()) { st.Submit(work.Sample(), func(_, _ time.Duration) { wake() }) }) {
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
				if r.Stopping() {
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
	if err := r.Run(); err != nil {
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
	verdict, reason := resilSheddingVerdict(top, none, with)
	return &lab.Result{Verdict: verdict, Reason: reason,
		Tables: []*lab.Table{t},
		Charts: []*lab.Chart{chart},
		Notes: []string{
			fmt.Sprintf("Past saturation an unprotected server queues everything: at %.1f× capacity its goodput falls to %.0f/s (%.0f%% of capacity) because it spends its time on requests whose clients already gave up (%.0f%% answered too late). With this package's LoadShedder (AIMD concurrency limit, 50 ms latency target) it refuses %.0f%% at once with a 503 and keeps a goodput of %.0f/s (%.0f%% of capacity) with a p99 of %v.",
				top, none.goodput, 100*none.goodput/capacity, 100*none.timedOut, 100*with.rejected, with.goodput, 100*with.goodput/capacity, with.p99),
			fmt.Sprintf("The gradient algorithm (no latency target: it compares each latency with its own long-run average) keeps %.0f/s (%.0f%% of capacity) at %.1f× with a p99 of %v, refusing %.0f%%. Its cost shows below saturation: with exponential service times single latencies vary widely around the average, its limit stays near the server count, and it refuses %.0f%% of requests at %.1f× load, where AIMD refuses %.0f%%.",
				grad.goodput, 100*grad.goodput/capacity, top, grad.p99, 100*grad.rejected, 100*at80[2].rejected, at80[2].load, 100*at80[1].rejected),
			"The p99 of admitted requests sits above the 50 ms target: AIMD keeps probing upwards until a slow answer cuts the limit, so the queue oscillates around the knee. This is the guide's \"find breaking points\": the breaking point of a queueing server is a cliff, not a plateau, unless it sheds.",
			fmt.Sprintf("Run, not modelled: every request to a shedding server is a goroutine process calling resilience.LoadShedder.Middleware's ServeHTTP on the engine's virtual time — the middleware admits or answers 503 (%s), and measures each admitted request's latency on the engine's clock. Modelled: the server behind it is an internal/sim Station (FIFO, no cancellation of abandoned requests) and clients that give up after %v.",
				choose(allRetryAfter, "every 503 carried its Retry-After header", "some 503s lacked a Retry-After header"), resilShedTimeout),
		},
	}, ctx.Err()
}

// resilSheddingVerdict judges "rate limiting: control request flow; stress
// testing: find breaking points" by the goodput past saturation with and
// without adaptive shedding.
func resilSheddingVerdict(load float64, none, with resilShedPoint) (lab.Verdict, string) {
	numbers := fmt.Sprintf("at %.1f× capacity the unprotected server's goodput falls to %.0f/s while with adaptive load shedding it keeps %.0f/s", load, none.goodput, with.goodput)
	return lab.Judge(with.goodput > 2*none.goodput,
		"The breaking point is a cliff, and controlling the flow keeps a server off it: "+numbers+".", lab.Refutes, "Controlling the flow did not help: "+numbers+".")
}
