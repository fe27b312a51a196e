package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/sysdesign-go/sysdesign/examples/internal/lab"
	"github.com/sysdesign-go/sysdesign/internal/sim"
)

var scalingExperiment = lab.Experiment{
	Name:    "scaling",
	Group:   "scaling",
	Title:   "one server k× faster versus k servers (shared queue, per-server queues)",
	Section: "Scalability Patterns → Horizontal vs Vertical Scaling",
	Guide:   "Horizontal Scaling: Add more machines to distribute load ... Requires load balancing and data distribution; Vertical Scaling: Increase resources on existing machines",
	Run:     runScalingExperiment,
}

// scalingDesign is one way to buy k units of capacity.
type scalingDesign struct {
	name   string
	theory func(lambda, mu float64, k int) sim.MMk // the queue that models it
}

var scalingDesigns = []scalingDesign{
	{"vertical: 1 server, speed k", func(l, mu float64, k int) sim.MMk { return sim.MMk{Lambda: l, Mu: mu * float64(k), K: 1} }},
	{"horizontal: k servers, shared queue", func(l, mu float64, k int) sim.MMk { return sim.MMk{Lambda: l, Mu: mu, K: k} }},
	{"horizontal: k servers, random per-server queues", func(l, mu float64, k int) sim.MMk { return sim.MMk{Lambda: l / float64(k), Mu: mu, K: 1} }},
}

// scalingPoint is one simulated (design, utilisation) cell beside its theory.
type scalingPoint struct {
	design                int
	rho                   float64
	sim                   sim.Summary
	throughput            float64 // completed jobs per virtual second
	theoryMean, theoryP50 time.Duration
	theoryP99             time.Duration
}

const (
	scalingK       = 4
	scalingService = 10 * time.Millisecond // mean work of a job on a speed-1 server
)

// simulateScaling runs one design at utilisation rho for jobs arrivals and
// returns the latency of every job after the first 5% (warm-up).
func simulateScaling(design int, rho float64, jobs int, arrivals, work, pick *rand.Rand) (scalingPoint, error) {
	mu := 1 / scalingService.Seconds()
	lambda := rho * scalingK * mu
	q := scalingDesigns[design].theory(lambda, mu, scalingK)
	if _, err := sim.NewMMk(q.Lambda, q.Mu, q.K); err != nil {
		return scalingPoint{}, err
	}
	var e sim.Engine
	var stations []*sim.Station
	addStation := func(servers int, speed float64) error {
		s, err := sim.NewStation(&e, servers, speed)
		stations = append(stations, s)
		return err
	}
	var err error
	switch design {
	case 0:
		err = addStation(1, scalingK)
	case 1:
		err = addStation(scalingK, 1)
	default:
		for range scalingK {
			if err = addStation(1, 1); err != nil {
				break
			}
		}
	}
	if err != nil {
		return scalingPoint{}, err
	}
	arr, err := sim.NewPoisson(arrivals, lambda)
	if err != nil {
		return scalingPoint{}, err
	}
	svc, err := sim.NewExponential(work, scalingService)
	if err != nil {
		return scalingPoint{}, err
	}
	rec := sim.NewRecorder()
	warmup := jobs / 20
	var measureStart, measureEnd time.Duration
	var measured int
	var arrive func(i int)
	arrive = func(i int) {
		st := stations[0]
		if len(stations) > 1 {
			st = stations[pick.IntN(len(stations))]
		}
		if i == warmup {
			measureStart = e.Now()
		}
		st.Submit(svc.Sample(), func(_, total time.Duration) {
			if i >= warmup {
				rec.Record(total)
				measured++
				measureEnd = e.Now()
			}
		})
		if i+1 < jobs {
			e.Schedule(arr.Next(), func() { arrive(i + 1) })
		}
	}
	e.Schedule(0, func() { arrive(0) })
	if err := e.Run(sim.Forever); err != nil {
		return scalingPoint{}, err
	}
	return scalingPoint{
		design: design, rho: rho, sim: rec.Summary(),
		throughput: float64(measured) / (measureEnd - measureStart).Seconds(),
		theoryMean: q.MeanSojourn(), theoryP50: q.SojournPercentile(50), theoryP99: q.SojournPercentile(99),
	}, nil
}

func relErr(got, want time.Duration) float64 {
	return math.Abs(float64(got)-float64(want)) / float64(want)
}

// scalingTolerance is the agreement with queueing theory the experiment
// claims: the simulated mean, p50 and p99 within 10% of M/M/1 and M/M/k.
// It holds for runs of 100,000 jobs or more up to 80% utilisation; at 90%
// and 95% the queue's long memory makes the p99 of one run vary by more
// than that, so those rows are reported but not held to the bound.
const scalingTolerance = 0.10

