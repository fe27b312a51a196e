package lb

// P2C is least request with the power of two random choices (Mitzenmacher
// 1996; Envoy's LEAST_REQUEST, gRPC's and go-zero's P2C): pick two distinct
// backends at random and send the request to the one with fewer requests in
// flight, relative to its weight ((in-flight + 1) / weight).
//
// Pros: it gets almost all of least connections' benefit — the expected
// worst queue drops from O(log n / log log n) to O(log log n) — at O(1) per
// pick with no lock, and unlike exact least connections many independent
// balancers do not all pile onto the same "least loaded" backend at once.
// Cons: it reacts to load, not latency, so a backend that answers errors
// fast (or is slow but has few requests queued) still attracts traffic; see
// [PeakEWMA]. Use it as the default for request/response traffic.
//
// P2C picks lock-free.
type P2C struct{}

func (P2C) setup() (algoSetup, error) {
	return algoSetup{build: func(active []*endpoint, b *Balancer) (picker, error) {
		return &p2cPicker{eps: active, inv: inverseWeights(active, true), rng: &b.rng}, nil
	}, readsLoad: true}, nil
}

type p2cPicker struct {
	eps []*endpoint
	inv []float64
	rng *rng
}

// two returns two distinct random indexes in [0, n) for n ≥ 2 from one
// random number.
func two(r *rng, n int) (int, int) {
	x := r.uint64()
	i := int((x >> 32) * uint64(n) >> 32)
	j := int((x & 0xffffffff) * uint64(n-1) >> 32)
	if j >= i {
		j++
	}
	return i, j
}

func (p *p2cPicker) pick(Request, int64) *endpoint {
	n := len(p.eps)
	if n == 1 {
		return p.eps[0]
	}
	i, j := two(p.rng, n)
	a, b := p.eps[i], p.eps[j]
	// two draws i and j alike, so a tie may go to either: < or <=.
	if float64(b.inflight()+1)*p.inv[j] < float64(a.inflight()+1)*p.inv[i] {
		return b
	}
	return a
}
