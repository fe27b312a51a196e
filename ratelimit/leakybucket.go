package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// LeakyBucket is the leaky bucket, in both of its classic forms over one
// state:
//
//   - as a meter ([LeakyBucket.AllowN]): each event pours one unit into a
//     bucket of Burst units that leaks at Events per Per; an event that
//     would overflow it is refused;
//   - as a queue, or pacer ([LeakyBucket.Take], [LeakyBucket.WaitN],
//     [LeakyBucket.ReserveN]): events leave at exactly one per interval,
//     each waiting for its slot, like go.uber.org/ratelimit.
//
// The state is the instant the bucket drains (equivalently, the next free
// departure slot), so metered and paced events share one budget.
//
// Guide (Security Considerations → Rate Limiting, "Leaky Bucket: Fixed
// rate processing"): pros — the output is perfectly smooth, which is what
// a fragile downstream (a payment provider, an SMTP relay, a message
// consumer) wants; cons — a queued request waits instead of failing fast,
// so latency grows with the queue, and bursts are delayed rather than
// served. Use case: pacing outbound calls and queue consumers (the guide,
// Message Queues → "Rate Limiting: Control request flow").
//
// A LeakyBucket is safe for concurrent use.
type LeakyBucket struct {
	limit    Limit
	interval int64
	capacity int64 // Burst × interval
	now      func() time.Time

	mu   sync.Mutex
	next int64 // guarded by mu: Unix ns when the bucket is empty / next slot is free
	counters
}

var _ Limiter = (*LeakyBucket)(nil)

// NewLeakyBucket returns an empty leaky bucket of limit.Burst units that
// leaks limit.Events per limit.Per.
func NewLeakyBucket(limit Limit, opts Options) (*LeakyBucket, error) {
	if err := limit.validate(true); err != nil {
		return nil, err
	}
	iv := limit.interval()
	return &LeakyBucket{limit: limit, interval: iv, capacity: int64(limit.Burst) * iv, now: opts.clock()}, nil
}

// Limit returns the limit the bucket enforces.
func (b *LeakyBucket) Limit() Limit { return b.limit }

// Allow is shorthand for AllowN(now, 1) with the configured clock.
func (b *LeakyBucket) Allow() bool {
	d, _ := b.AllowN(b.now(), 1)
	return d.Allowed
}

// AllowN meters: it reports whether n units fit in the bucket at now, and
// pours them in if so.
func (b *LeakyBucket) AllowN(now time.Time, n int) (Decision, error) {
	return allowN(b, b.limit.Burst, now, n)
}

// ReserveN queues n events: it books the next free departure slot and
// returns in RetryAfter how long to wait for it. Slots are one interval
// apart, so callers that wait their delay leave evenly spaced.
func (b *LeakyBucket) ReserveN(now time.Time, n int) (Decision, error) {
	return decide(b.pace, &b.counters, b.limit, b.limit.Burst, now, n, anyWait)
}

// Take blocks until the next departure slot and returns its time: the
// pacer of go.uber.org/ratelimit, with a context. Successive Takes return
// times one interval apart. It fails, taking no slot, when the slot lies
// beyond ctx's deadline.
func (b *LeakyBucket) Take(ctx context.Context) (time.Time, error) {
	if err := checkN(1, b.limit.Burst); err != nil {
		return time.Time{}, err
	}
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	now := b.now()
	if err := checkNow(now); err != nil {
		return time.Time{}, err
	}
	maxWait := int64(anyWait)
	if dl, ok := ctx.Deadline(); ok {
		maxWait = max(int64(dl.Sub(now)), 0)
	}
	d := b.pace(now.UnixNano(), 1, maxWait, true)
	b.count(d, 1)
	if !d.Allowed {
		return time.Time{}, fmt.Errorf("%w: the next slot is %v away, beyond the context deadline", ErrLimited, d.RetryAfter)
	}
	if err := sleep(ctx, d.RetryAfter); err != nil {
		return time.Time{}, err
	}
	return now.Add(d.RetryAfter), nil
}

// Wait is shorthand for WaitN(ctx, 1).
func (b *LeakyBucket) Wait(ctx context.Context) error { return b.WaitN(ctx, 1) }

// WaitN queues n events and blocks until their slot; see [Limiter].
func (b *LeakyBucket) WaitN(ctx context.Context, n int) error {
	return waitN(ctx, b.pace, &b.counters, b.limit.Burst, b.now, n)
}

func (b *LeakyBucket) stats() *counters { return &b.counters }

// take is the meter: the events pass at once if the level allows.
func (b *LeakyBucket) take(now, n, maxWait int64, commit bool) Decision {
	return b.decide(now, n, maxWait, commit, false)
}

// pace is the queue: the events wait until the bucket ahead of them drains.
func (b *LeakyBucket) pace(now, n, maxWait int64, commit bool) Decision {
	return b.decide(now, n, maxWait, commit, true)
}

func (b *LeakyBucket) decide(now, n, maxWait int64, commit, queue bool) Decision {
	b.mu.Lock()
	defer b.mu.Unlock()
	base := max(b.next, now)
	after := base + n*b.interval
	delay := max(after-b.capacity-now, 0) // meter: until the level has room
	if queue {
		delay = base - now // queue: until every event ahead has left
	}
	if delay > maxWait {
		return Decision{Limit: b.limit, Remaining: int(max(now+b.capacity-base, 0) / b.interval),
			RetryAfter: dur(delay), ResetAfter: dur(base - now)}
	}
	if commit {
		b.next = after
	}
	return Decision{Allowed: true, Limit: b.limit, Remaining: int(max(now+b.capacity-after, 0) / b.interval),
		RetryAfter: dur(delay), ResetAfter: dur(after - now)}
}
