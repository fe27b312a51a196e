package resilience

import (
	"sync"

	"github.com/sony/gobreaker/v2"
)

// TripPolicy decides when a closed [CircuitBreaker] opens. gobreaker's own
// ReadyToTrip sees only its [Counts]; a TripPolicy may also keep its own
// record of outcomes (the last N calls), which the breaker feeds through
// Record before gobreaker consults ReadyToTrip for the same call.
//
// Implementations must be safe for concurrent use: Record runs on the
// calling goroutines, ReadyToTrip and Reset run under gobreaker's mutex and
// must be fast and must not call back into the breaker.
type TripPolicy interface {
	// Record observes one finished call the breaker counted (excluded calls
	// are not recorded). failed is true for failures, including slow calls;
	// slow is true when the call took longer than the slow-call threshold.
	Record(failed, slow bool)
	// ReadyToTrip is called after a failure in the closed state with
	// gobreaker's counts for the current window; true opens the breaker.
	ReadyToTrip(counts Counts) bool
	// Reset forgets recorded outcomes; the breaker calls it on every state
	// change.
	Reset()
}

// Counts are gobreaker's request counts for the breaker's current window
// (see [BreakerOptions.Interval] and [BreakerOptions.BucketPeriod]).
type Counts = gobreaker.Counts

// tripFunc is a [TripPolicy] that decides from gobreaker's counts alone.
type tripFunc func(counts Counts) bool

func (tripFunc) Record(failed, slow bool)    {}
func (f tripFunc) ReadyToTrip(c Counts) bool { return f(c) }
func (tripFunc) Reset()                      {}

// ConsecutiveFailures trips after n failures in a row (n ≥ 1). It is the
// simplest policy and reacts fastest to a dead dependency, but a dependency
// failing half of its calls never trips it.
func ConsecutiveFailures(n uint32) (TripPolicy, error) {
	if n < 1 {
		return nil, configError("ConsecutiveFailures needs n >= 1, got %d", n)
	}
	return tripFunc(func(c Counts) bool { return c.ConsecutiveFailures >= n }), nil
}

// FailureRate trips when failures make up at least rate (in (0, 1]) of the
// calls in gobreaker's current window and the window holds at least
// minRequests counted calls. The window is a time window: fixed when only
// [BreakerOptions.Interval] is set, rolling in buckets of
// [BreakerOptions.BucketPeriod] when both are set (resilience4j's
// TIME_BASED sliding window).
func FailureRate(rate float64, minRequests uint32) (TripPolicy, error) {
	if !(rate > 0 && rate <= 1) {
		return nil, configError("FailureRate needs a rate in (0, 1], got %v", rate)
	}
	if minRequests < 1 {
		return nil, configError("FailureRate needs minRequests >= 1, got %d", minRequests)
	}
	return tripFunc(func(c Counts) bool {
		n := c.TotalSuccesses + c.TotalFailures
		return n >= minRequests && float64(c.TotalFailures) >= rate*float64(n)
	}), nil
}

// CountWindowOptions configure a count window, a [TripPolicy] over the
// last Size calls (resilience4j's COUNT_BASED sliding window): it trips
// when the share of failed calls reaches FailureRate, or the share of slow
// calls reaches SlowCallRate, and the window holds at least MinCalls
// calls. Unlike a time window it reacts as fast at 10 calls/s as at
// 10,000, but forgets nothing while traffic is idle. Size, MinCalls and at
// least one of the rates are required.
type CountWindowOptions struct {
	// Size is the number of calls in the window, at least 1.
	Size int
	// FailureRate, in (0, 1], trips the breaker on the share of failed
	// calls (slow calls count as failures). 0: no failure-rate rule.
	FailureRate float64
	// SlowCallRate, in (0, 1], trips the breaker on the share of calls
	// slower than [BreakerOptions].SlowCallThreshold: it opens on a
	// dependency that still answers, only too slowly. 0: no slow-call
	// rule.
	SlowCallRate float64
	// MinCalls is the fewest calls the window must hold before it trips,
	// in [1, Size].
	MinCalls int
}

// countWindow is the TripPolicy NewCountWindow makes. It is safe for
// concurrent use.
type countWindow struct {
	failRate, slowRate float64
	minCalls           int

	mu    sync.Mutex
	ring  []uint8 // guarded by mu: outcome of each slot (markFailed, markSlow)
	next  int     // guarded by mu
	n     int     // guarded by mu: filled slots
	fails int     // guarded by mu: slots marked failed
	slows int     // guarded by mu: slots marked slow
}

const (
	markFailed uint8 = 1 << iota
	markSlow
)

// NewCountWindow returns a count-window [TripPolicy] configured by opts,
// for [BreakerOptions].Trip.
func NewCountWindow(opts CountWindowOptions) (TripPolicy, error) {
	switch {
	case opts.Size < 1:
		return nil, configError("count window Size must be >= 1, got %d", opts.Size)
	case !(opts.FailureRate >= 0 && opts.FailureRate <= 1):
		return nil, configError("count window FailureRate must be in (0, 1], got %v", opts.FailureRate)
	case !(opts.SlowCallRate >= 0 && opts.SlowCallRate <= 1):
		return nil, configError("count window SlowCallRate must be in (0, 1], got %v", opts.SlowCallRate)
	case opts.FailureRate == 0 && opts.SlowCallRate == 0:
		return nil, configError("count window needs a FailureRate or a SlowCallRate")
	case opts.MinCalls < 1 || opts.MinCalls > opts.Size:
		return nil, configError("count window MinCalls must be in [1, Size=%d], got %d", opts.Size, opts.MinCalls)
	}
	return &countWindow{failRate: opts.FailureRate, slowRate: opts.SlowCallRate, minCalls: opts.MinCalls, ring: make([]uint8, opts.Size)}, nil
}

// Record adds one outcome, evicting the oldest when the window is full.
func (w *countWindow) Record(failed, slow bool) {
	var mark uint8
	if failed {
		mark |= markFailed
	}
	if slow {
		mark |= markSlow
	}
	w.mu.Lock()
	if w.n == len(w.ring) {
		w.count(w.ring[w.next], -1)
	} else {
		w.n++
	}
	w.ring[w.next] = mark
	w.count(mark, 1)
	w.next++
	if w.next == len(w.ring) {
		w.next = 0
	}
	w.mu.Unlock()
}

// count adds d to the counts of mark's outcomes. Requires w.mu.
func (w *countWindow) count(mark uint8, d int) {
	if mark&markFailed != 0 {
		w.fails += d
	}
	if mark&markSlow != 0 {
		w.slows += d
	}
}

// ReadyToTrip reports whether a rate of the window reached its threshold.
func (w *countWindow) ReadyToTrip(Counts) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n < w.minCalls {
		return false
	}
	n := float64(w.n)
	return (w.failRate > 0 && float64(w.fails) >= w.failRate*n) || (w.slowRate > 0 && float64(w.slows) >= w.slowRate*n)
}

// Reset empties the window.
func (w *countWindow) Reset() {
	w.mu.Lock()
	clear(w.ring)
	w.next, w.n, w.fails, w.slows = 0, 0, 0, 0
	w.mu.Unlock()
}

// rates returns the window's shares of failed and slow calls and the
// number of calls it holds.
func (w *countWindow) rates() (failed, slow float64, calls int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n == 0 {
		return 0, 0, 0
	}
	return float64(w.fails) / float64(w.n), float64(w.slows) / float64(w.n), w.n
}

var (
	_ TripPolicy = tripFunc(nil)
	_ TripPolicy = (*countWindow)(nil)
)
