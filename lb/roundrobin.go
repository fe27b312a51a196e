package lb

import (
	"context"
	"sync/atomic"
)

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
// RoundRobin is safe for concurrent use.
type RoundRobin struct{ core }

var _ Balancer = (*RoundRobin)(nil)

// NewRoundRobin returns a round-robin balancer over backends.
func NewRoundRobin(backends []Backend, opts Options) (*RoundRobin, error) {
	b := &RoundRobin{}
	if err := b.init(backends, opts, rrAlgo{}, 0); err != nil {
		return nil, err
	}
	return b, nil
}

type rrAlgo struct{}

func (rrAlgo) affinity() bool { return false }

func (rrAlgo) build(active []*endpoint, c *core) (picker, error) {
	p := &rrPicker{eps: active}
	// Start at a random position so that many clients built at once do
	// not all hit the first backend first (as gRPC does).
	p.next.Store(uint32(c.rng.intn(len(active))))
	return p, nil
}

type rrPicker struct {
	next atomic.Uint32 // a 32-bit modulo is several times cheaper than a 64-bit one
	eps  []*endpoint
}

func (p *rrPicker) pick(Request, int64) *endpoint {
	return p.eps[(p.next.Add(1)-1)%uint32(len(p.eps))]
}

// Pick chooses the next backend in rotation. See [Balancer]. When nothing
// needs checking (no wake-up pending, no capacities, no slow start, no
// Avoid list) it is the rotation's one atomic add, plus the request
// counter unless [Options.DisableStats] is set.
func (b *RoundRobin) Pick(ctx context.Context, req Request) (Pick, error) {
	s := b.snap.Load()
	// A nil picker (nothing in rotation) fails the assertion; a nil
	// snapshot (the zero RoundRobin) goes to core.Pick's error.
	if s == nil {
		return b.core.Pick(ctx, req)
	}
	if p, ok := s.picker.(*rrPicker); ok && !s.hasWake && !s.checks && len(req.Avoid) == 0 && ctx.Err() == nil {
		e := p.pick(req, 0)
		if b.counted {
			e.requests.Add(1)
		}
		return Pick{e: e, c: &b.core}, nil
	}
	return b.core.Pick(ctx, req)
}
