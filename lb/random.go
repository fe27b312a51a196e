package lb

import "sort"

// Random sends each request to a backend chosen uniformly at random.
//
// Pros: no shared state at all, so it scales perfectly across cores and
// across independent clients; over many requests the shares are equal.
// Cons: like round robin it ignores capacity and load, and over short
// spans it is lumpier than round robin (some backend gets two requests in a
// row while another gets none), which raises tail latency. Use it for many
// independent clients where coordinating a rotation is not worth it.
//
// Random picks lock-free.
type Random struct{}

func (Random) setup() (algoSetup, error) {
	return algoSetup{build: func(active []*endpoint, b *Balancer) (picker, error) {
		return &randomPicker{eps: active, rng: &b.rng}, nil
	}}, nil
}

type randomPicker struct {
	eps []*endpoint
	rng *rng
}

func (p *randomPicker) pick(Request, int64) *endpoint { return p.eps[p.rng.intn(len(p.eps))] }

// WeightedRandom sends each request to a backend chosen at random with
// probability proportional to its weight.
//
// Pros: it considers server capacity with no shared state (a binary search
// over cumulative weights); fractional weights are exact in expectation.
// Cons: it doesn't adapt to load, and is lumpier than [SmoothWeighted] or
// [EDF] over short spans. Use it for heterogeneous backends behind many
// independent clients.
//
// WeightedRandom picks lock-free.
type WeightedRandom struct{}

func (WeightedRandom) setup() (algoSetup, error) { return algoSetup{build: buildWRandom}, nil }

func buildWRandom(active []*endpoint, b *Balancer) (picker, error) {
	p := &wrandPicker{eps: active, cum: make([]float64, len(active)), rng: &b.rng}
	sum := 0.0
	for i, e := range active {
		sum += e.weightNow()
		p.cum[i] = sum
	}
	return p, nil
}

type wrandPicker struct {
	eps []*endpoint
	cum []float64 // cumulative weights
	rng *rng
}

func (p *wrandPicker) pick(Request, int64) *endpoint {
	x := p.rng.float64() * p.cum[len(p.cum)-1]
	// x equals a cumulative weight with probability 0, so > and >= agree;
	// min guards a product rounded up to the total.
	i := sort.Search(len(p.cum), func(i int) bool { return p.cum[i] > x })
	return p.eps[min(i, len(p.eps)-1)]
}
