package lb

import (
	"math/rand/v2"
	"sync"
	"time"
)

// An Algorithm chooses the backend of each request: one of the values
// [RoundRobin], [SmoothWeighted], [EDF], [Random], [WeightedRandom],
// [LeastConn], [WeightedLeastConn], [P2C], [PeakEWMA], [IPHash],
// [RingHash], [Maglev] and [Geo], given to [New]. Each carries only its own
// settings (the ring's size on [RingHash], the decay time on [PeakEWMA],
// the zone latencies on [Geo]); its zero value uses the defaults. Each
// algorithm's file holds its picker, the algorithm as the guide describes
// it.
//
// This is gRPC's shape: the balancer keeps the backend set, health,
// outlier detection, slow start and statistics, and on every change of
// the rotation asks the algorithm for a new picker over the backends in
// rotation.
type Algorithm interface {
	// setup checks the algorithm's settings and says how to run it.
	setup() (algoSetup, error)
}

// algoSetup is what a balancer needs to know about its algorithm.
type algoSetup struct {
	// build returns the picker over the backends in rotation. It runs
	// under the balancer's lock whenever the rotation changes; the picker
	// it returns is immutable except for its own synchronised state.
	build func(active []*endpoint, b *Balancer) (picker, error)
	// affinity: the algorithm maps keys to backends, so slow start must
	// not re-pick.
	affinity bool
	// readsLoad: the algorithm picks by in-flight counts, which
	// Options.DisableStats turns off.
	readsLoad bool
	// decay, if not zero, makes the balancer keep Finagle's time-decayed
	// peak latency average with this time constant, and read the clock on
	// every pick.
	decay time.Duration
}

// picker chooses one backend of those in rotation; now is the balancer's
// clock when the balancer needed it (0 otherwise). It may return nil when
// nothing fits (Geo with every zone at capacity).
type picker interface {
	pick(req Request, now int64) *endpoint
}

// rng is the random source: the runtime's generator, or a seeded one under
// a mutex.
type rng struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (g *rng) uint64() uint64 {
	if g.r == nil {
		return rand.Uint64()
	}
	g.mu.Lock()
	v := g.r.Uint64()
	g.mu.Unlock()
	return v
}

// intn returns a number in [0, n) for n > 0 (Lemire's multiply-shift; the
// bias is below 2^-32 for any realistic n).
func (g *rng) intn(n int) int {
	return int((g.uint64() >> 32) * uint64(n) >> 32)
}

func (g *rng) float64() float64 { return float64(g.uint64()>>11) / (1 << 53) }
