package resilience

import (
	"context"
	"time"
)

// TimeoutOptions configure a [Timeout]. Timeout is required.
type TimeoutOptions struct {
	// Name identifies the policy in errors. Default "".
	Name string
	// Timeout is how long a call may run. It is required — 0 or negative
	// is an error, not a default — because only the caller knows how long
	// its dependency may take.
	Timeout time.Duration
}

// Timeout bounds a call: fn runs under a context that ends after the
// duration, and a call that ends because of it returns a [*PolicyError]
// wrapping [ErrTimeout] and context.DeadlineExceeded. Inside a [Retry] it
// bounds each attempt; outside, the whole call.
//
// Pros: a slow dependency cannot hold the caller's goroutines forever
// (the guide: "Timeout Configuration: How long to wait"). Cons: a timeout
// too short fails calls that would have succeeded; too long, and it does
// not protect. fn must honour its context: Timeout does not abandon a
// running call on another goroutine (that would leak it), so a call that
// ignores cancellation still takes as long as it takes.
//
// A Timeout is safe for concurrent use.
type Timeout[T any] struct {
	name string
	d    time.Duration

	calls, timeouts counter
}

// TimeoutStats counts calls and how many the timeout cut short.
type TimeoutStats struct{ Calls, Timeouts uint64 }

// NewTimeout returns a timeout policy configured by opts.
func NewTimeout[T any](opts TimeoutOptions) (*Timeout[T], error) {
	if opts.Timeout <= 0 {
		return nil, configError("timeout %q Timeout must be set to a positive duration, got %v", opts.Name, opts.Timeout)
	}
	return &Timeout[T]{name: opts.Name, d: opts.Timeout}, nil
}

// Stats returns the timeout's counters.
func (t *Timeout[T]) Stats() TimeoutStats {
	return TimeoutStats{Calls: t.calls.load(), Timeouts: t.timeouts.load()}
}

// Execute runs fn with the deadline.
func (t *Timeout[T]) Execute(ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	if t == nil || t.d <= 0 {
		return zero, notMade("timeout", "NewTimeout")
	}
	if fn == nil {
		return zero, configError("timeout %q: nil function", t.name)
	}
	t.calls.add()
	cctx, cancel := context.WithTimeout(ctx, t.d)
	v, err := fn(cctx)
	timedOut := cctx.Err() != nil && ctx.Err() == nil
	cancel()
	if err != nil && timedOut {
		t.timeouts.add()
		return v, rejected("timeout", t.name, ErrTimeout, err)
	}
	return v, err
}
