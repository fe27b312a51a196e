package resilience

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// ThrottleOptions configure an [AdaptiveThrottle]. The zero value is the
// SRE book's K = 2 over a 10 s window in 20 buckets.
type ThrottleOptions struct {
	// Name identifies the throttle in errors. Default "".
	Name string
	// K is the multiplier: the client sends up to K times the requests the
	// backend accepts. Lower is more aggressive (K = 1.1 sheds nearly
	// everything the backend would reject; K = 2 wastes up to one rejected
	// request per accepted one but reacts gently). Default 2; must be ≥ 1.
	K float64
	// Window is how far back requests and accepts count. Default 10 s.
	Window time.Duration
	// Buckets is the window's resolution. Default 20.
	Buckets int
	// Accepted reports whether a call's error still means the backend
	// accepted the request (a 404 does; a 503 or timeout does not).
	// Default: only a nil error.
	Accepted func(err error) bool
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Rand returns uniform numbers in [0, 1), safe for concurrent use.
	// Default math/rand/v2.Float64.
	Rand func() float64
}

// AdaptiveThrottle is client-side adaptive throttling from the Google SRE
// book ("Handling Overload"), as in go-zero's and kratos's breakers: each
// client tracks the requests it attempted and the requests the backend
// accepted over a window, and rejects locally with probability
//
//	max(0, (requests − K·accepts) / (requests + 1))
//
// so when the backend is rejecting, the client stops sending most of the
// doomed requests itself — and it recovers smoothly, without the breaker's
// hard open/half-open steps.
//
// Pros: no state machine to tune; rejections are proportional to the
// backend's refusals. Cons: some doomed requests still go out (by design,
// to notice recovery); each client learns alone.
//
// An AdaptiveThrottle is safe for concurrent use. It is a [Guard]. Make
// one with [NewAdaptiveThrottle]: the zero value's Enter returns an error
// wrapping [ErrInvalidConfig], and its AllowAt allows every request.
type AdaptiveThrottle struct {
	name     string
	k        float64
	accepted func(error) bool
	now      func() time.Time
	rand     func() float64

	mu   sync.Mutex
	ring bucketRing // guarded by mu: requests (a) and accepts (b)

	throttled counter
}

// ThrottleStats is a snapshot of a throttle's window.
type ThrottleStats struct {
	Requests, Accepts float64
	// RejectProbability is the SRE formula's current value.
	RejectProbability float64
	// Throttled counts calls rejected locally since creation.
	Throttled uint64
}

// NewAdaptiveThrottle returns a throttle configured by opts.
func NewAdaptiveThrottle(opts ThrottleOptions) (*AdaptiveThrottle, error) {
	setDefault(&opts.K, 2)
	if !(opts.K >= 1) || opts.K > 1e6 {
		return nil, configError("throttle K must be in [1, 1e6], got %v", opts.K)
	}
	if err := windowDefaults("throttle", &opts.Window, &opts.Buckets, 20); err != nil {
		return nil, err
	}
	if opts.Accepted == nil {
		opts.Accepted = func(err error) bool { return err == nil }
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Float64
	}
	return &AdaptiveThrottle{
		name: opts.Name, k: opts.K, accepted: opts.Accepted, now: opts.Now, rand: opts.Rand,
		ring: newBucketRing(opts.Window, opts.Buckets),
	}, nil
}

// made reports whether NewAdaptiveThrottle made t: the zero throttle has
// no window, and its At forms and Stats treat it as one that has seen
// nothing (Enter refuses it).
func (t *AdaptiveThrottle) made() bool { return t.now != nil }

// probability computes the SRE formula over the window. Requires t.mu.
func (t *AdaptiveThrottle) probability(now time.Time) (p, req, acc float64) {
	req, acc = t.ring.totals(now)
	return max(0, (req-t.k*acc)/(req+1)), req, acc
}

// AllowAt counts one request at now and reports whether it may be sent,
// deciding with u, a uniform number in [0, 1). A request it allows must be
// reported with [AdaptiveThrottle.RecordAt].
func (t *AdaptiveThrottle) AllowAt(now time.Time, u float64) bool {
	if !t.made() {
		return true
	}
	t.mu.Lock()
	p, _, _ := t.probability(now)
	t.ring.a[t.ring.slot(now)]++
	t.mu.Unlock()
	if u < p {
		t.throttled.add()
		return false
	}
	return true
}

// RecordAt reports whether the backend accepted a request sent at now.
func (t *AdaptiveThrottle) RecordAt(now time.Time, accepted bool) {
	if !accepted || !t.made() {
		return
	}
	t.mu.Lock()
	t.ring.b[t.ring.slot(now)]++
	t.mu.Unlock()
}

// Enter lets the call through or rejects it with a [*PolicyError] wrapping
// [ErrThrottled].
func (t *AdaptiveThrottle) Enter(ctx context.Context) (Permit, error) {
	if t == nil || t.now == nil {
		return Permit{}, notMade("throttle", "NewAdaptiveThrottle")
	}
	now := t.now()
	if !t.AllowAt(now, t.rand()) {
		return Permit{}, rejected("throttle", t.name, ErrThrottled, nil)
	}
	return Permit{Start: now, Ctx: ctx}, nil
}

// Exit records whether the backend accepted the call. The zero Permit
// stands for no call: its Exit records nothing.
func (t *AdaptiveThrottle) Exit(p Permit, err error) {
	if p == (Permit{}) {
		return
	}
	if err != nil && p.Ctx != nil && p.Ctx.Err() != nil {
		return // the caller gave up: says nothing about the backend
	}
	t.RecordAt(t.now(), t.accepted(err))
}

// Stats returns the window's counts and the current reject probability.
func (t *AdaptiveThrottle) Stats() ThrottleStats {
	if !t.made() {
		return ThrottleStats{}
	}
	t.mu.Lock()
	p, req, acc := t.probability(t.now())
	t.mu.Unlock()
	return ThrottleStats{Requests: req, Accepts: acc, RejectProbability: p, Throttled: t.throttled.load()}
}
