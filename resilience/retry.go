package resilience

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"
)

// RetryOptions configure a [Retry]. MaxAttempts is required; every other
// field's zero value is a default, so RetryOptions{MaxAttempts: 3} makes up
// to 3 attempts with full-jitter exponential backoff from 100 ms capped at
// 10 s, on every error, with no elapsed-time limit and no budget.
type RetryOptions struct {
	// Name identifies the policy in errors. Default "".
	Name string
	// MaxAttempts is the total number of attempts, the first included:
	// 1 disables retries. It is required — 0 or negative is an error, not
	// a default — because retrying is safe only for idempotent calls, so
	// how many times a call may run is the caller's decision.
	MaxAttempts int
	// MaxElapsed stops retrying once the next attempt would start later
	// than this after the first one. Default 0: no limit.
	MaxElapsed time.Duration
	// Backoff computes the delays. Its zero value is documented on
	// [Backoff].
	Backoff Backoff
	// RetryIf reports whether an error is worth retrying. Default nil:
	// every error is, except the caller's own context ending.
	RetryIf func(err error) bool
	// RetryAfter extracts a server's requested wait from an error; the
	// next attempt waits at least that long. Default: a [*RetryAfterError]
	// in the chain.
	RetryAfter func(err error) (time.Duration, bool)
	// Budget, if set, must grant every retry ([Budget.TryExtraAt]); each
	// first attempt is recorded in it. Default nil: no budget.
	Budget *Budget
	// OnRetry is called before each wait, on the calling goroutine. Default
	// nil.
	OnRetry func(RetryEvent)
	// Sleep waits d or until ctx ends. Default: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock for MaxElapsed and the budget. Default time.Now.
	Now func() time.Time
	// Rand returns uniform numbers in [0, 1) for jitter; it must be safe
	// for concurrent use. Default math/rand/v2.Float64.
	Rand func() float64
}

// RetryEvent describes one retry about to happen.
type RetryEvent struct {
	Name string
	// Attempt is the attempt that just failed (1 for the first).
	Attempt int
	// Delay is the wait before the next attempt.
	Delay time.Duration
	// Err is the failed attempt's error.
	Err error
}

// Retry re-runs a failed call with exponential backoff and jitter. It
// retries only errors RetryIf accepts, honours a server's Retry-After, stops
// at MaxAttempts or MaxElapsed, asks a shared [Budget] before each retry,
// and sleeps on the caller's context.
//
// Pros: transient faults (a dropped connection, a leader election) never
// reach the user. Cons: every retry is extra load on a dependency that may
// be failing because of load — the retry storm; jitter spreads retries out
// and a budget caps them. Retry only idempotent operations.
//
// A Retry is safe for concurrent use.
type Retry[T any] struct {
	name       string
	max        int
	maxElapsed time.Duration
	backoff    Backoff
	retryIf    func(error) bool
	retryAfter func(error) (time.Duration, bool)
	budget     *Budget
	onRetry    func(RetryEvent)
	sleep      func(context.Context, time.Duration) error
	now        func() time.Time
	rand       func() float64

	calls, attempts, retries, exhausted, budgetDenied atomic.Uint64
}

// RetryStats is a snapshot of a retry policy's counters.
type RetryStats struct {
	// Calls to Execute; Attempts made in total; Retries = Attempts - Calls
	// for completed calls.
	Calls, Attempts, Retries uint64
	// Exhausted calls ran out of attempts or elapsed time; BudgetDenied
	// were not retried because the budget refused.
	Exhausted, BudgetDenied uint64
}

