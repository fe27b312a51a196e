package ratelimit

import (
	"context"
	"sync/atomic"
	"time"
)

// TokenBucket is the token bucket: a bucket holds up to Burst tokens and
// refills at Events per Per; each event takes a token, and an event that
// finds too few tokens is refused (AllowN) or waits for them (WaitN).
//
// The classic form stores a token count and the time it was last
// updated. This one stores a single instant instead — when the bucket
// was, or will be, empty — because the token count follows from it:
// tokens(t) = min(Burst, (t − empty) × rate). One word means one atomic
// compare-and-swap per decision, no lock, and better scaling on many
// cores than golang.org/x/time/rate's mutex.
//
// Guide (Security Considerations → Rate Limiting, "Token Bucket: Smooth
// rate limiting"): pros — allows short bursts up to Burst while holding
// the long-run rate, cheap, easy to explain to clients; cons — a full
// bucket lets Burst events through at once, so downstream must absorb
// bursts, and there is no calendar quota. Use case: public APIs that
// tolerate bursty clients (GitHub, Stripe, AWS API Gateway use it).
//
// A TokenBucket is safe for concurrent use; its methods never take a lock.
type TokenBucket struct {
	limit    Limit
	interval int64 // ns to refill one token
	capacity int64 // Burst × interval: a full bucket, in ns of refill
	now      func() time.Time
	empty    atomic.Int64 // Unix ns at which the bucket holds no tokens
	counters
}

var _ Limiter = (*TokenBucket)(nil)

// NewTokenBucket returns a full token bucket of limit.Burst tokens that
// refills at limit.Events per limit.Per.
func NewTokenBucket(limit Limit, opts Options) (*TokenBucket, error) {
	if err := limit.validate(true); err != nil {
		return nil, err
	}
	iv := limit.interval()
	return &TokenBucket{limit: limit, interval: iv, capacity: int64(limit.Burst) * iv, now: opts.clock()}, nil
}

// Limit returns the limit the bucket enforces.
func (b *TokenBucket) Limit() Limit { return b.limit }

// Tokens returns the number of tokens in the bucket at now (negative when
// reservations have borrowed ahead).
func (b *TokenBucket) Tokens(now time.Time) float64 {
	credit := min(now.UnixNano()-b.empty.Load(), b.capacity)
	return float64(credit) / float64(b.interval)
}

// Allow reports whether one token is available now (by the configured
// clock) and takes it if so. It is AllowN(now, 1) without building a
// [Decision]: one clock read and one compare-and-swap.
func (b *TokenBucket) Allow() bool {
	now := b.now().UnixNano()
	for {
		empty := b.empty.Load()
		after := max(empty, now-b.capacity) + b.interval
		if after > now {
			b.denied.Add(1)
			return false
		}
		if b.empty.CompareAndSwap(empty, after) {
			b.allowed.Add(1)
			return true
		}
	}
}

// AllowN reports whether n tokens are available at now and takes them if so.
func (b *TokenBucket) AllowN(now time.Time, n int) (Decision, error) {
	return allowN(b, b.limit.Burst, now, n)
}

// ReserveN takes n tokens, borrowing ahead if the bucket is short, and
// returns in RetryAfter how long until the debt is repaid.
func (b *TokenBucket) ReserveN(now time.Time, n int) (Decision, error) {
	return reserveN(b, b.limit.Burst, now, n)
}

// Wait is shorthand for WaitN(ctx, 1).
func (b *TokenBucket) Wait(ctx context.Context) error { return b.WaitN(ctx, 1) }

// WaitN blocks until n tokens are available; see [Limiter].
func (b *TokenBucket) WaitN(ctx context.Context, n int) error {
	return waitN(ctx, b.take, &b.counters, b.limit.Burst, b.now, n)
}

func (b *TokenBucket) stats() *counters { return &b.counters }

func (b *TokenBucket) take(now, n, maxWait int64, commit bool) Decision {
	cost := n * b.interval
	for {
		empty := b.empty.Load()
		// A bucket idle long enough is full: its empty instant is at most
		// one capacity in the past.
		base := max(empty, now-b.capacity)
		after := base + cost
		delay := max(after-now, 0) // tokens go negative until after
		if delay > maxWait {
			return Decision{Limit: b.limit, Remaining: int(max(now-base, 0) / b.interval),
				RetryAfter: dur(delay), ResetAfter: dur(base + b.capacity - now)}
		}
		if commit && !b.empty.CompareAndSwap(empty, after) {
			continue
		}
		return Decision{Allowed: true, Limit: b.limit, Remaining: int(max(now-after, 0) / b.interval),
			RetryAfter: dur(delay), ResetAfter: dur(after + b.capacity - now)}
	}
}
