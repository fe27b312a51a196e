package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Errors returned by the package, testable with [errors.Is].
var (
	// ErrInvalidConfig reports a bad limit or option: a rate, burst or
	// window that is zero or negative, a bad prefix length, a nil client.
	ErrInvalidConfig = errors.New("ratelimit: invalid configuration")
	// ErrInvalidN reports a request for n < 1 events.
	ErrInvalidN = errors.New("ratelimit: invalid event count")
	// ErrExceedsLimit reports a request for more events than the limit can
	// ever grant at once (n > burst, or n > the window's quota). Such a
	// request is refused at once rather than waiting forever.
	ErrExceedsLimit = errors.New("ratelimit: request exceeds the limit")
	// ErrLimited is returned by waits that would end after the context's
	// deadline, and by users of [Keyed] and redislimit.Limiter that want an
	// error for a denial.
	ErrLimited = errors.New("ratelimit: rate limited")
	// ErrEmptyKey reports an empty key given to a keyed limiter.
	ErrEmptyKey = errors.New("ratelimit: empty key")
	// ErrKeyFunc wraps the error of a key function that failed.
	ErrKeyFunc = errors.New("ratelimit: key function failed")
	// ErrMalformedHeader reports a forwarding header (X-Forwarded-For,
	// Forwarded) from a trusted proxy that does not parse.
	ErrMalformedHeader = errors.New("ratelimit: malformed forwarding header")
	// ErrBackend reports a failed or timed-out call to the shared store
	// (Redis) behind a distributed limiter.
	ErrBackend = errors.New("ratelimit: backend unavailable")
)

// Limit is a rate: Events per Per, with a Burst for the bucket algorithms.
// It is a value, like a rate.Limit, and every field is required: the
// constructors reject a zero or negative field with [ErrInvalidConfig].
//
// The window algorithms ([FixedWindow], [SlidingLog], [SlidingWindow])
// admit Events per window of length Per and ignore Burst. The bucket
// algorithms ([TokenBucket], [LeakyBucket], [GCRA]) refill or drain at
// Events/Per and hold at most Burst.
type Limit struct {
	// Events is the number of events allowed per Per (the quota).
	Events int
	// Per is the window length, or the period over which Events refill:
	// at most 2⁶¹ ns, about 73 years.
	Per time.Duration
	// Burst is the bucket capacity: how many events may pass at once
	// after an idle spell. Ignored by the window algorithms.
	Burst int
}

// PerSecond returns a limit of n events per second with a burst of n.
func PerSecond(n int) Limit { return Limit{Events: n, Per: time.Second, Burst: n} }

// PerMinute returns a limit of n events per minute with a burst of n.
func PerMinute(n int) Limit { return Limit{Events: n, Per: time.Minute, Burst: n} }

// PerDay returns a limit of n events per 24 hours with a burst of n.
func PerDay(n int) Limit { return Limit{Events: n, Per: 24 * time.Hour, Burst: n} }

// String renders the limit as "10/1s burst 20".
func (l Limit) String() string {
	if l.Burst != 0 && l.Burst != l.Events {
		return fmt.Sprintf("%d/%v burst %d", l.Events, l.Per, l.Burst)
	}
	return fmt.Sprintf("%d/%v", l.Events, l.Per)
}

// interval returns the time one event costs: Per/Events, at least 1ns.
func (l Limit) interval() int64 { return max(int64(l.Per)/int64(l.Events), 1) }

// validate checks the fields the algorithm uses; bucket says whether
// Burst matters.
func (l Limit) validate(bucket bool) error {
	switch {
	case l.Events < 1:
		return fmt.Errorf("%w: events per period must be at least 1, got %d", ErrInvalidConfig, l.Events)
	case l.Per <= 0:
		return fmt.Errorf("%w: period (window) must be positive, got %v", ErrInvalidConfig, l.Per)
	case l.Per > maxPer:
		return fmt.Errorf("%w: period (window) must be at most %v, got %v", ErrInvalidConfig, time.Duration(maxPer), l.Per)
	case int64(l.Per) < int64(l.Events):
		return fmt.Errorf("%w: rate %d per %v is finer than one event per nanosecond", ErrInvalidConfig, l.Events, l.Per)
	case bucket && l.Burst < 1:
		return fmt.Errorf("%w: burst must be at least 1, got %d", ErrInvalidConfig, l.Burst)
	case bucket && int64(l.Burst) > math.MaxInt64/4/l.interval():
		return fmt.Errorf("%w: burst %d times interval %v overflows", ErrInvalidConfig, l.Burst, time.Duration(l.interval()))
	case !bucket && l.Burst < 0:
		return fmt.Errorf("%w: burst must not be negative, got %d", ErrInvalidConfig, l.Burst)
	}
	return nil
}

