package ratelimit

import (
	"context"
	"sync/atomic"
	"time"
)

// GCRA is the generic cell rate algorithm, the form of the leaky bucket
// that ATM networks and go-redis/redis_rate use: the whole state is one
// timestamp, the theoretical arrival time (TAT) of the next event if
// events came exactly at the rate. An event at t is allowed when
// TAT − t ≤ Burst × interval; allowing it moves TAT on by one interval.
//
// GCRA admits exactly what a [TokenBucket] with the same rate and burst
// admits — the token count follows from the TAT: tokens(t) =
// min(Burst, Burst − (TAT − t)/interval) — but needs no refill
// arithmetic and no lock: one compare-and-swap on one atomic word, which
// is why it is the algorithm of choice for hot single keys and for Redis
// (one small value per key).
//
// Guide (Security Considerations → Rate Limiting, "Token Bucket: Smooth
// rate limiting"): pros — O(1) time and 8 bytes of state, bursts bounded
// by Burst, exact retry-after; cons — less intuitive than a counter, and
// like every bucket it does not enforce a calendar quota ("1,000 per
// day" resets nowhere: pair it with a window in a [Multi]). Use case: API
// gateways and per-key limits at high request rates.
//
// A GCRA is safe for concurrent use; its methods never take a lock.
type GCRA struct {
	p   params
	now func() time.Time
	tat atomic.Int64 // theoretical arrival time, Unix ns; never = idle
}

var _ Limiter = (*GCRA)(nil)

// NewGCRA returns a GCRA limiter admitting limit.Events per limit.Per with
// bursts of up to limit.Burst.
func NewGCRA(limit Limit) (*GCRA, error) {
	if err := limit.validate(true); err != nil {
		return nil, err
	}
	g := &GCRA{p: newParams(limit), now: time.Now}
	g.tat.Store(freshGCRA().tat)
	return g, nil
}

// Limit returns the limit the GCRA enforces.
func (g *GCRA) Limit() Limit { return g.p.limit }

// Allow reports whether one event may happen now (by time.Now)
// and consumes it if so. It is AllowN(now, 1) without building a
// [Decision]: one clock read and one compare-and-swap. The zero GCRA
// allows nothing.
func (g *GCRA) Allow() bool {
	if g.now == nil {
		return false
	}
	now := g.now().UnixNano()
	for {
		tat := g.tat.Load()
		newTAT := max(tat, now) + g.p.interval
		if newTAT-g.p.capacity > now {
			return false
		}
		if g.tat.CompareAndSwap(tat, newTAT) {
			return true
		}
	}
}

// AllowN reports whether n events may happen at now and consumes them if so.
func (g *GCRA) AllowN(now time.Time, n int) (Decision, error) {
	return decide(g.take, g.p.limit, g.p.limit.Burst, now, n, noWait)
}

// ReserveN books n events at the earliest time they conform and returns
// the delay in RetryAfter.
func (g *GCRA) ReserveN(now time.Time, n int) (Decision, error) {
	return decide(g.take, g.p.limit, g.p.limit.Burst, now, n, anyWait)
}

// Wait is shorthand for WaitN(ctx, 1).
func (g *GCRA) Wait(ctx context.Context) error { return g.WaitN(ctx, 1) }

// WaitN blocks until n events conform; see [Limiter].
func (g *GCRA) WaitN(ctx context.Context, n int) error {
	return waitN(ctx, g.take, g.p.limit.Burst, g.now, n)
}

// take runs the state machine on a copy of the TAT and publishes the new
// one with a compare-and-swap, retrying if another goroutine moved it.
func (g *GCRA) take(now, n, maxWait int64, commit bool) Decision {
	for {
		old := g.tat.Load()
		s := gcraState{old}
		d := s.take(&g.p, now, n, maxWait, commit)
		if !commit || !d.Allowed || g.tat.CompareAndSwap(old, s.tat) {
			return d
		}
	}
}

// gcraState is GCRA's state for one key: the theoretical arrival time,
// Unix ns.
type gcraState struct{ tat int64 }

// freshGCRA returns the state of a key at rest: its next event may come
// at any time.
func freshGCRA() gcraState { return gcraState{tat: never} }

func (s *gcraState) take(p *params, now, n, maxWait int64, commit bool) Decision {
	tat := s.tat
	newTAT := max(tat, now) + n*p.interval
	// The events conform once newTAT − t ≤ capacity.
	delay := max(newTAT-p.capacity-now, 0)
	if delay > maxWait {
		return Decision{Limit: p.limit, Remaining: int(max(now+p.capacity-max(tat, now), 0) / p.interval),
			RetryAfter: dur(delay), ResetAfter: dur(tat - now)}
	}
	if commit {
		s.tat = newTAT
	}
	return Decision{Allowed: true, Limit: p.limit, Remaining: int(max(now+p.capacity-newTAT, 0) / p.interval),
		RetryAfter: dur(delay), ResetAfter: dur(newTAT - now)}
}
