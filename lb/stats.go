package lb

import (
	"math"
	"time"
)

// Stats is a snapshot of a balancer.
type Stats struct {
	// Backends lists every backend in the order added.
	Backends []BackendStats
	// InRotation is the number of backends Pick chooses from.
	InRotation int
	// Panic reports that too few backends are healthy and all of them are
	// in rotation (see [Options.PanicThreshold]).
	Panic bool
}

// BackendStats is one backend's counters and state.
type BackendStats struct {
	Addr   string
	Zone   string
	Weight float64
	State  State
	// InFlight is the number of picks not yet Done.
	InFlight int64
	// Requests and Failures count picks and failed results since the
	// backend was added.
	Requests, Failures uint64
	// Latency is a moving average of the latencies reported through
	// [Pick.Done]: for [PeakEWMA] its time-decayed, peak-sensitive cost
	// figure; for the other algorithms a plain exponential moving average
	// (each new report weighs a tenth) that costs no clock read. Zero
	// before the first report.
	Latency time.Duration
	// Ejections counts outlier ejections.
	Ejections int
}

// Stats returns a snapshot of every backend's counters and state.
func (b *Balancer) Stats() Stats {
	now := b.clock()
	s := b.snap.Load()
	if s == nil {
		return Stats{} // the zero balancer
	}
	if s.hasWake && now >= s.wake {
		s = b.refresh(now)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	out := Stats{Backends: make([]BackendStats, len(b.eps)), InRotation: len(s.active), Panic: s.panic}
	for i, e := range b.eps {
		out.Backends[i] = BackendStats{
			Addr: e.b.Addr, Zone: e.b.Zone, Weight: e.b.Weight, State: e.state,
			InFlight: e.inflight(), Requests: e.requests.Load(), Failures: e.failures.Load(),
			Latency: time.Duration(math.Float64frombits(e.ewma.Load())), Ejections: e.ejectTotal,
		}
	}
	return out
}