// NewRetry returns a retry policy configured by opts. It returns an error
// wrapping [ErrInvalidConfig] for MaxAttempts below 1, a negative
// MaxElapsed, or an invalid [Backoff].
func NewRetry[T any](opts RetryOptions) (*Retry[T], error) {
	if opts.MaxAttempts < 1 {
		return nil, configError("retry %q MaxAttempts must be set to at least 1 (1 disables retries), got %d", opts.Name, opts.MaxAttempts)
	}
	if opts.MaxElapsed < 0 {
		return nil, configError("retry MaxElapsed must not be negative, got %v", opts.MaxElapsed)
	}
	if opts.Budget != nil && !opts.Budget.made() {
		return nil, notMade("retry "+strconv.Quote(opts.Name)+" Budget", "NewBudget")
	}
	bo, err := opts.Backoff.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Retry[T]{
		name: opts.Name, max: opts.MaxAttempts, maxElapsed: opts.MaxElapsed, backoff: bo,
		retryIf: opts.RetryIf, retryAfter: opts.RetryAfter, budget: opts.Budget, onRetry: opts.OnRetry,
		sleep: opts.Sleep, now: opts.Now, rand: opts.Rand,
	}
	if r.retryAfter == nil {
		r.retryAfter = retryAfterFromError
	}
	if r.sleep == nil {
		r.sleep = sleepCtx
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.rand == nil {
		r.rand = rand.Float64
	}
	return r, nil
}

func retryAfterFromError(err error) (time.Duration, bool) {
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return ra.After, true
	}
	return 0, false
}

// sleepCtx waits d or until ctx is done, returning ctx's error then.
func sleepCtx(ctx context.Context, d time.Duration) error {
	// A zero wait could as well go through the timer: Execute checked ctx
	// just before, so both return nil. <= only skips the timer.
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Execute calls fn until it succeeds or the policy gives up. It returns
// fn's result on success; fn's own error when RetryIf rejects it; a
// [*PolicyError] wrapping [ErrRetriesExhausted] or [ErrBudgetExhausted] and
// the last error when retries ran out; and the context's error, wrapping
// the last error, when ctx ends while waiting.
func (r *Retry[T]) Execute(ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	if r == nil || r.sleep == nil {
		return zero, notMade("retry", "NewRetry")
	}
	if fn == nil {
		return zero, configError("retry %q: nil function", r.name)
	}
	r.calls.Add(1)
	var start time.Time
	// Read only when MaxElapsed or the budget needs it (as now below).
	if r.maxElapsed > 0 || r.budget != nil {
		start = r.now()
	}
	if r.budget != nil {
		r.budget.RecordRequestAt(start)
	}
	var prev time.Duration
	for attempt := 1; ; attempt++ {
		r.attempts.Add(1)
		v, err := fn(ctx)
		if err == nil {
			return v, nil
		}
		if ctx.Err() != nil || (r.retryIf != nil && !r.retryIf(err)) {
			return v, err
		}
		if attempt >= r.max {
			r.exhausted.Add(1)
			return v, rejected("retry", r.name, ErrRetriesExhausted, err)
		}
		delay := r.backoff.Delay(attempt, prev, r.rand())
		prev = delay
		// (>= would pick the same value when they are equal.)
		if ra, ok := r.retryAfter(err); ok && ra > delay {
			delay = ra
		}
		// The clock is read only when something needs it; reading it always
		// would change nothing else.
		var now time.Time
		if r.maxElapsed > 0 || r.budget != nil {
			now = r.now()
		}
		if r.maxElapsed > 0 && now.Add(delay).Sub(start) > r.maxElapsed {
			r.exhausted.Add(1)
			return v, rejected("retry", r.name, ErrRetriesExhausted, err)
		}
		if r.budget != nil && !r.budget.TryExtraAt(now) {
			r.budgetDenied.Add(1)
			return v, rejected("retry", r.name, ErrBudgetExhausted, err)
		}
		r.retries.Add(1)
		if r.onRetry != nil {
			r.onRetry(RetryEvent{Name: r.name, Attempt: attempt, Delay: delay, Err: err})
		}
		if serr := r.sleep(ctx, delay); serr != nil {
			return zero, rejected("retry", r.name, serr, err)
		}
	}
}

// Stats returns a snapshot of the policy's counters.
func (r *Retry[T]) Stats() RetryStats {
	return RetryStats{
		Calls: r.calls.Load(), Attempts: r.attempts.Load(), Retries: r.retries.Load(),
		Exhausted: r.exhausted.Load(), BudgetDenied: r.budgetDenied.Load(),
	}
}
