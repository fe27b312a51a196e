package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Multi enforces several limits on one key at once — say 10 per second
// with a burst of 20 and 1,000 per day — and admits an event only when
// every limit admits it. A denied event consumes from none of them: Multi
// checks every limit first and charges them only if all agree, so a client
// hammering the per-second limit does not burn its daily quota.
//
// Guide (API Design → "Rate Limiting: Prevent abuse"): real APIs publish
// layered limits (a burst rate and a long-term quota); this is how to
// enforce them together. The decision reports the tightest limit: the
// one with the fewest events remaining, or the longest wait.
//
// A Multi is safe for concurrent use; one mutex makes the check-then-charge
// atomic across its limits.
type Multi struct {
	limiters []taker
	capacity int // the largest n every limit can grant
	now      func() time.Time

	mu sync.Mutex // serialises check-then-charge
}

var _ Limiter = (*Multi)(nil)

// NewMulti returns a limiter enforcing every limit in limits with the
// algorithm alg. It needs at least one limit.
func NewMulti(alg Algorithm, limits []Limit) (*Multi, error) {
	if len(limits) == 0 {
		return nil, fmt.Errorf("%w: a multi-limit policy needs at least one limit", ErrInvalidConfig)
	}
	m := &Multi{now: time.Now, capacity: int(^uint(0) >> 1)}
	for i, l := range limits {
		lim, err := New(alg, l)
		if err != nil {
			return nil, fmt.Errorf("limit %d (%v): %w", i, l, err)
		}
		m.limiters = append(m.limiters, lim.(taker))
		m.capacity = min(m.capacity, l.Capacity(alg))
	}
	return m, nil
}

// Capacity returns the largest n one request may ask of l under alg: Burst
// for the bucket algorithms, Events for the window algorithms. A larger n
// is refused with [ErrExceedsLimit], since it could never be granted.
func (l Limit) Capacity(alg Algorithm) int {
	switch alg {
	case AlgTokenBucket, AlgLeakyBucket, AlgGCRA:
		return l.Burst
	}
	return l.Events
}

// Limit returns the first limit of the policy.
func (m *Multi) Limit() Limit {
	if len(m.limiters) == 0 {
		return Limit{} // the zero Multi
	}
	return m.limiters[0].Limit()
}

// Limits returns every limit of the policy, in the order given.
func (m *Multi) Limits() []Limit {
	out := make([]Limit, len(m.limiters))
	for i, l := range m.limiters {
		out[i] = l.Limit()
	}
	return out
}

// Allow is shorthand for AllowN(now, 1) at time.Now(). The
// zero Multi allows nothing.
func (m *Multi) Allow() bool {
	if m.now == nil {
		return false
	}
	return m.take(m.now().UnixNano(), 1, noWait, true).Allowed
}

// AllowN reports whether every limit admits n events at now, and charges
// all of them if so, none otherwise.
func (m *Multi) AllowN(now time.Time, n int) (Decision, error) {
	return decide(m.take, m.Limit(), m.capacity, now, n, noWait)
}

// ReserveN books n events on every limit at the earliest time all of them
// admit it.
func (m *Multi) ReserveN(now time.Time, n int) (Decision, error) {
	return decide(m.take, m.Limit(), m.capacity, now, n, anyWait)
}

// Wait is shorthand for WaitN(ctx, 1).
func (m *Multi) Wait(ctx context.Context) error { return m.WaitN(ctx, 1) }

// WaitN blocks until every limit admits n events; see [Limiter].
func (m *Multi) WaitN(ctx context.Context, n int) error {
	return waitN(ctx, m.take, m.capacity, m.now, n)
}

func (m *Multi) take(now, n, maxWait int64, commit bool) Decision {
	m.mu.Lock()
	defer m.mu.Unlock()
	// Check: the events can go once the slowest limit admits them. (Of
	// limits tied for slowest, the denial below names the first whichever
	// is kept here: > or >= alike.)
	var worst Decision
	for i, l := range m.limiters {
		d := l.take(now, n, anyWait, false)
		if i == 0 || d.RetryAfter > worst.RetryAfter {
			worst = d
		}
	}
	delay := int64(worst.RetryAfter)
	if delay > maxWait {
		// Report the denial with the state of the limit that denies.
		for _, l := range m.limiters {
			if d := l.take(now, n, noWait, false); !d.Allowed && d.RetryAfter == worst.RetryAfter {
				return d
			}
		}
		worst.Allowed = false
		return worst
	}
	if !commit {
		return worst
	}
	// Charge: every limit admits the events at now+delay (admission only
	// gets easier as time passes).
	var out Decision
	var tightReset time.Duration
	for i, l := range m.limiters {
		d := l.take(now+delay, n, noWait, true)
		d.RetryAfter = dur(delay)
		d.ResetAfter += dur(delay)
		// The tightest limit: fewest remaining, then the longest to recover
		// (tied on both, either is the tightest: > or >= alike).
		d.Remaining = max(d.Remaining, 0)
		if i == 0 || d.Remaining < out.Remaining || d.Remaining == out.Remaining && d.ResetAfter > tightReset {
			out.Limit, out.Remaining, tightReset = d.Limit, d.Remaining, d.ResetAfter
		}
	}
	out.Allowed, out.RetryAfter, out.ResetAfter = true, dur(delay), tightReset
	return out
}
