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
// GCRA admits exactly what a token bucket with the same rate and burst
// admits, but needs no refill arithmetic and no lock: one compare-and-swap
// on one atomic word, which is why it is the algorithm of choice for hot
// single keys and for Redis (one small value per key).
//
// Guide (Security Considerations → Rate Limiting, "Token Bucket: Smooth
// rate limiting"): pros — smooth, O(1) time and 8 bytes of state, bursts
// bounded by Burst, exact retry-after; cons — less intuitive than a
// counter, and like every bucket it does not enforce a calendar quota
// ("1,000 per day" resets nowhere: pair it with a window in a [Multi]).
// Use case: API gateways and per-key limits at high request rates.
//
// A GCRA is safe for concurrent use; its methods never take a lock.
type GCRA struct {
	limit    Limit
	interval int64 // ns per event
	capacity int64 // Burst × interval: the tolerance plus one interval
	now      func() time.Time
	tat      atomic.Int64 // theoretical arrival time, Unix ns; 0 = idle
	counters
}

var _ Limiter = (*GCRA)(nil)

// NewGCRA returns a GCRA limiter admitting limit.Events per limit.Per with
// bursts of up to limit.Burst.
func NewGCRA(limit Limit, opts Options) (*GCRA, error) {
	if err := limit.validate(true); err != nil {
		return nil, err
	}
	iv := limit.interval()
	return &GCRA{limit: limit, interval: iv, capacity: int64(limit.Burst) * iv, now: opts.clock()}, nil
}

// Limit returns the limit the GCRA enforces.
func (g *GCRA) Limit() Limit { return g.limit }

// Allow reports whether one event may happen now (by the configured
// clock) and consumes it if so. It is AllowN(now, 1) without building a
// [Decision]: one clock read and one compare-and-swap.
func (g *GCRA) Allow() bool {
	now := g.now().UnixNano()
	for {
		tat := g.tat.Load()
		newTAT := max(tat, now) + g.interval
		if newTAT-g.capacity > now {
			g.denied.Add(1)
			return false
		}
		if g.tat.CompareAndSwap(tat, newTAT) {
			g.allowed.Add(1)
			return true
		}
	}
}

// AllowN reports whether n events may happen at now and consumes them if so.
func (g *GCRA) AllowN(now time.Time, n int) (Decision, error) {
	return allowN(g, g.limit.Burst, now, n)
}

// ReserveN books n events at the earliest time they conform and returns
// the delay in RetryAfter.
func (g *GCRA) ReserveN(now time.Time, n int) (Decision, error) {
	return reserveN(g, g.limit.Burst, now, n)
}

// Wait is shorthand for WaitN(ctx, 1).
func (g *GCRA) Wait(ctx context.Context) error { return g.WaitN(ctx, 1) }

// WaitN blocks until n events conform; see [Limiter].
func (g *GCRA) WaitN(ctx context.Context, n int) error {
	return waitN(ctx, g.take, &g.counters, g.limit.Burst, g.now, n)
}

func (g *GCRA) stats() *counters { return &g.counters }

func (g *GCRA) take(now, n, maxWait int64, commit bool) Decision {
	for {
		tat := g.tat.Load()
		newTAT := max(tat, now) + n*g.interval
		// The events conform once newTAT − t ≤ capacity.
		delay := max(newTAT-g.capacity-now, 0)
		if delay > maxWait {
			return Decision{Limit: g.limit, Remaining: int(max(now+g.capacity-max(tat, now), 0) / g.interval),
				RetryAfter: dur(delay), ResetAfter: dur(tat - now)}
		}
		if commit && !g.tat.CompareAndSwap(tat, newTAT) {
			continue
		}
		return Decision{Allowed: true, Limit: g.limit, Remaining: int(max(now+g.capacity-newTAT, 0) / g.interval),
			RetryAfter: dur(delay), ResetAfter: dur(newTAT - now)}
	}
}
