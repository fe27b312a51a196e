package resilience

import (
	"sync"
	"time"
)

// BudgetOptions configure a [Budget]. Ratio is required; every other
// field's zero value is a default, so BudgetOptions{Ratio: 0.1} allows
// extra attempts up to a tenth of the requests of the last 10 seconds,
// plus 10.
type BudgetOptions struct {
	// Ratio is the share of recent requests that extra attempts may add, in
	// (0, 1]. It is required — 0 is an error, not a default — because it
	// is the extra load the caller lets its retries put on a dependency;
	// 0.1, a tenth more at most, is the usual choice.
	Ratio float64
	// MinPerWindow extra attempts are always allowed per window, so a
	// quiet client can still retry. Default 10; negative means none.
	MinPerWindow int
	// Window is how far back requests count. Default 10 s.
	Window time.Duration
	// Buckets is the window's resolution. Default 10.
	Buckets int
	// Now is the clock for the methods without an "At" suffix. Default
	// time.Now.
	Now func() time.Time
}

// Budget limits extra attempts — retries or hedged requests — to a
// fraction of recent requests (Finagle's and gRPC's retry budget, the
// Google SRE book's per-client retry limit). A per-call limit of three
// attempts still triples the load of a fleet whose dependency is down; a
// budget caps the whole client at 1+ratio times its normal load, so retries
// cannot amplify an outage. The cost: during a real outage most calls are
// not retried at all.
//
// A Budget is safe for concurrent use; share one across every [Retry] or
// [Hedge] that calls the same dependency. Make one with [NewBudget]: the
// zero Budget has no window, records nothing and grants no extra attempt
// ([NewRetry] and [NewHedge] refuse it).
type Budget struct {
	ratio float64
	min   float64
	now   func() time.Time

	mu     sync.Mutex
	ring   bucketRing // guarded by mu: requests (a) and extras (b)
	denied uint64     // guarded by mu
}

// BudgetStats is a snapshot of a budget's window.
type BudgetStats struct {
	Requests, Extras float64
	// Denied counts extra attempts refused since the budget was created.
	Denied uint64
}

// NewBudget returns a budget that allows extra attempts up to opts.Ratio
// of the requests in the window, plus opts.MinPerWindow. A Ratio outside
// (0, 1] (or NaN) is an error wrapping [ErrInvalidConfig].
func NewBudget(opts BudgetOptions) (*Budget, error) {
	ratio := opts.Ratio
	if !(ratio > 0 && ratio <= 1) {
		return nil, configError("budget Ratio must be set in (0, 1], got %v", ratio)
	}
	setDefault(&opts.MinPerWindow, 10)
	opts.MinPerWindow = max(opts.MinPerWindow, 0)
	if err := windowDefaults("budget", &opts.Window, &opts.Buckets, 10); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Budget{ratio: ratio, min: float64(opts.MinPerWindow), now: opts.Now, ring: newBucketRing(opts.Window, opts.Buckets)}, nil
}

// RecordRequest counts one first attempt; see [Budget.RecordRequestAt].
func (b *Budget) RecordRequest() {
	if b.made() {
		b.RecordRequestAt(b.now())
	}
}

// made reports whether NewBudget made b: the zero Budget has no window.
func (b *Budget) made() bool { return len(b.ring.a) > 0 }

// RecordRequestAt counts one first attempt made at now.
func (b *Budget) RecordRequestAt(now time.Time) {
	if !b.made() {
		return
	}
	b.mu.Lock()
	b.ring.a[b.ring.slot(now)]++
	b.mu.Unlock()
}

// TryExtra asks for one extra attempt; see [Budget.TryExtraAt].
func (b *Budget) TryExtra() bool { return b.made() && b.TryExtraAt(b.now()) }

// TryExtraAt reports whether one more retry or hedge fits in the budget at
// now, and if so counts it.
func (b *Budget) TryExtraAt(now time.Time) bool {
	if !b.made() {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	i := b.ring.slot(now)
	req, extra := b.ring.totals(now)
	if extra+1 > b.ratio*req+b.min {
		b.denied++
		return false
	}
	b.ring.b[i]++
	return true
}

// Stats returns the counts in the current window.
func (b *Budget) Stats() BudgetStats {
	if !b.made() {
		return BudgetStats{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	req, extra := b.ring.totals(b.now())
	return BudgetStats{Requests: req, Extras: extra, Denied: b.denied}
}

// bucketRing counts two quantities, a and b, over a sliding window of time
// buckets. It is not safe for concurrent use: its owner's lock guards it.
type bucketRing struct {
	bucket time.Duration
	a, b   []float64
	epoch  []int64 // bucket number each slot holds
}

func newBucketRing(window time.Duration, buckets int) bucketRing {
	return bucketRing{bucket: window / time.Duration(buckets), a: make([]float64, buckets), b: make([]float64, buckets), epoch: make([]int64, buckets)}
}

// slot returns the index of now's bucket, clearing it if it held an older
// one.
func (r *bucketRing) slot(now time.Time) int {
	n := now.UnixNano() / int64(r.bucket)
	i := int(uint64(n) % uint64(len(r.a)))
	if r.epoch[i] != n {
		r.epoch[i], r.a[i], r.b[i] = n, 0, 0
	}
	return i
}

// totals sums the buckets still inside the window at now.
func (r *bucketRing) totals(now time.Time) (a, b float64) {
	n := now.UnixNano() / int64(r.bucket)
	for i := range r.a {
		if d := n - r.epoch[i]; d >= 0 && d < int64(len(r.a)) {
			a += r.a[i]
			b += r.b[i]
		}
	}
	return a, b
}

// windowDefaults fills a window of buckets (default 10 s in defBuckets) and
// validates it for the named policy.
func windowDefaults(policy string, window *time.Duration, buckets *int, defBuckets int) error {
	setDefault(window, 10*time.Second)
	setDefault(buckets, defBuckets)
	if *window < 0 { // 0 took the default above: < and <= agree
		return configError("%s Window must be positive, got %v", policy, *window)
	}
	if *buckets < 1 || time.Duration(*buckets) > *window {
		return configError("%s Buckets must be in [1, Window in ns], got %d", policy, *buckets)
	}
	return nil
}
