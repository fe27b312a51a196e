package lb

import "sync"

// SmoothWeighted is weighted round robin with nginx's smooth interleaving:
// each backend gets a share of picks proportional to its weight, spread
// evenly through the rotation instead of in bursts (weights 5, 1, 1 give
// a a b a c a a, not a a a a a b c).
//
// Pros (the guide, Weighted Round Robin): it considers server capacity, and
// the smooth order keeps the heavy backend from receiving a burst of
// back-to-back requests. Cons: it doesn't adapt to current load: a weight
// is a guess made in advance, and a backend that slows down keeps its share.
// Use it for heterogeneous server environments whose capacities are known.
//
// Each pick walks every backend in rotation under a mutex (O(n)); for
// hundreds of backends [EDF] is O(log n). Weight changes apply to the next
// pick.
type SmoothWeighted struct{}

func (SmoothWeighted) setup() (algoSetup, error) { return algoSetup{build: buildSWRR}, nil }

func buildSWRR(active []*endpoint, _ *Balancer) (picker, error) {
	p := &swrrPicker{eps: active, weight: make([]float64, len(active)), current: make([]float64, len(active))}
	for i, e := range active {
		p.weight[i] = e.weightNow()
		p.total += p.weight[i]
	}
	return p, nil
}

type swrrPicker struct {
	eps     []*endpoint
	weight  []float64
	total   float64
	mu      sync.Mutex
	current []float64 // guarded by mu
}

// pick is nginx's ngx_http_upstream_get_peer: every backend's current
// value grows by its weight, the largest wins and pays back the total.
func (p *swrrPicker) pick(Request, int64) *endpoint {
	p.mu.Lock()
	best := 0
	for i, w := range p.weight {
		p.current[i] += w
		if p.current[i] > p.current[best] {
			best = i
		}
	}
	p.current[best] -= p.total
	p.mu.Unlock()
	return p.eps[best]
}
