package ratelimit

import (
	"context"
	"sync"
	"time"
)

// TokenBucket is the token bucket: a bucket holds up to Burst tokens and
// refills at Events per Per; each event takes a token, and an event that
// finds too few tokens is refused (AllowN) or waits for them (WaitN).
//
// The state is the textbook pair, as in golang.org/x/time/rate: the
// tokens in the bucket and the time they were counted. A decision first
// refills — tokens += (now − last) × rate, at most Burst — then takes.
// Tokens are counted in nanoseconds of refill (one token is Per/Events
// of them), so refilling is exact integer arithmetic. [GCRA] keeps the
// same bucket as one timestamp and admits exactly the same events.
//
// Guide (Security Considerations → Rate Limiting, "Token Bucket: Smooth
// rate limiting"): pros — allows short bursts up to Burst while holding
// the long-run rate, cheap, easy to explain to clients; cons — a full
// bucket lets Burst events through at once, so downstream must absorb
// bursts (the output is smooth only over spans longer than a burst), and
// there is no calendar quota. Use case: public APIs that tolerate bursty
// clients (GitHub, Stripe, AWS API Gateway use it).
//
// A TokenBucket is safe for concurrent use.
type TokenBucket struct {
	p   params
	now func() time.Time

	mu sync.Mutex
	s  tokenBucketState // guarded by mu
}

var _ Limiter = (*TokenBucket)(nil)

// NewTokenBucket returns a full token bucket of limit.Burst tokens that
// refills at limit.Events per limit.Per.
func NewTokenBucket(limit Limit) (*TokenBucket, error) {
	if err := limit.validate(true); err != nil {
		return nil, err
	}
	p := newParams(limit)
	return &TokenBucket{p: p, now: time.Now, s: freshTokenBucket(&p)}, nil
}

// Limit returns the limit the bucket enforces.
func (b *TokenBucket) Limit() Limit { return b.p.limit }

// Tokens returns the number of tokens in the bucket at now (negative when
// reservations have borrowed ahead).
func (b *TokenBucket) Tokens(now time.Time) float64 {
	if b.p.interval == 0 {
		return 0 // the zero TokenBucket
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return float64(b.s.refill(&b.p, now.UnixNano())) / float64(b.p.interval)
}

// Allow reports whether one token is available now (by time.Now)
// and takes it if so. It is AllowN(now, 1) without building a
// [Decision]. The zero TokenBucket allows nothing.
func (b *TokenBucket) Allow() bool {
	if b.now == nil {
		return false
	}
	now := b.now().UnixNano()
	b.mu.Lock()
	defer b.mu.Unlock()
	tokens := b.s.refill(&b.p, now)
	if tokens < b.p.interval {
		return false
	}
	b.s.tokens, b.s.last = tokens-b.p.interval, now
	return true
}

// AllowN reports whether n tokens are available at now and takes them if so.
func (b *TokenBucket) AllowN(now time.Time, n int) (Decision, error) {
	return decide(b.take, b.p.limit, b.p.limit.Burst, now, n, noWait)
}

// ReserveN takes n tokens, borrowing ahead if the bucket is short, and
// returns in RetryAfter how long until the debt is repaid.
func (b *TokenBucket) ReserveN(now time.Time, n int) (Decision, error) {
	return decide(b.take, b.p.limit, b.p.limit.Burst, now, n, anyWait)
}

// Wait is shorthand for WaitN(ctx, 1).
func (b *TokenBucket) Wait(ctx context.Context) error { return b.WaitN(ctx, 1) }

// WaitN blocks until n tokens are available; see [Limiter].
func (b *TokenBucket) WaitN(ctx context.Context, n int) error {
	return waitN(ctx, b.take, b.p.limit.Burst, b.now, n)
}

func (b *TokenBucket) take(now, n, maxWait int64, commit bool) Decision {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.s.take(&b.p, now, n, maxWait, commit)
}

// tokenBucketState is a token bucket's state for one key.
type tokenBucketState struct {
	tokens int64 // at last, in ns of refill; negative after borrowing ahead
	last   int64 // Unix ns when tokens was counted
}

// freshTokenBucket returns a full bucket, never used.
func freshTokenBucket(p *params) tokenBucketState {
	return tokenBucketState{tokens: p.capacity, last: never}
}

// refill returns the tokens at now: those counted at last plus what the
// elapsed time added, at most a full bucket. A now before last (another
// goroutine's later clock reading, or a [Multi] booking ahead) takes
// back what that time would have added, so the bucket is the same
// whatever order the instants come in. (Written as a test of what the
// bucket lacks, the sum cannot overflow, however long the bucket rested;
// where the elapsed time equals what it lacks, both branches return a
// full bucket: >= or > alike.)
func (s *tokenBucketState) refill(p *params, now int64) int64 {
	if s.last == never || now-s.last >= p.capacity-s.tokens {
		return p.capacity
	}
	return s.tokens + (now - s.last)
}

func (s *tokenBucketState) take(p *params, now, n, maxWait int64, commit bool) Decision {
	tokens := s.refill(p, now)
	after := tokens - n*p.interval
	delay := max(-after, 0) // borrowing ahead: the debt is repaid in -after ns
	if delay > maxWait {
		return Decision{Limit: p.limit, Remaining: int(max(tokens, 0) / p.interval),
			RetryAfter: dur(delay), ResetAfter: dur(p.capacity - tokens)}
	}
	if commit {
		s.tokens, s.last = after, now
	}
	return Decision{Allowed: true, Limit: p.limit, Remaining: int(max(after, 0) / p.interval),
		RetryAfter: dur(delay), ResetAfter: dur(p.capacity - after)}
}