// checkN validates a request for n events against a capacity. Every
// limiter a constructor made has a capacity of at least one; the zero
// value has none.
func checkN(n, capacity int) error {
	if capacity < 1 {
		return errNotMade("limiter", "its constructor (NewTokenBucket, New, NewMulti, ...)")
	}
	if n < 1 {
		return fmt.Errorf("%w: n must be at least 1, got %d", ErrInvalidN, n)
	}
	if n > capacity {
		return fmt.Errorf("%w: n=%d is more than the %d the limit can ever grant at once", ErrExceedsLimit, n, capacity)
	}
	return nil
}

// errNotMade is the error of a call on a value its constructor did not
// make (the zero value), which has no limit to enforce.
func errNotMade(what, constructor string) error {
	return fmt.Errorf("%w: %s not made by %s: the zero value has no limit", ErrInvalidConfig, what, constructor)
}

// Decision is the outcome of one request to a limiter: the facts a caller
// needs to answer a client or to back off. When several limits apply (a
// [Multi], a multi-limit redislimit.Limiter) every field describes the
// tightest one: the limit that denies with the longest wait, or when
// allowed the one with the fewest events remaining.
type Decision struct {
	// Allowed reports whether the events may happen. For ReserveN it
	// reports whether they were reserved; the caller then waits RetryAfter.
	Allowed bool
	// Limit is the limit that decided (for a [Multi], the tightest one).
	Limit Limit
	// Remaining is how many more events would be allowed right now.
	Remaining int
	// RetryAfter is how long to wait before the denied events would be
	// allowed; zero when allowed now. For ReserveN it is the delay before
	// the reserved events may act.
	RetryAfter time.Duration
	// ResetAfter is how long until the limiter is back to its full quota
	// (the bucket is full, the window has reset) if no more events come.
	ResetAfter time.Duration
}

// Limiter is implemented by every in-memory algorithm of the package. All
// implementations are safe for concurrent use.
//
// AllowN decides now and never waits: use it to reject (HTTP 429). ReserveN
// books the events at the earliest time they fit and says how long to wait:
// use it to schedule. WaitN blocks until the events fit or ctx ends: use it
// to pace a client or a worker. Each refuses n < 1 ([ErrInvalidN]),
// n larger than the limit can ever grant ([ErrExceedsLimit]), and a clock
// reading outside the years 1823 to 2116, such as the zero time.Time
// ([ErrInvalidConfig]). Any instant within them is decided alike, before
// 1970 too.
type Limiter interface {
	// Allow reports whether one event may happen now, by the limiter's
	// clock, and consumes it if so: AllowN(now, 1) without the
	// [Decision]. On a zero value, which has no limit, it reports false.
	Allow() bool
	// AllowN reports whether n events may happen at now, and consumes
	// them if so.
	AllowN(now time.Time, n int) (Decision, error)
	// ReserveN books n events at the earliest instant at or after now
	// when they fit and returns the delay in Decision.RetryAfter.
	ReserveN(now time.Time, n int) (Decision, error)
	// WaitN blocks until n events are allowed. It returns an error
	// wrapping [ErrLimited] at once, consuming nothing, when the wait
	// would end after ctx's deadline, and ctx.Err() if ctx ends first —
	// in which case, unlike x/time/rate, the booked events stay charged,
	// as a request sent and then abandoned would be.
	WaitN(ctx context.Context, n int) error
	// Wait is WaitN(ctx, 1).
	Wait(ctx context.Context) error
	// Limit returns the limit the limiter enforces.
	Limit() Limit
}

// params are the numbers every algorithm derives from its [Limit] once.
type params struct {
	limit    Limit
	interval int64 // ns per event: Per/Events
	capacity int64 // Burst × interval: a full bucket, in ns of refill
}

func newParams(l Limit) params {
	iv := l.interval()
	return params{limit: l, interval: iv, capacity: int64(l.Burst) * iv}
}

// state is the state one limit keeps for one key, under its owner's
// lock: each algorithm's state machine is the take method of its state.
// take decides n events at now (Unix nanoseconds), allowing them if they
// fit within maxWait, and commits them only if commit is set; the
// returned RetryAfter is the delay until they fit. [Multi] uses
// commit=false to check every limit before charging any. A key never
// seen has its algorithm's fresh state, whose instants are never.
type state[S any] interface {
	*S
	take(p *params, now, n, maxWait int64, commit bool) Decision
}

// taker is a limiter whose decisions Multi composes.
type taker interface {
	Limiter
	take(now, n, maxWait int64, commit bool) Decision
}

// noWait and anyWait are the maxWait of AllowN and ReserveN.
const (
	noWait  = 0
	anyWait = math.MaxInt64
)

