package resilience

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/sysdesign-go/sysdesign/resilience/internal/hook"
)

// State is a circuit breaker's state; it is gobreaker's State, so values
// from [CircuitBreaker], sharedbreaker.Breaker and gobreaker itself
// compare.
type State = gobreaker.State

// The three states of a circuit breaker (the guide, "Circuit Breakers").
const (
	// StateClosed is normal operation: calls pass and outcomes are counted.
	StateClosed = gobreaker.StateClosed
	// StateHalfOpen tests whether the dependency recovered: a few probe
	// calls pass, the rest fail fast.
	StateHalfOpen = gobreaker.StateHalfOpen
	// StateOpen fails fast: no call reaches the dependency until the open
	// timeout passes.
	StateOpen = gobreaker.StateOpen
)

// StateChange is one transition of a breaker, given to the OnStateChange
// hook.
type StateChange struct {
	Name     string
	From, To State
}

// BreakerOptions configure a [CircuitBreaker]. The zero value is gobreaker's
// defaults: trip after more than 5 consecutive failures, stay open 60 s, let
// one probe call through when half-open, never clear counts while closed.
type BreakerOptions struct {
	// Name identifies the breaker in errors and hooks. Default "".
	Name string
	// MaxRequests is the number of probe calls let through when half-open;
	// that many successes in a row close the breaker. Default 1.
	MaxRequests uint32
	// Interval is the closed-state window after which counts are cleared.
	// Default 0: counts are cleared only on state changes.
	Interval time.Duration
	// BucketPeriod makes the Interval window roll in buckets of this length
	// (gobreaker rounds Interval up to a multiple of it). Default 0: a fixed
	// window. Must not be negative or exceed Interval.
	BucketPeriod time.Duration
	// Timeout is how long the breaker stays open before going half-open.
	// Default 60 s.
	Timeout time.Duration
	// Trip decides when the closed breaker opens. Default nil: gobreaker's
	// default, more than 5 consecutive failures. See [ConsecutiveFailures],
	// [FailureRate] and [NewCountWindow].
	Trip TripPolicy
	// SlowCallThreshold makes calls that take longer than this count as
	// failures (the caller still gets the call's result). Default 0: no
	// call is slow. Must not be negative.
	SlowCallThreshold time.Duration
	// IsSuccessful reports whether a non-nil error still counts as a
	// success (e.g. a 404). Default nil: every non-nil error is a failure.
	IsSuccessful func(err error) bool
	// IsExcluded reports whether an error counts neither as a success nor
	// as a failure. Errors after the caller's context was cancelled or
	// expired are always excluded: the caller gave up, the dependency did
	// not fail. Default nil: nothing else is excluded.
	IsExcluded func(err error) bool
	// OnStateChange is called after every state change, in order, on the
	// goroutine whose call caused it, never under a lock. Default nil.
	OnStateChange func(StateChange)
	// Now measures call durations for SlowCallThreshold. Default time.Now.
	// gobreaker's own timers (Timeout, Interval) always read time.Now.
	Now func() time.Time
}

// errSlow and errExcluded are handed to gobreaker in place of the call's
// own result so that its IsSuccessful / IsExcluded see the verdict this
// wrapper reached; the caller always gets the call's real result.
var (
	errSlow     = errors.New("resilience: slow call")
	errExcluded = errors.New("resilience: excluded call")
)

// CircuitBreaker is a context-aware, generically typed circuit breaker
// built on github.com/sony/gobreaker/v2. It adds what gobreaker lacks: trip
// policies over a count window and on the slow-call rate, caller
// cancellation that does not count as a dependency failure, errors that
// name the policy and keep gobreaker's cause, a state-change hook that
// never runs under the breaker's lock, and [CircuitBreaker.Stats].
//
// Pros (the guide, "Circuit Breakers: prevent cascade failures"): a failing
// dependency costs its callers a fast error instead of a held thread and a
// timeout, and gets room to recover. Cons: every instance learns on its
// own (see package sharedbreaker for one state across a fleet), and a
// breaker tuned too tight opens on noise. Use it around every remote call whose failure
// must not take the caller down with it.
//
// A CircuitBreaker is safe for concurrent use.
type CircuitBreaker[T any] struct {
	// Read on every call, written only by NewCircuitBreaker.
	cb     *gobreaker.CircuitBreaker[T]
	name   string
	trip   TripPolicy
	slow   time.Duration
	isOK   func(error) bool
	isExcl func(error) bool
	now    func() time.Time
	// plain is true when no option needs a look at the call's outcome
	// beyond err == nil (no trip policy, slow-call threshold or
	// classifier): a success then skips verdict.
	plain  bool
	events hook.Queue[StateChange]

	// successes is written by every successful call: padding keeps it off
	// the cache lines of the fields above, which every call reads, so its
	// writes do not evict them from the other cores' caches.
	_         [64]byte
	successes atomic.Uint64
	_         [56]byte

	failures, slowCalls, excluded, rejected atomic.Uint64
}

// BreakerStats is a snapshot of a breaker's counters since it was created.
type BreakerStats struct {
	State State
	// Counts are gobreaker's counts for the current window.
	Counts Counts
	// Calls ran the function; Rejected were short-circuited without it.
	Calls, Rejected uint64
	// Successes, Failures (slow calls included) and Excluded partition Calls.
	Successes, Failures, Excluded uint64
	// Slow counts calls over SlowCallThreshold (also counted in Failures).
	Slow uint64
}

