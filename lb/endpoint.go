package lb

import (
	"math"
	"sync/atomic"
)

// endpoint is a backend and its live state. Hot counters sit on their own
// cache line so that picks on neighbouring backends do not contend.
type endpoint struct {
	b      Backend       // immutable, except that b.Weight is only read under Balancer.mu
	weight atomic.Uint64 // float64 bits of the current weight

	// A pick adds to requests and its Done to completed, so a request costs
	// one atomic add on each side; in flight is their difference.
	_         [64]byte
	requests  atomic.Uint64
	completed atomic.Uint64
	failures  atomic.Uint64
	_         [64 - 24]byte

	ewma  atomic.Uint64 // float64 bits: latency average in ns
	stamp atomic.Int64  // decay step (clock >> Balancer.shift) the average was last decayed to

	consecutive     atomic.Int64
	winStart        atomic.Int64
	winReq, winFail atomic.Uint64

	rampOn    atomic.Bool
	rampStart atomic.Int64

	// guarded by Balancer.mu
	draining, unhealthy, ejected bool
	ejectedUntil                 int64
	ejections                    int // ejection-time multiplier
	ejectTotal                   int
	lastEjection                 int64
	state                        State
	reason                       string // why the next state change happens
}

func (e *endpoint) weightNow() float64 { return math.Float64frombits(e.weight.Load()) }

// inflight returns the number of picks not yet Done. completed is read
// first: it can only have grown by the time requests is read, so the
// difference is never negative, and it is exact whenever no pick or Done
// runs concurrently.
func (e *endpoint) inflight() int64 {
	done := e.completed.Load()
	return int64(e.requests.Load() - done)
}

// latencyAt returns the latency average decayed to step (the clock
// shifted right by Balancer.shift), as Finagle's peak-EWMA reads it.
func (e *endpoint) latencyAt(step int64, tau float64) float64 {
	v := math.Float64frombits(e.ewma.Load())
	if v == 0 {
		return 0
	}
	if td := step - e.stamp.Load(); td > 0 { // td == 0 would multiply by decay(0) = 1
		v *= decay(float64(td) / tau)
	}
	return v
}

// decay returns e^-x for x ≥ 0; below 0.01 (a few milliseconds against a
// decay time of seconds, the common case at high request rates) a
// second-order Taylor series, accurate to 2e-7, saves the exponential.
func decay(x float64) float64 {
	if x < 0.01 { // (<= would differ by 2e-7 at 0.01)
		return 1 - x + x*x/2
	}
	return math.Exp(-x)
}

// latencyAlpha is the weight of a new observation in the clock-free
// latency average of algorithms that do not pick by latency.
const latencyAlpha = 0.1

// average folds rtt into a plain exponential moving average, without
// reading the clock: Stats get a latency figure for free.
func (e *endpoint) average(rtt float64) {
	for {
		old := e.ewma.Load()
		cur := math.Float64frombits(old)
		next := rtt
		if cur != 0 {
			next = cur + latencyAlpha*(rtt-cur)
		}
		if e.ewma.CompareAndSwap(old, math.Float64bits(next)) {
			return
		}
	}
}

// observe folds rtt, finished at decay step step, into the peak EWMA: a
// slower observation replaces the average at once, a faster one pulls it
// down with the weight of the time since the last step. tau is the decay
// time in steps. It is lock-free: the Done that moves the stamp to a new
// step applies that step's decay, by compare-and-swap, and the average is
// replaced by compare-and-swap; within a step, a Done that brings no new
// peak writes nothing.
func (e *endpoint) observe(rtt float64, step int64, tau float64) {
	w := 1.0
	// (step >= last would only decay by e^0 = 1.)
	if last := e.stamp.Load(); step > last && e.stamp.CompareAndSwap(last, step) {
		w = decay(float64(step-last) / tau)
	}
	for {
		old := e.ewma.Load()
		cur := math.Float64frombits(old)
		next := rtt
		if rtt <= cur { // (at rtt == cur either branch gives cur)
			next = cur*w + rtt*(1-w)
		}
		if next == cur || e.ewma.CompareAndSwap(old, math.Float64bits(next)) {
			return
		}
	}
}

func newEndpoint(b Backend) *endpoint {
	e := &endpoint{b: b}
	e.weight.Store(math.Float64bits(b.Weight))
	return e
}
