package lb

import "math"

// PeakEWMA is Finagle's and Linkerd's latency-aware balancer: power of two
// random choices on a cost of (decayed peak-sensitive latency average) ×
// (in-flight + 1).
//
// The latency average rises at once to any slower observation (the peak)
// and decays exponentially toward faster ones with time constant
// [Options.Decay], so a backend that suddenly slows down loses traffic
// within one request, and one that recovers wins it back over a few decay
// periods. A backend with no observation yet costs nothing while idle and
// a large penalty once it has requests in flight, so new backends are
// tried, but only one request at a time until they answer.
//
// Pros (GUIDE.md, Latency Optimization → Load Balancing): it routes around
// slow backends before they fail, which least-request cannot see (Linkerd's
// "Beyond Round Robin" measured round robin degrading above p95,
// least-loaded above p99 and peak EWMA only above p99.9; see the lab's
// lb-linkerd experiment). Cons: it reads the clock on every pick and every
// Done, and a backend that fails fast looks attractive unless failures are
// also handled (outlier detection). Use it when backends' latencies differ
// or change: shared hosts, GC pauses, noisy neighbours.
//
// PeakEWMA is lock-free on Pick (Done takes a per-backend mutex) and safe
// for concurrent use.
type PeakEWMA struct{ core }

var _ Balancer = (*PeakEWMA)(nil)

// NewPeakEWMA returns a peak-EWMA balancer. Its decay time is
// [Options.Decay].
func NewPeakEWMA(backends []Backend, opts Options) (*PeakEWMA, error) {
	b := &PeakEWMA{}
	if err := b.init(backends, opts, ewmaAlgo{}, readsLoad|readsClock); err != nil {
		return nil, err
	}
	return b, nil
}

type ewmaAlgo struct{}

func (ewmaAlgo) affinity() bool { return false }

func (ewmaAlgo) build(active []*endpoint, c *core) (picker, error) {
	return &ewmaPicker{eps: active, inv: inverseWeights(active, true), rng: &c.rng, tau: c.tau}, nil
}

type ewmaPicker struct {
	eps []*endpoint
	inv []float64
	rng *rng
	tau float64
}

// penalty is the cost of a backend with requests in flight and no latency
// observed yet (Finagle's Penalty): large enough to lose to any measured
// backend.
const penalty = float64(math.MaxInt64 >> 16)

func (p *ewmaPicker) cost(i int, now int64) float64 {
	e := p.eps[i]
	inflight := float64(e.inflight())
	lat := e.latencyAt(now, p.tau)
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
	if p.cost(j, now) < p.cost(i, now) {
		return p.eps[j]
	}
	return p.eps[i]
}
