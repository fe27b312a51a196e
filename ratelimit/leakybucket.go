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
	p   params
	now func() time.Time

	mu sync.Mutex
	s  leakyBucketState // guarded by mu
}

var _ Limiter = (*LeakyBucket)(nil)

// NewLeakyBucket returns an empty leaky bucket of limit.Burst units that
// leaks limit.Events per limit.Per.
func NewLeakyBucket(limit Limit) (*LeakyBucket, error) {
	if err := limit.validate(true); err != nil {
		return nil, err
	}
	return &LeakyBucket{p: newParams(limit), now: time.Now, s: freshLeakyBucket()}, nil
}

// Limit returns the limit the bucket enforces.
func (b *LeakyBucket) Limit() Limit { return b.p.limit }

// Allow is shorthand for AllowN(now, 1) at time.Now(). The
// zero LeakyBucket allows nothing.
func (b *LeakyBucket) Allow() bool {
	if b.now == nil {
		return false
	}
	return b.take(b.now().UnixNano(), 1, noWait, true).Allowed
}

// AllowN meters: it reports whether n units fit in the bucket at now, and
// pours them in if so.
func (b *LeakyBucket) AllowN(now time.Time, n int) (Decision, error) {
	return decide(b.take, b.p.limit, b.p.limit.Burst, now, n, noWait)
}

// ReserveN queues n events: it books the next free departure slot and
// returns in RetryAfter how long to wait for it. Slots are one interval
// apart, so callers that wait their delay leave evenly spaced.
func (b *LeakyBucket) ReserveN(now time.Time, n int) (Decision, error) {
	return decide(b.pace, b.p.limit, b.p.limit.Burst, now, n, anyWait)
}

// Take blocks until the next departure slot and returns its time: the
// pacer of go.uber.org/ratelimit, with a context. Successive Takes return
// times one interval apart. It fails, taking no slot, when the slot lies
// beyond ctx's deadline.
func (b *LeakyBucket) Take(ctx context.Context) (time.Time, error) {
	if err := checkN(1, b.p.limit.Burst); err != nil {
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
	return waitN(ctx, b.pace, b.p.limit.Burst, b.now, n)
}

// take is the meter: the events pass at once if the level allows.
func (b *LeakyBucket) take(now, n, maxWait int64, commit bool) Decision {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.s.decide(&b.p, now, n, maxWait, commit, false)
}

// pace is the queue: the events wait until the bucket ahead of them drains.
func (b *LeakyBucket) pace(now, n, maxWait int64, commit bool) Decision {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.s.decide(&b.p, now, n, maxWait, commit, true)
}

// leakyBucketState is a leaky bucket's state for one key: the instant,
// Unix ns, when the bucket is empty, which is also the next free
// departure slot.
type leakyBucketState struct{ next int64 }

// freshLeakyBucket returns an empty bucket: it drained long ago.
func freshLeakyBucket() leakyBucketState { return leakyBucketState{next: never} }

// take is the meter, the form a key of a [Keyed] uses.
func (s *leakyBucketState) take(p *params, now, n, maxWait int64, commit bool) Decision {
	return s.decide(p, now, n, maxWait, commit, false)
}

func (s *leakyBucketState) decide(p *params, now, n, maxWait int64, commit, queue bool) Decision {
	base := max(s.next, now)
	after := base + n*p.interval
	delay := max(after-p.capacity-now, 0) // meter: until the level has room
	if queue {
		delay = base - now // queue: until every event ahead has left
	}
	if delay > maxWait {
		return Decision{Limit: p.limit, Remaining: int(max(now+p.capacity-base, 0) / p.interval),
			RetryAfter: dur(delay), ResetAfter: dur(base - now)}
	}
	if commit {
		s.next = after
	}
	return Decision{Allowed: true, Limit: p.limit, Remaining: int(max(now+p.capacity-after, 0) / p.interval),
		RetryAfter: dur(delay), ResetAfter: dur(after - now)}
}