func runScalingExperiment(ctx context.Context, env *lab.Env) (*lab.Result, error) {
	rhos := []float64{0.5, 0.6, 0.7, 0.8, 0.9, 0.95}
	jobs := env.Scale(400_000, 20_000)
	points, err := scalingRun(ctx, env, rhos, jobs)
	if err != nil {
		return nil, err
	}
	res := &lab.Result{}
	lat := lab.NewTable(fmt.Sprintf("Latency, k=%d, mean work %v, %d jobs per cell (sim vs theory)", scalingK, scalingService, jobs),
		"design", "utilisation", "p50 sim", "p50 theory", "p99 sim", "p99 theory", "mean sim", "mean theory", "throughput/s")
	worst := 0.0
	for _, p := range points {
		lat.AddRow(scalingDesigns[p.design].name, fmt.Sprintf("%.2f", p.rho),
			p.sim.P50, p.theoryP50, p.sim.P99, p.theoryP99, p.sim.Mean, p.theoryMean, p.throughput)
		if p.rho <= 0.8 {
			worst = max(worst, relErr(p.sim.Mean, p.theoryMean), relErr(p.sim.P50, p.theoryP50), relErr(p.sim.P99, p.theoryP99))
		}
	}
	res.Tables = append(res.Tables, lat)
	for _, pct := range []struct {
		name string
		get  func(scalingPoint) (time.Duration, time.Duration)
	}{
		{"p50", func(p scalingPoint) (time.Duration, time.Duration) { return p.sim.P50, p.theoryP50 }},
		{"p99", func(p scalingPoint) (time.Duration, time.Duration) { return p.sim.P99, p.theoryP99 }},
	} {
		c := &lab.Chart{Title: pct.name + " latency vs utilisation", XLabel: "utilisation (share of capacity)", YLabel: pct.name + " latency (ms)", LogY: true}
		for d := range scalingDesigns {
			simS := lab.Series{Name: scalingDesigns[d].name}
			thS := lab.Series{Name: scalingDesigns[d].name + " (theory)", Dashed: true}
			for _, p := range points {
				if p.design != d {
					continue
				}
				s, th := pct.get(p)
				simS.X, simS.Y = append(simS.X, p.rho), append(simS.Y, ms(s))
				thS.X, thS.Y = append(thS.X, p.rho), append(thS.Y, ms(th))
			}
			c.Series = append(c.Series, simS, thS)
		}
		res.Charts = append(res.Charts, c)
	}
	at := func(d int, rho float64) scalingPoint {
		return find(points, func(p scalingPoint) bool { return p.design == d && p.rho == rho })
	}
	v, s, r := at(0, 0.9), at(1, 0.9), at(2, 0.9)
	res.Verdict, res.Reason = scalingVerdict(v, s, r)
	res.Notes = append(res.Notes,
		fmt.Sprintf("Simulation agrees with queueing theory (M/M/1, M/M/%d) within %.1f%% on mean, p50 and p99 up to 80%% utilisation (stated tolerance %.0f%% at ≥100k jobs).", scalingK, worst*100, scalingTolerance*100),
		fmt.Sprintf("At 90%% utilisation the single fast server has p99 %v, the shared-queue cluster %v and random per-server queues %v: one fast machine wins on latency (each job is served %d× faster), a shared queue comes close under heavy load, and independent queues are worst — which is why horizontal scaling \"requires load balancing\", and a good balancer approximates the shared queue.", lab.Format(v.sim.P99), lab.Format(s.sim.P99), lab.Format(r.sim.P99), scalingK),
		"Throughput equals the offered load in every stable design: the k-server designs buy the same capacity, plus fault tolerance (losing one of k servers leaves (k−1)/k of it, losing the single server leaves none).",
	)
	return res, nil
}

func scalingRun(ctx context.Context, env *lab.Env, rhos []float64, jobs int) ([]scalingPoint, error) {
	bar := env.Progress(int64(len(rhos)*len(scalingDesigns)), "scaling")
	defer bar.Done()
	var points []scalingPoint
	for d := range scalingDesigns {
		for i, rho := range rhos {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			// The same arrivals and work for every design at one utilisation.
			stream := uint64(i * 3)
			p, err := simulateScaling(d, rho, jobs, env.Rand(stream), env.Rand(stream+1), env.Rand(stream+2))
			if err != nil {
				return nil, fmt.Errorf("design %q at utilisation %v: %w", scalingDesigns[d].name, rho, err)
			}
			points = append(points, p)
			bar.Add(1)
		}
	}
	return points, nil
}

// scalingVerdict judges "horizontal scaling requires load balancing" at 90%
// utilisation: k servers fed at random, with no balancer, against k servers
// sharing one queue, which a good balancer approximates.
func scalingVerdict(vertical, shared, random scalingPoint) (lab.Verdict, string) {
	return lab.Judge(random.sim.P99 >= shared.sim.P99*3/2,
		fmt.Sprintf("At 90%% utilisation k servers fed at random have p99 %v, %.1f× the %v of k servers sharing one queue: more machines pay off only with load balancing; one server k× faster is faster still (p99 %v).",
			lab.Format(random.sim.P99), float64(random.sim.P99)/float64(shared.sim.P99), lab.Format(shared.sim.P99), lab.Format(vertical.sim.P99)),
		lab.Nuance,
		fmt.Sprintf("At 90%% utilisation k servers fed at random (p99 %v) come within 1.5× of k servers sharing one queue (%v): balancing matters little at this load; one server k× faster has p99 %v.",
			lab.Format(random.sim.P99), lab.Format(shared.sim.P99), lab.Format(vertical.sim.P99)))
}
