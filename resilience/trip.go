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

// TripFunc adapts a function of gobreaker's counts to a [TripPolicy] that
// records nothing of its own.
type TripFunc func(counts Counts) bool

// Record does nothing: a TripFunc decides from gobreaker's counts alone.
func (TripFunc) Record(failed, slow bool) {}

// ReadyToTrip calls f.
func (f TripFunc) ReadyToTrip(c Counts) bool { return f(c) }

// Reset does nothing.
func (TripFunc) Reset() {}

// ConsecutiveFailures trips after n failures in a row (n ≥ 1). It is the
// simplest policy and reacts fastest to a dead dependency, but a dependency
// failing half of its calls never trips it.
func ConsecutiveFailures(n uint32) (TripFunc, error) {
	if n < 1 {
		return nil, configError("ConsecutiveFailures needs n >= 1, got %d", n)
	}
	return func(c Counts) bool { return c.ConsecutiveFailures >= n }, nil
}

// FailureRate trips when failures make up at least rate (in (0, 1]) of the
// calls in gobreaker's current window and the window holds at least
// minRequests counted calls. The window is a time window: fixed when only
// [BreakerOptions.Interval] is set, rolling in buckets of
// [BreakerOptions.BucketPeriod] when both are set (resilience4j's
// TIME_BASED sliding window).
func FailureRate(rate float64, minRequests uint32) (TripFunc, error) {
	if !(rate > 0 && rate <= 1) {
		return nil, configError("FailureRate needs a rate in (0, 1], got %v", rate)
	}
	if minRequests < 1 {
		return nil, configError("FailureRate needs minRequests >= 1, got %d", minRequests)
	}
	return func(c Counts) bool {
		n := c.TotalSuccesses + c.TotalFailures
		return n >= minRequests && float64(c.TotalFailures) >= rate*float64(n)
	}, nil
}

// CountWindow is a [TripPolicy] over the last Size calls (resilience4j's
// COUNT_BASED sliding window): it trips when the share of failed calls — or
// of slow calls, for one made by [NewSlowCallRate] — reaches the rate and
// the window holds at least the minimum number of calls. Unlike a time
// window it reacts as fast at 10 calls/s as at 10,000, but forgets nothing
// while traffic is idle. It is safe for concurrent use.
type CountWindow struct {
	rate     float64
	minCalls int
	slowOnly bool

	mu    sync.Mutex
	ring  []bool // guarded by mu: outcome of each slot (true = counts against)
	next  int    // guarded by mu
	n     int    // guarded by mu: filled slots
	marks int    // guarded by mu: true slots
}

// NewCountWindow returns a policy that trips when at least rate of the last
// size calls failed (slow calls count as failures) and at least minCalls
// calls were seen.
func NewCountWindow(size int, rate float64, minCalls int) (*CountWindow, error) {
	return newCountWindow("NewCountWindow", size, rate, minCalls, false)
}

// NewSlowCallRate returns a policy that trips when at least rate of the
// last size calls were slow (took longer than
// [BreakerOptions.SlowCallThreshold]) and at least minCalls calls were
// seen: it opens on a dependency that still answers, only too slowly.
func NewSlowCallRate(size int, rate float64, minCalls int) (*CountWindow, error) {
	return newCountWindow("NewSlowCallRate", size, rate, minCalls, true)
}

func newCountWindow(fn string, size int, rate float64, minCalls int, slow bool) (*CountWindow, error) {
	switch {
	case size < 1:
		return nil, configError("%s needs size >= 1, got %d", fn, size)
	case !(rate > 0 && rate <= 1):
		return nil, configError("%s needs a rate in (0, 1], got %v", fn, rate)
	case minCalls < 1 || minCalls > size:
		return nil, configError("%s needs minCalls in [1, size=%d], got %d", fn, size, minCalls)
	}
	return &CountWindow{rate: rate, minCalls: minCalls, slowOnly: slow, ring: make([]bool, size)}, nil
}

// Record adds one outcome, evicting the oldest when the window is full.
func (w *CountWindow) Record(failed, slow bool) {
	mark := failed
	if w.slowOnly {
		mark = slow
	}
	w.mu.Lock()
	if w.n == len(w.ring) {
		if w.ring[w.next] {
			w.marks--
		}
	} else {
		w.n++
	}
	w.ring[w.next] = mark
	if mark {
		w.marks++
	}
	w.next++
	if w.next == len(w.ring) {
		w.next = 0
	}
	w.mu.Unlock()
}

// ReadyToTrip reports whether the window's rate reached the threshold.
func (w *CountWindow) ReadyToTrip(Counts) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n >= w.minCalls && float64(w.marks) >= w.rate*float64(w.n)
}

// Reset empties the window.
func (w *CountWindow) Reset() {
	w.mu.Lock()
	clear(w.ring)
	w.next, w.n, w.marks = 0, 0, 0
	w.mu.Unlock()
}

// Rate returns the current share of marked calls in the window and the
// number of calls it holds.
func (w *CountWindow) Rate() (rate float64, calls int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n == 0 {
		return 0, 0
	}
	return float64(w.marks) / float64(w.n), w.n
}

var (
	_ TripPolicy = TripFunc(nil)
	_ TripPolicy = (*CountWindow)(nil)
)
