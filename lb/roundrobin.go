package lb

import "sync/atomic"

// RoundRobin sends each request to the next backend in turn.
//
// Pros (the guide, Load Balancing Strategies): simple, predictable, fair
// distribution. Cons: it doesn't consider server capacity or current load,
// so a slow or small backend gets as many requests as a fast one and its
// queue grows (see the lab's lb-capacity and lb-linkerd experiments). Use
// it when all servers have similar capacity and requests similar cost.
//
// A pick is one atomic add on a shared counter: lock-free and wait-free.
// Weights are ignored; use [SmoothWeighted] or [EDF] for weighted rotation.
type RoundRobin struct{}

func (RoundRobin) setup() (algoSetup, error) {
	return algoSetup{build: func(active []*endpoint, b *Balancer) (picker, error) {
		p := &rrPicker{eps: active}
		// Start at a random position so that many clients built at once do
		// not all hit the first backend first (as gRPC does).
		p.next.Store(uint32(b.rng.intn(len(active))))
		return p, nil
	}}, nil
}

type rrPicker struct {
	next atomic.Uint32 // a 32-bit modulo is several times cheaper than a 64-bit one
	eps  []*endpoint
}

func (p *rrPicker) pick(Request, int64) *endpoint {
	return p.eps[p.next.Add(1)%uint32(len(p.eps))] // from the random start's successor on
}
