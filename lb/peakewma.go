package lb

import (
	"math"
	"time"
)

// PeakEWMA is Finagle's and Linkerd's latency-aware balancer: power of two
// random choices on a cost of (decayed peak-sensitive latency average) ×
// (in-flight + 1).
//
// The latency average rises at once to any slower observation (the peak)
// and decays exponentially toward faster ones with time constant Decay,
// so a backend that suddenly slows down loses traffic within one request,
// and one that recovers wins it back over a few decay periods. A backend
// with no observation yet costs nothing while idle and a large penalty
// once it has requests in flight, so new backends are tried, but only one
// request at a time until they answer.
//
// Pros (the guide, Latency Optimization → Load Balancing): it routes around
// slow backends before they fail, which least-request cannot see (Linkerd's
// "Beyond Round Robin" study compared round robin, least-loaded and peak
// EWMA on tail latency; the lab's lb-linkerd experiment reruns it). Cons:
// it needs the time on every pick (see [CoarseClock] for what that costs
// and how to make it cheaper), and a backend that fails fast looks
// attractive unless failures are also handled (outlier detection). Use it
// when backends' latencies differ or change: shared hosts, GC pauses,
// noisy neighbours.
//
// The average decays in steps of 1/4096 of the decay time or less: the
// first Done of a step applies the decay since the last one, and Done
// calls within a step that bring no new peak write nothing, so the average
// costs no shared write in the common case.
//
// PeakEWMA picks lock-free.
type PeakEWMA struct {
	// Decay is the time constant of the latency average: an observation's
	// weight halves every Decay·ln 2. Zero means 10s (as in Finagle and
	// Linkerd); negative is an error.
	Decay time.Duration
}

func (a PeakEWMA) setup() (algoSetup, error) {
	if a.Decay < 0 {
		return algoSetup{}, configErr(nil, "peak EWMA decay %v (want ≥ 0; 0 means 10s)", a.Decay)
	}
	if a.Decay == 0 {
		a.Decay = 10 * time.Second
	}
	return algoSetup{build: func(active []*endpoint, b *Balancer) (picker, error) {
		return &ewmaPicker{eps: active, inv: inverseWeights(active, true), rng: &b.rng, tau: b.tau, shift: b.shift}, nil
	}, readsLoad: true, decay: a.Decay}, nil
}

type ewmaPicker struct {
	eps   []*endpoint
	inv   []float64
	rng   *rng
	tau   float64 // decay time in decay steps
	shift uint    // a decay step is 1<<shift nanoseconds
}

// penalty is the cost of a backend with requests in flight and no latency
// observed yet (Finagle's Penalty): large enough to lose to any measured
// backend.
const penalty = float64(math.MaxInt64 >> 16)

func (p *ewmaPicker) cost(i int, step int64) float64 {
	e := p.eps[i]
	inflight := float64(e.inflight())
	lat := e.latencyAt(step, p.tau)
	if lat == 0 && inflight > 0 {
		return penalty + inflight
	}
	return lat * (inflight + 1) * p.inv[i]
}

func (p *ewmaPicker) pick(_ Request, now int64) *endpoint {
	n := len(p.eps)
	if n == 1 {
		return p.eps[0]
	}
	i, j := two(p.rng, n)
	step := now >> p.shift
	if p.cost(j, step) < p.cost(i, step) { // a tie may go to either (see p2cPicker.pick)
		return p.eps[j]
	}
	return p.eps[i]
}
