package lb

import "math"

// LeastConn sends each request to the backend with the fewest requests in
// flight (exact: it scans every backend), breaking ties uniformly at random.
//
// Pros (the guide, Least Connections): it balances load based on current
// connections, so it is good for long-running requests: a backend stuck on
// a few long requests stops receiving new ones, and a slow backend
// naturally gets fewer. Cons: it requires tracking connection counts (this
// package counts from Pick to Done), each pick reads every backend's
// counter (O(n)), and with many independent balancers each sees only its
// own requests. Use it for long-running requests and database connections;
// for large backend sets [P2C] gets most of the benefit at O(1).
//
// LeastConn picks lock-free.
type LeastConn struct{}

func (LeastConn) setup() (algoSetup, error) {
	return algoSetup{build: buildLeastConn(false), readsLoad: true}, nil
}

// WeightedLeastConn sends each request to the backend with the smallest
// (in-flight + 1) / weight, as nginx's weighted least_conn does: a backend
// of weight 2 is kept at about twice the in-flight requests of one of
// weight 1.
//
// Pros: it combines known capacity with current load. Cons: those of
// [LeastConn], and weights must be kept right. Use it for long-running
// requests on heterogeneous servers.
//
// WeightedLeastConn picks lock-free.
type WeightedLeastConn struct{}

func (WeightedLeastConn) setup() (algoSetup, error) {
	return algoSetup{build: buildLeastConn(true), readsLoad: true}, nil
}

func buildLeastConn(weighted bool) func([]*endpoint, *Balancer) (picker, error) {
	return func(active []*endpoint, b *Balancer) (picker, error) {
		return &lcPicker{eps: active, inv: inverseWeights(active, weighted), rng: &b.rng}, nil
	}
}

// inverseWeights returns 1/weight per backend, or all ones when unweighted.
func inverseWeights(eps []*endpoint, weighted bool) []float64 {
	inv := make([]float64, len(eps))
	for i, e := range eps {
		inv[i] = 1
		if weighted {
			inv[i] = 1 / e.weightNow()
		}
	}
	return inv
}

type lcPicker struct {
	eps []*endpoint
	inv []float64
	rng *rng
}

// tieBuf is how many tied backends a pick remembers to choose among with
// one draw; past it, reservoir sampling goes on with a draw per tie.
const tieBuf = 128

// pick scans every backend and chooses uniformly at random among those of
// the lowest cost. (A scan from a random start that kept the first minimum
// it met would favour a backend that follows a run of busier ones.)
func (p *lcPicker) pick(Request, int64) *endpoint {
	var tied [tieBuf]int32
	var x uint64                           // xorshift state for the draws past the buffer
	best, bestCost, k := 0, math.Inf(1), 0 // k: backends seen at bestCost
	for i, e := range p.eps {
		cost := float64(e.inflight()+1) * p.inv[i]
		if cost > bestCost {
			continue
		}
		if cost < bestCost {
			bestCost, k = cost, 0
		}
		switch {
		case k < tieBuf:
			tied[k] = int32(i)
		case k == tieBuf: // the buffer is full: one of it, then reservoir sampling
			x = p.rng.uint64() | 1
			best = int(tied[(x>>32)*tieBuf>>32])
			fallthrough
		default: // the (k+1)-th tie replaces the choice with probability 1/(k+1)
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			if (x>>32)*uint64(k+1)>>32 == 0 {
				best = i
			}
		}
		k++
	}
	if k <= tieBuf {
		best = int(tied[p.rng.intn(k)])
	}
	return p.eps[best]
}
