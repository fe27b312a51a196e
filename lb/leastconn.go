package lb

// LeastConn sends each request to the backend with the fewest requests in
// flight (exact: it scans every backend), breaking ties at random.
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

// pick scans from a random offset and keeps the first strict minimum, so
// ties are broken at random without a second pass.
func (p *lcPicker) pick(Request, int64) *endpoint {
	n := len(p.eps)
	off := p.rng.intn(n)
	best, bestCost := off, float64(p.eps[off].inflight()+1)*p.inv[off]
	for k := 1; k < n; k++ { // (k <= n would only look at off again)
		i := off + k
		if i >= n {
			i -= n
		}
		if cost := float64(p.eps[i].inflight()+1) * p.inv[i]; cost < bestCost {
			best, bestCost = i, cost
		}
	}
	return p.eps[best]
}