func validateBreaker(o *BreakerOptions) error {
	switch {
	case o.Interval < 0:
		return configError("breaker Interval must not be negative, got %v", o.Interval)
	case o.BucketPeriod < 0:
		return configError("breaker BucketPeriod must not be negative, got %v", o.BucketPeriod)
	case o.BucketPeriod > 0 && o.Interval == 0:
		return configError("breaker BucketPeriod %v needs an Interval to roll over", o.BucketPeriod)
	case o.BucketPeriod > o.Interval && o.Interval > 0:
		return configError("breaker BucketPeriod %v exceeds Interval %v", o.BucketPeriod, o.Interval)
	case o.Timeout < 0:
		return configError("breaker Timeout must not be negative, got %v", o.Timeout)
	case o.SlowCallThreshold < 0:
		return configError("breaker SlowCallThreshold must not be negative, got %v", o.SlowCallThreshold)
	}
	return nil
}

// NewCircuitBreaker returns a breaker configured by opts.
func NewCircuitBreaker[T any](opts BreakerOptions) (*CircuitBreaker[T], error) {
	if err := validateBreaker(&opts); err != nil {
		return nil, err
	}
	b := &CircuitBreaker[T]{name: opts.Name, trip: opts.Trip, slow: opts.SlowCallThreshold, isOK: opts.IsSuccessful, isExcl: opts.IsExcluded, now: opts.Now}
	// plain is only a shortcut: with no trip policy and no threshold, the
	// plain path's successes skip a verdict that would count them the same
	// way, and its errors get the full verdict, classifiers included. So a
	// plain computed without the classifier terms behaves identically.
	b.plain = b.trip == nil && b.slow == 0 && b.isOK == nil && b.isExcl == nil
	if b.now == nil {
		b.now = time.Now
	}
	b.events.Hook = opts.OnStateChange
	st := gobreaker.Settings{
		Name:         opts.Name,
		MaxRequests:  opts.MaxRequests,
		Interval:     opts.Interval,
		BucketPeriod: opts.BucketPeriod,
		Timeout:      opts.Timeout,
		IsSuccessful: isNil,
		IsExcluded:   isExcludedVerdict,
		OnStateChange: func(name string, from, to State) {
			// Runs under gobreaker's mutex: only queue the event here.
			if b.trip != nil {
				b.trip.Reset()
			}
			b.events.Push(StateChange{Name: name, From: from, To: to})
		},
	}
	if opts.Trip != nil {
		st.ReadyToTrip = opts.Trip.ReadyToTrip
	}
	b.cb = gobreaker.NewCircuitBreaker[T](st)
	return b, nil
}

// Name returns the breaker's name.
func (b *CircuitBreaker[T]) Name() string { return b.name }

// State returns the current state (moving an expired open breaker to
// half-open, which fires the hook).
func (b *CircuitBreaker[T]) State() State {
	if b.cb == nil {
		return StateClosed // the zero breaker, whose Execute refuses every call
	}
	s := b.cb.State()
	b.events.Flush()
	return s
}

// Execute runs fn if the breaker lets the call through and returns its
// result. A rejected call returns a [*PolicyError] wrapping [ErrOpen] and
// gobreaker's ErrOpenState or ErrTooManyRequests, without running fn. If ctx
// is already done, Execute returns its error without counting anything.
func (b *CircuitBreaker[T]) Execute(ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	if b == nil || b.cb == nil {
		return zero, notMade("circuit breaker", "NewCircuitBreaker")
	}
	if fn == nil {
		return zero, configError("breaker %q: nil function", b.name)
	}
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	var (
		ran     bool
		callErr error
	)
	// The closure stays on the stack (gobreaker does not keep it), so a
	// call allocates nothing; the success path of a plain breaker adds
	// one counter increment to gobreaker's own work, and no clock read.
	v, err := b.cb.Execute(func() (T, error) {
		ran = true
		if b.plain {
			v, err := fn(ctx)
			if err == nil {
				b.successes.Add(1)
				return v, nil
			}
			callErr = err
			return v, b.verdict(ctx, time.Time{}, err)
		}
		var start time.Time
		// start is read only when a threshold needs it (verdict ignores it
		// otherwise), so reading it always would change nothing.
		if b.slow > 0 {
			start = b.now()
		}
		v, err := fn(ctx)
		callErr = err
		return v, b.verdict(ctx, start, err)
	})
	if b.events.Hook != nil {
		b.events.Flush()
	}
	if !ran {
		b.rejected.Add(1)
		return zero, rejected("breaker", b.name, ErrOpen, err)
	}
	return v, callErr
}

func isNil(err error) bool             { return err == nil }
func isExcludedVerdict(err error) bool { return err == errExcluded }

// verdict classifies a finished call for gobreaker and the trip policy.
func (b *CircuitBreaker[T]) verdict(ctx context.Context, start time.Time, err error) error {
	if err != nil && (ctx.Err() != nil || (b.isExcl != nil && b.isExcl(err))) {
		b.excluded.Add(1)
		return errExcluded
	}
	failed := err != nil && (b.isOK == nil || !b.isOK(err))
	slow := b.slow > 0 && b.now().Sub(start) > b.slow
	if slow {
		b.slowCalls.Add(1)
	}
	if b.trip != nil {
		b.trip.Record(failed || slow, slow)
	}
	switch {
	case slow:
		b.failures.Add(1)
		return errSlow
	case failed:
		b.failures.Add(1)
		return err
	}
	b.successes.Add(1)
	return nil
}

// Stats returns a snapshot of the breaker's counters.
func (b *CircuitBreaker[T]) Stats() BreakerStats {
	if b.cb == nil {
		return BreakerStats{}
	}
	s := BreakerStats{
		State:     b.State(),
		Counts:    b.cb.Counts(),
		Rejected:  b.rejected.Load(),
		Successes: b.successes.Load(),
		Failures:  b.failures.Load(),
		Excluded:  b.excluded.Load(),
		Slow:      b.slowCalls.Load(),
	}
	s.Calls = s.Successes + s.Failures + s.Excluded
	return s
}