// decide checks n and now, takes with maxWait and returns the decision.
func decide(take func(now, n, maxWait int64, commit bool) Decision, limit Limit, capacity int, now time.Time, n int, maxWait int64) (Decision, error) {
	if err := checkN(n, capacity); err != nil {
		return Decision{Limit: limit}, err
	}
	if err := checkNow(now); err != nil {
		return Decision{Limit: limit}, err
	}
	return take(now.UnixNano(), int64(n), maxWait, true), nil
}

// waitN books n events if they fit before ctx's deadline and sleeps until
// their time. A wait cut short by ctx keeps its booking: the events are
// charged, as a request that was sent and then abandoned would be.
func waitN(ctx context.Context, take func(now, n, maxWait int64, commit bool) Decision, capacity int, clock func() time.Time, n int) error {
	if err := checkN(n, capacity); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	now := clock()
	if err := checkNow(now); err != nil {
		return err
	}
	maxWait := int64(anyWait)
	if dl, ok := ctx.Deadline(); ok {
		maxWait = max(int64(dl.Sub(now)), 0)
	}
	d := take(now.UnixNano(), int64(n), maxWait, true)
	if !d.Allowed {
		return fmt.Errorf("%w: %d events need a wait of %v, beyond the context deadline", ErrLimited, n, d.RetryAfter)
	}
	return sleep(ctx, d.RetryAfter)
}

// The instants a limiter accepts: Unix nanoseconds in [-2⁶², 2⁶²), the
// years 1823 to 2116. An instant plus or minus a full bucket or a window
// (at most maxPer) then never overflows, nor does the time between two
// instants.
var (
	minNow = time.Unix(0, -1<<62)
	maxNow = time.Unix(0, 1<<62-1)
)

// never is the instant of a state that was never used: earlier than
// every instant a limiter accepts, so that each finds it long at rest. A
// time of 0 would not do: it is 1970, and an instant before it would
// find a fresh state used in its future.
const never = math.MinInt64

// maxPer is the longest period (window) of a [Limit], about 73 years.
const maxPer = 1 << 61

// checkNow refuses an instant a limiter cannot compute with, such as the
// zero time.Time a clock that was never set returns: its Unix nanoseconds
// wrap around, and a decision computed from them would be wrong.
func checkNow(now time.Time) error {
	if now.Before(minNow) || now.After(maxNow) {
		return fmt.Errorf("%w: clock reading %v is outside the years 1823 to 2116 that a limiter can represent", ErrInvalidConfig, now)
	}
	return nil
}

// sleep waits for d or until ctx ends. (A timer of 0 fires at once too:
// d < 0 would do; the test saves making one.)
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Algorithm names one of the in-memory algorithms, for [New].
type Algorithm int

// The algorithms of the package.
const (
	AlgTokenBucket   Algorithm = iota // [TokenBucket]
	AlgLeakyBucket                    // [LeakyBucket]
	AlgFixedWindow                    // [FixedWindow]
	AlgSlidingLog                     // [SlidingLog]
	AlgSlidingWindow                  // [SlidingWindow]
	AlgGCRA                           // [GCRA]
)

// Algorithms lists every algorithm, in declaration order.
var Algorithms = []Algorithm{AlgTokenBucket, AlgLeakyBucket, AlgFixedWindow, AlgSlidingLog, AlgSlidingWindow, AlgGCRA}

// String returns the algorithm's name, e.g. "token-bucket".
func (a Algorithm) String() string {
	switch a {
	case AlgTokenBucket:
		return "token-bucket"
	case AlgLeakyBucket:
		return "leaky-bucket"
	case AlgFixedWindow:
		return "fixed-window"
	case AlgSlidingLog:
		return "sliding-log"
	case AlgSlidingWindow:
		return "sliding-window"
	case AlgGCRA:
		return "gcra"
	}
	return fmt.Sprintf("Algorithm(%d)", int(a))
}

// New returns a limiter of the given algorithm. It is a convenience over
// the typed constructors ([NewTokenBucket] and friends), for code that picks
// the algorithm at run time.
func New(alg Algorithm, limit Limit) (Limiter, error) {
	switch alg {
	case AlgTokenBucket:
		return NewTokenBucket(limit)
	case AlgLeakyBucket:
		return NewLeakyBucket(limit)
	case AlgFixedWindow:
		return NewFixedWindow(limit)
	case AlgSlidingLog:
		return NewSlidingLog(limit)
	case AlgSlidingWindow:
		return NewSlidingWindow(limit)
	case AlgGCRA:
		return NewGCRA(limit)
	}
	return nil, fmt.Errorf("%w: unknown algorithm %d", ErrInvalidConfig, int(alg))
}

// dur converts nanoseconds to a Duration, never negative.
func dur(ns int64) time.Duration { return time.Duration(max(ns, 0)) }
